package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/workflows"
)

// rawPipe is the baseline: one GET of the whole object streamed into one PUT with io.Copy.
func (e *env) rawPipe(
	ctx context.Context,
	src cloud.ObjectRef,
	size int64,
	dst cloud.ObjectRef,
) (time.Duration, error) {
	if err := e.demo.EnsureContainer(ctx, dst.Region, dst.Container); err != nil {
		return 0, err
	}
	start := time.Now()
	rc, err := e.demo.OpenRange(ctx, src.Region, src.Container, src.Object, 0, size)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if _, err := e.demo.PutStream(ctx, dst.Region, dst.Container, dst.Object, rc, size, ""); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// flowCopy is imageflow's copy with par transfers (0: tuned), as a migration runs it (proven
// at its end by the import, so cut pieces go unhashed); chose collects what it ran with.
func (e *env) flowCopy(ctx context.Context, src, dst cloud.ObjectRef, par int, chose *[]int) (time.Duration, error) {
	start := time.Now()
	res, err := e.demo.CopyAcrossRegions(ctx, src, dst, cloud.CopyOptions{Parallelism: par, ProvenAtEnd: true})
	*chose = append(*chose, res.Parallelism)
	return time.Since(start), err
}

// tunedName says what tuning chose over the runs, e.g. "tuned: 8, 8, 16".
// settings copies src to dst at 4, 8 and 16 fixed transfers and tuned, medians of e.sz.runs
// each, and judges the tuned copy against the best fixed one of the same run: tuning exists to
// find that setting without being told. base describes a rate's baseline and ratio.
func (e *env) settings(ctx context.Context, n int, name string, src, dst cloud.ObjectRef, size int64,
	base func(rate float64) (string, string)) ([]row, float64, error) {
	var rows []row
	var best, tuned float64
	bestPar := 0
	for _, par := range []int{4, 8, 16, 0} {
		var chose []int
		flow, err := measure(e.sz.runs, size, func() (time.Duration, error) {
			defer e.clean(ctx, dst)
			return e.flowCopy(ctx, src, dst, par, &chose)
		})
		if err != nil {
			return nil, 0, err
		}
		rate := flow.rate()
		b, ratio := base(rate)
		r := row{n: n, name: fmt.Sprintf("%s, %d transfers", name, par), measured: flow.String(), baseline: b,
			ratio: ratio, goal: "-", met: true}
		if par == 0 {
			tuned = rate
			r.name = fmt.Sprintf("%s, %s transfers", name, tunedName(chose))
			r.baseline = fmt.Sprintf("%.1f MiB/s, the best fixed setting (%d transfers)", best, bestPar)
			r.ratio, r.goal = fmt.Sprintf("%.2f of the best", rate/best), ">= 0.95 of the best fixed setting"
			r.met = rate >= 0.95*best
			if e.sz.quick {
				r.unjudged = "not judged at --quick sizes"
			}
		} else if rate > best {
			best, bestPar = rate, par
		}
		rows = append(rows, r)
	}
	return rows, tuned, nil
}

func tunedName(chose []int) string {
	parts := make([]string, len(chose))
	for i, n := range chose {
		parts[i] = fmt.Sprint(n)
	}
	return "tuned: " + strings.Join(parts, ", ")
}

// clean removes a copy's segments and manifest (disk is finite).
func (e *env) clean(ctx context.Context, ref cloud.ObjectRef) {
	objs, _ := e.demo.ListObjects(ctx, ref.Region, ref.Container, ref.Object)
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	_, _ = e.demo.DeleteObjects(ctx, ref.Region, ref.Container, names)
}

// sample is a transfer timed several times: a reader who runs the bench again should land inside
// the spread, not below a best run.
type sample struct {
	bytes    int64
	runs     []time.Duration // sorted, fastest first
	medianOf time.Duration
}

// measure runs f n times (at least once) and keeps every time.
func measure(n int, bytes int64, f func() (time.Duration, error)) (sample, error) {
	s := sample{bytes: bytes}
	for i := 0; i < max(n, 1); i++ {
		d, err := f()
		if err != nil {
			return s, err
		}
		s.runs = append(s.runs, d)
	}
	slices.Sort(s.runs)
	s.medianOf = s.runs[len(s.runs)/2]
	return s, nil
}

// rate is the median rate in MiB/s.
func (s sample) rate() float64 { return mibps(s.bytes, s.medianOf) }

// String is "392 MiB/s (median of 3, 370 to 401)".
func (s sample) String() string {
	if len(s.runs) == 1 {
		return fmt.Sprintf("%.1f MiB/s (1 run)", s.rate())
	}
	return fmt.Sprintf("%.1f MiB/s (median of %d, %.1f to %.1f)", s.rate(), len(s.runs),
		mibps(s.bytes, s.runs[len(s.runs)-1]), mibps(s.bytes, s.runs[0]))
}

// Row 1: CopyAcrossRegions versus the raw pipe between two emulator regions on loopback.
func (e *env) loopbackCopy(ctx context.Context) ([]row, error) {
	img, err := e.image("bench-loopback")
	if err != nil {
		return nil, err
	}
	src, err := e.export(ctx, img)
	if err != nil {
		return nil, err
	}
	rawDst := cloud.ObjectRef{Region: "IAD", Container: "bench-raw", Object: "loopback.vhd"}
	flowDst := cloud.ObjectRef{Region: "IAD", Container: "bench-flow", Object: "loopback.vhd"}
	raw, err := measure(e.sz.runs, img.Size, func() (time.Duration, error) {
		defer e.clean(ctx, rawDst)
		return e.rawPipe(ctx, src, img.Size, rawDst)
	})
	if err != nil {
		return nil, err
	}
	r := raw.rate()
	e.loopbackMiBps = r
	name := fmt.Sprintf("cross-region copy, loopback, %d MiB export", img.Size>>20)
	rows, f, err := e.settings(ctx, 1, name, src, flowDst, img.Size, func(rate float64) (string, string) {
		return raw.String() + " raw GET->PUT", fmt.Sprintf("%.2fx raw", rate/r)
	})
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{n: 1, name: name + ", tuned against the raw pipe", measured: fmt.Sprintf("%.1f MiB/s", f),
		baseline: raw.String() + " raw GET->PUT", ratio: fmt.Sprintf("%.2f (of medians)", f/r), goal: ">= 1.00",
		met: f/r >= 1.0,
		note: "the emulator (same process) MD5s and writes every byte to disk on both sides; imageflow " +
			"copies the export's 256 MiB segments whole, checked by the target against their ETag; the " +
			"pieces it cuts at the end (so no transfer idles) go unhashed, proven by the import as a migration's are",
	})
	peers, err := e.peerRows(ctx, 1, name, src, cloud.ObjectRef{Region: "IAD", Container: "bench-peer",
		Object: "loopback.vhd"}, img.Size, f)
	return append(rows, peers...), err
}

