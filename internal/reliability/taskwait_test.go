package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestTaskWaitsEndOnTime: at production's ratios (6-minute tasks, polls 30 s apart doubling to
// a minute under a 2-minute heartbeat timeout), scaled down 60 times (6 s tasks, 500 ms, 1 s,
// 2 s), a migration's export and import are each noticed within 5% of their duration after they
// end. The emulator says when each task ended and when a GET of it first said so, both on its
// own clock: what the worker controls (when it polls), apart from what it does not (the load on
// the machine delaying the activity's completion reaching Temporal, which once made an on-time
// poll look 494 ms late). The doubling backoff alone noticed a finished task up to a poll ceiling
// late (8% of a task on average here, 8.5% measured on devstack).
func TestTaskWaitsEndOnTime(t *testing.T) {
	const image = 8 << 20
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		// 1 s fixed plus 5 s of processing: whole seconds, so the cloud's second-resolution
		// timestamps measure the task rate exactly, as minutes-long tasks make them in production.
		// A small image keeps the emulator's own work (copying and hashing the bytes, which is
		// not scaled) to a few milliseconds, as it is a negligible part of a real task.
		c.TaskDuration, c.TaskBytesPerSecond = time.Second, image/5
		c.Images = append(c.Images, emulator.SeedImage{Name: "small-01", Size: image})
	}})
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "small-01")
	logs := &testenv.SyncBuffer{}
	startWorker(t, env, "demo", "rel-taskwait", logs, "IMAGEFLOW_NATS_DISABLED=true",
		"IMAGEFLOW_WORKER_TASK_POLL_INTERVAL=500ms", "IMAGEFLOW_WORKER_TASK_POLL_MAX_INTERVAL=2s",
		fmt.Sprintf("IMAGEFLOW_WORKER_ESTIMATE_TASK_RATE=%d", image/6))
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		HeartbeatTimeout: workflows.Duration(2 * time.Second)}
	ctx := context.Background()
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID("100001", in), "rel-taskwait"),
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for region, typ := range map[string]string{"DFW": "export", "IAD": "import"} {
		ended, seen := taskEnds(t, env, region, typ)
		late := seen.Sub(ended)
		t.Logf("%s task noticed %s after it ended (%.1f%% of 6 s)", typ, late.Round(time.Millisecond),
			100*late.Seconds()/6)
		if late < 0 || late > 300*time.Millisecond { // 5% of 6 s
			t.Errorf("%s task noticed %s after it ended, more than 5%% of its 6 s", typ, late)
		}
	}
}

// taskEnds finds the demo account's one task of typ in region and asks the emulator when it
// ended and when a GET first said so.
func taskEnds(t *testing.T, env *testenv.Env, region, typ string) (ended, seen time.Time) {
	ts, err := env.Cloud("demo").ListTasks(context.Background(), region)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range ts {
		if tk.Type == typ {
			ids = append(ids, tk.ID)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%s has %d %s tasks, want 1", region, len(ids), typ)
	}
	ended, seen = env.Emulator.TaskEnds(region, ids[0])
	if ended.IsZero() || seen.IsZero() {
		t.Fatalf("%s task %s in %s: ended %v, seen ended %v", typ, ids[0], region, ended, seen)
	}
	return ended, seen
}
