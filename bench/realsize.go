package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/workflows"
)

// Row 11: real sizes. A migration of a 160 GB image (the largest Cloud Images imports) and the
// lineage re-migration of its next night's snapshot (5% of its blocks changed, clustered), by
// the real worker binary, against an emulator that keeps generated objects (served, compared
// and counted, never written: the disk here holds 64 GB). What grows with size is reported
// against a 4 GiB migration in the same emulator: time per GiB, the worker's peak RSS, the
// largest heartbeat the copy recorded (Temporal refuses payloads over 2 MiB), the run's history
// and the target's manifest.
func (e *env) realSize(ctx context.Context) ([]row, error) {
	fmt.Fprintf(os.Stderr, "row 11: generating a %d MiB image's checksum (one pass of MD5) ...\n", e.sz.huge>>20)
	emu, err := emulator.New(emulator.Config{DataDir: filepath.Join(e.dir, "emulator-huge"), GeneratedObjects: true,
		TaskDuration: 200 * time.Millisecond, Images: []emulator.SeedImage{
			{Name: "bench-base", Size: e.sz.hugeBase}, {Name: "bench-huge", Size: e.sz.huge}}})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	if err := emu.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	demo, err := cloud.New(ctx, cloud.Credentials{IdentityURL: emu.IdentityURL(), Username: "demo",
		APIKey: "demo-api-key"}, cloud.Options{})
	if err != nil {
		return nil, err
	}
	w, err := e.startWorker("demo", "bench-huge", "IMAGEFLOW_NATS_DISABLED=true",
		"IMAGEFLOW_CLOUD_IDENTITY_URL="+emu.IdentityURL())
	if err != nil {
		return nil, err
	}
	defer w.shutdown()
	time.Sleep(2 * time.Second)
	find := func(name string) (cloud.Image, error) {
		imgs, err := demo.ListImages(ctx, "DFW", cloud.ImageFilter{Name: name})
		if err != nil || len(imgs) != 1 {
			return cloud.Image{}, fmt.Errorf("image %s: %v (%d found)", name, err, len(imgs))
		}
		return imgs[0], nil
	}
	var runs []hugeRun
	for _, name := range []string{"bench-base", "bench-huge"} {
		img, err := find(name)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "row 11: migrating %s (%d MiB) ...\n", name, img.Size>>20)
		r, err := e.hugeMigration(ctx, w, img, "night1")
		if err != nil {
			return nil, fmt.Errorf("migrate %s: %w", name, err)
		}
		runs = append(runs, r)
	}
	fmt.Fprintln(os.Stderr, "row 11: the next night's snapshot (its checksum is another pass of MD5) ...")
	huge := runs[1].img
	snapAt := time.Now()
	id, err := emu.Snapshot(emulator.SnapshotRequest{Region: "DFW", ImageID: huge.ID, Name: "bench-huge-night2",
		ChangedPercent: 5, Pattern: "clustered"})
	if err != nil {
		return nil, err
	}
	snapTook := time.Since(snapAt)
	night2, err := find("bench-huge-night2")
	if err != nil || night2.ID != id {
		return nil, fmt.Errorf("snapshot %s: %v", id, err)
	}
	fmt.Fprintln(os.Stderr, "row 11: its lineage re-migration ...")
	delta, err := e.hugeMigration(ctx, w, night2, "night2")
	if err != nil {
		return nil, fmt.Errorf("re-migrate: %w", err)
	}
	return hugeRows(runs[0], runs[1], delta, snapTook), nil
}

// hugeRun is one measured migration of row 11.
type hugeRun struct {
	img        cloud.Image
	took       time.Duration
	target     workflows.TargetResult
	peakMiB    float64
	beatBytes  int // the largest heartbeat details a pending copy carried
	events     int
	historyKiB float64
	copy       cloud.CopyResult
}

// hugeMigration migrates img DFW -> LON with a lineage kept, sampling the worker and the run.
func (e *env) hugeMigration(ctx context.Context, w *child, img cloud.Image, tag string) (hugeRun, error) {
	r := hugeRun{img: img}
	w.resetPeak()
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"LON"},
		Cleanup: workflows.CleanupAlways, LineageKeep: 1, LineageKey: fmt.Sprintf("bench-%d", img.Size)}
	id := "bench-huge-" + tag + "-" + img.ID
	start := time.Now()
	run, err := e.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "bench-huge"},
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		return r, err
	}
	var beat beatSampler
	sctx, stop := context.WithCancel(ctx)
	go beat.sample(sctx, e.tc, id)
	var res workflows.MigrateResult
	err = run.Get(ctx, &res)
	stop()
	r.took, r.peakMiB, r.beatBytes = time.Since(start), w.peakMiB(), beat.max()
	if err != nil {
		return r, err
	}
	if len(res.Targets) != 1 || res.Targets[0].Status != "succeeded" {
		return r, fmt.Errorf("result %+v", res)
	}
	r.target = res.Targets[0]
	evs, err := e.history(ctx, id, run.GetRunID())
	if err != nil {
		return r, err
	}
	r.events = len(evs)
	for _, ev := range evs {
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && len(a.GetResult().GetPayloads()) == 1 {
			var c cloud.CopyResult
			if json.Unmarshal(a.GetResult().GetPayloads()[0].GetData(), &c) == nil && c.Segments > 0 {
				r.copy = c
			}
		}
	}
	r.historyKiB = float64(historyBytes(evs)) / 1024
	return r, nil
}