// Row 2: a slow link: every PUT into the target region capped at 25 MiB/s with 40 ms latency.
func (e *env) slowLink(ctx context.Context) ([]row, error) {
	img, err := e.image("bench-slow")
	if err != nil {
		return nil, err
	}
	src, err := e.export(ctx, img)
	if err != nil {
		return nil, err
	}
	const cap = 25 << 20
	e.emu.ClearFaults()
	defer e.emu.ClearFaults()
	for _, f := range []emulator.Fault{
		{Kind: "bandwidth", Region: "LON", Service: "files", Method: "PUT", BytesPerSecond: cap},
		{Kind: "latency", Region: "LON", Service: "files", Latency: "40ms"},
	} {
		if err := e.emu.AddFault(f); err != nil {
			return nil, err
		}
	}
	dst := cloud.ObjectRef{Region: "LON", Container: "bench-slow", Object: "slow.vhd"}
	raw, err := measure(e.sz.runs, img.Size, func() (time.Duration, error) {
		defer e.clean(ctx, dst)
		return e.rawPipe(ctx, src, img.Size, dst)
	})
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("slow link 25 MiB/s + 40 ms, %d MiB", img.Size>>20)
	rows := []row{{n: 2, name: name + ", raw single stream", measured: raw.String(), baseline: "-", ratio: "-",
		goal: "-", met: true}}
	idle, err := e.rounds(ctx, src, dst, img.Size)
	if err != nil {
		return nil, err
	}
	rows = append(rows, e.judged(tuningRows(2, name, idle, 0.95))...)
	stop, err := cpuHog(2)
	if err != nil {
		return nil, err
	}
	busy, err := e.rounds(ctx, src, dst, img.Size)
	stop()
	if err != nil {
		return nil, err
	}
	rows = append(rows, e.judged(tuningRows(2, name+", beside a CPU hog (2 spinning processes)", busy, 0.9))...)
	var tuned []float64
	for _, r := range idle {
		tuned = append(tuned, r.rates[0])
	}
	slices.Sort(tuned)
	tunedRate := tuned[len(tuned)/2]
	peers, err := e.peerRows(ctx, 2, name, src, cloud.ObjectRef{Region: "LON", Container: "bench-peer",
		Object: "slow.vhd"}, img.Size, tunedRate)
	return append(rows, peers...), err
}

