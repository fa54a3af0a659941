package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/workflows"
)

// scaleOutReplicas are the worker replica counts row 8 compares.
var scaleOutReplicas = []int{1, 2, 4}

// scaleOutImage names row 8's images: one set per replica count, so no run finds another's.
func scaleOutImage(replicas, i int) string { return fmt.Sprintf("bench-scale-%d-%03d", replicas, i) }

// Row 8: the same batch of migrations, arriving by event at once, handled by 1, 2 and 4 worker
// processes of one account on one task queue and one durable consumer.
func (e *env) scaleOut(ctx context.Context) ([]row, error) {
	var rows []row
	var base float64
	for _, n := range scaleOutReplicas {
		perHour, perSec, rss, err := e.scaleOutRun(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("%d replicas: %w", n, err)
		}
		if n == 1 {
			base, e.oneReplicaPerHour = perHour, perHour
		}
		rows = append(rows, row{n: 8,
			name: fmt.Sprintf("%d migrations (%d MiB each) by event, %d worker replica(s)", e.sz.scaleOut,
				e.sz.scaleOutMiB, n),
			measured: fmt.Sprintf("%.0f migrations/h; %.1f events/s to start; %.0f MiB RSS per replica",
				perHour, perSec, rss),
			baseline: fmt.Sprintf("1 replica: %.0f migrations/h", base),
			ratio:    fmt.Sprintf("%.2fx", perHour/base), goal: "-", met: true})
	}
	rows[len(rows)-1].note = "one machine of 2 cores holds the emulator (which MD5s and writes every byte on " +
		"both sides), Temporal on SQLite, NATS and every replica: replicas add activity slots and connections, " +
		"not cores, so the cores and the emulator bound the gain here; on separate machines each replica " +
		"brings its own"
	return rows, nil
}

// scaleOutRun migrates one batch with n replicas; it returns migrations per hour, events per
// second (publish to the last run's start) and the mean peak RSS of the replicas in MiB.
func (e *env) scaleOutRun(ctx context.Context, n int) (float64, float64, float64, error) {
	var workers []*child
	defer func() {
		for _, w := range workers {
			w.shutdown()
		}
	}()
	for range n {
		w, err := e.startWorker("demo", "bench-scale-out")
		if err != nil {
			return 0, 0, 0, err
		}
		workers = append(workers, w)
	}
	time.Sleep(2 * time.Second) // every replica has joined the consumer and the task queue
	pub := events.NewPublisher(e.js, subjects, "bench")
	ids := make([]string, e.sz.scaleOut)
	start := time.Now()
	for i := range ids {
		img, err := e.image(scaleOutImage(n, i))
		if err != nil {
			return 0, 0, 0, err
		}
		in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"ORD"},
			Cleanup: workflows.CleanupAlways}
		ids[i] = workflows.MigrateWorkflowID("100001", in)
		if err := pub.Command(ctx, events.CmdMigrate, "bench-scale-"+ids[i], "100001", in); err != nil {
			return 0, 0, 0, err
		}
	}
	var lastStart time.Time
	for _, id := range ids {
		if err := e.awaitRun(ctx, id); err != nil {
			return 0, 0, 0, err
		}
		d, err := e.tc.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return 0, 0, 0, err
		}
		if st := d.WorkflowExecutionInfo.StartTime.AsTime(); st.After(lastStart) {
			lastStart = st
		}
	}
	took := time.Since(start)
	var rss float64
	for _, w := range workers {
		rss += w.peakMiB()
	}
	perSec := float64(len(ids)) / lastStart.Sub(start).Seconds()
	return float64(len(ids)) / took.Hours(), perSec, rss / float64(n), nil
}

// awaitRun waits for a run the bridge starts: until it exists, then until it ends.
func (e *env) awaitRun(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		var res workflows.MigrateResult
		err := e.tc.GetWorkflow(ctx, id, "").Get(ctx, &res)
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			if err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("%s never started: %w", id, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