// beatSampler records the largest heartbeat details of the run's pending copy, every second.
type beatSampler struct {
	mu      sync.Mutex
	biggest int
}

func (b *beatSampler) sample(ctx context.Context, tc client.Client, id string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			continue
		}
		for _, pa := range d.GetPendingActivities() {
			if n := proto.Size(pa.GetHeartbeatDetails()); n > 0 {
				b.mu.Lock()
				b.biggest = max(b.biggest, n)
				b.mu.Unlock()
			}
		}
	}
}

func (b *beatSampler) max() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.biggest
}

func hugeRows(base, huge, delta hugeRun, snapTook time.Duration) []row {
	gib := func(r hugeRun) float64 { return float64(r.img.Size) / (1 << 30) }
	perGiB := func(r hugeRun) float64 { return r.took.Seconds() / gib(r) }
	sizeName := fmt.Sprintf("%d MiB", huge.img.Size>>20)
	ratio := perGiB(huge) / perGiB(base)
	sent := float64(delta.target.BytesSent) / float64(delta.img.Size)
	rows := []row{
		{n: 11, name: "migration of " + sizeName + " (DFW -> LON, generated objects), time per GiB",
			measured: fmt.Sprintf("%.1f s/GiB (%s in all)", perGiB(huge), huge.took.Round(time.Second)),
			baseline: fmt.Sprintf("%.1f s/GiB, %d MiB (%s)", perGiB(base), base.img.Size>>20,
				base.took.Round(time.Second)),
			ratio: fmt.Sprintf("%.2fx", ratio), goal: "<= 1.20x", met: ratio <= 1.2},
		{n: 11, name: "worker peak RSS migrating " + sizeName,
			measured: fmt.Sprintf("%.0f MiB", huge.peakMiB), baseline: fmt.Sprintf("%.0f MiB", base.peakMiB),
			ratio: fmt.Sprintf("%.2fx", huge.peakMiB/base.peakMiB), goal: "<= 68 MiB (row 3's)",
			met: huge.peakMiB <= 68},
		{n: 11, name: "largest copy heartbeat, " + sizeName,
			measured: fmt.Sprintf("%d B", huge.beatBytes), baseline: fmt.Sprintf("%d B", base.beatBytes),
			ratio: "-", goal: "<= 16 KiB (Temporal's limit: 2 MiB)", met: huge.beatBytes <= 16<<10},
		{n: 11, name: "history of the migration, " + sizeName,
			measured: fmt.Sprintf("%d events, %.0f KiB", huge.events, huge.historyKiB),
			baseline: fmt.Sprintf("%d events, %.0f KiB", base.events, base.historyKiB),
			ratio:    fmt.Sprintf("%.2fx the bytes", huge.historyKiB/base.historyKiB), goal: "<= 1.5x the bytes",
			met: huge.historyKiB <= 1.5*base.historyKiB},
		{n: 11, name: "target manifest, " + sizeName,
			measured: fmt.Sprintf("%s over %d segments", huge.copy.Manifest, huge.copy.Segments),
			baseline: fmt.Sprintf("%s over %d segments", base.copy.Manifest, base.copy.Segments),
			ratio:    "-", goal: "a manifest Swift serves at full speed (an SLO, nested past 1000 segments; no DLO)",
			met: huge.copy.Manifest == "slo" && huge.copy.Segments <= 1000 || huge.copy.Manifest == "nested-slo"},
		{n: 11, name: fmt.Sprintf("lineage re-migration of %s, 5%% of blocks changed (clustered)", sizeName),
			measured: fmt.Sprintf("%s, sent %.1f%%, %s over %d segments, heartbeat %d B, RSS %.0f MiB",
				delta.took.Round(time.Second), 100*sent, delta.copy.Manifest, delta.copy.Segments, delta.beatBytes,
				delta.peakMiB),
			baseline: fmt.Sprintf("%s full migration", huge.took.Round(time.Second)),
			ratio:    fmt.Sprintf("%.2f of the time", delta.took.Seconds()/huge.took.Seconds()),
			goal:     "<= 0.10 of the bytes, heartbeat <= 16 KiB",
			met:      sent <= 0.10 && delta.beatBytes <= 16<<10,
			note: fmt.Sprintf("the snapshot's checksum took %s (the emulator's MD5 of the whole image, as a "+
				"cloud computes it); the lineage copy reads and hashes every source range in the source "+
				"region, so its time is at least one MD5 pass over the image on the worker",
				snapTook.Round(time.Second))},
	}
	return rows
}