// Row 3: peak RSS of the real worker process migrating a small and a large image.
func (e *env) memory(ctx context.Context) ([]row, error) {
	const par, bufferKiB = 4, 1024 // allowance per transfer: io.Copy's 32 KiB and the HTTP buffers, generously
	goalMiB := float64(par*bufferKiB)/1024 + 64
	var rows []row
	var peaks []float64
	for _, name := range []string{"bench-mem-small", "bench-mem-large"} {
		img, err := e.image(name)
		if err != nil {
			return nil, err
		}
		w, err := e.startWorker(
			"demo",
			"bench-mem",
			"IMAGEFLOW_NATS_DISABLED=true",
			fmt.Sprintf("IMAGEFLOW_WORKER_COPY_PARALLELISM=%d", par),
		)
		if err != nil {
			return nil, err
		}
		time.Sleep(2 * time.Second) // startup settles before sampling counts
		w.resetPeak()
		in := workflows.MigrateInput{
			ImageID:       img.ID,
			SourceRegion:  "DFW",
			TargetRegions: []string{"SYD"},
			Cleanup:       workflows.CleanupAlways,
		}
		run, err := e.tc.ExecuteWorkflow(
			ctx,
			client.StartWorkflowOptions{ID: "bench-mem-" + name, TaskQueue: "bench-mem"},
			workflows.MigrateImageWorkflow,
			in,
		)
		if err == nil {
			err = run.Get(ctx, nil)
		}
		peak, hwm := w.peakMiB(), float64(w.hwm())/1024
		w.shutdown()
		if err != nil {
			return nil, fmt.Errorf("migrate %s: %w", name, err)
		}
		peaks = append(peaks, peak)
		rows = append(
			rows,
			row{n: 3, name: fmt.Sprintf("worker peak RSS migrating %d MiB (%d transfers)", img.Size>>20, par),
				measured: fmt.Sprintf("%.0f MiB (kernel HWM %.0f MiB)", peak, hwm), baseline: "-", ratio: "-",
				goal: fmt.Sprintf("<= %.0f MiB", goalMiB), met: peak <= goalMiB},
		)
	}
	if len(peaks) == 2 {
		rows[1].ratio = fmt.Sprintf("%.2fx the small one", peaks[1]/peaks[0])
		rows[1].note = "the process's whole RSS (Go runtime, Temporal and NATS clients included) is counted " +
			"against the goal; the large/small ratio shows it does not grow with object size"
	}
	return rows, nil
}
