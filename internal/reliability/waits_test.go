package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// timing is a production timing scaled down with its ratios kept: tasks ten times the heartbeat
// timeout, and the worker's default polling (30 s doubling to 2 min, which the worker bounds to
// half the heartbeat timeout).
type timing struct {
	heartbeat time.Duration // the migration's heartbeat timeout
	task      time.Duration // the emulator's fixed task time
	rate      int64         // the emulator's task bytes per second (64 MiB image)
}

// scaled: heartbeat 3 s, tasks of 6 s + 64 MiB in 24 s = 30 s (10x the heartbeat timeout).
var scaled = timing{heartbeat: 3 * time.Second, task: 6 * time.Second, rate: (64 << 20) / 24}

// production: heartbeat 2 min and 10-minute tasks (2 min fixed + 64 MiB in 8 min), 5x.
var production = timing{heartbeat: 2 * time.Minute, task: 2 * time.Minute, rate: (64 << 20) / 480}

// TestLongTasksWithKillsInEveryWait migrates to two regions with tasks ten times the heartbeat
// timeout and the worker's default polling, kills the worker (SIGKILL) while it waits for the export and again while it
// waits for the imports, and answers task polls with a 413 storm longer than the heartbeat
// timeout. It checks exactly one export task, one import task per target and one image per
// target. IMAGEFLOW_LONG_TESTS=1 runs it at production timing (about 21 minutes).
func TestLongTasksWithKillsInEveryWait(t *testing.T) {
	tm := scaled
	if long() {
		tm = production
	}
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.TaskDuration, c.TaskBytesPerSecond = tm.task, tm.rate
	}})
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-web-01")
	logs := &testenv.SyncBuffer{}
	// The worker's default polling, not the suite's quick one.
	opts := []string{"IMAGEFLOW_NATS_DISABLED=true", "IMAGEFLOW_WORKER_TASK_POLL_INTERVAL=30s",
		"IMAGEFLOW_WORKER_TASK_POLL_MAX_INTERVAL=2m"}
	w := startWorker(t, env, "demo", "rel-waits", logs, opts...)
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD", "ORD"},
		HeartbeatTimeout: workflows.Duration(tm.heartbeat)}
	ctx := context.Background()
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID("100001", in), "rel-waits"),
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	budget := 3 * time.Minute
	if long() {
		budget = 40 * time.Minute
	}
	// Kill while the export is processing, after the worker has polled it at least once.
	wait(
		t,
		"the export to be processing",
		budget,
		func() bool { return taskIn(t, demo, "DFW", "export", "processing") },
	)
	time.Sleep(tm.heartbeat / 2)
	w.kill()
	w = startWorker(t, env, "demo", "rel-waits", logs, opts...)
	// A 413 storm on task polls for twice the heartbeat timeout.
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "rate-limit", Region: "DFW", Service: "images", Method: "GET",
		Path: "/v2/tasks/", RetryAfter: max(1, int(tm.heartbeat.Seconds()/3))}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * tm.heartbeat)
	env.Emulator.ClearFaults()
	// Kill again while both imports are processing.
	wait(t, "both imports to be processing", budget, func() bool {
		return taskIn(t, demo, "IAD", "import", "processing") && taskIn(t, demo, "ORD", "import", "processing")
	})
	time.Sleep(tm.heartbeat / 2)
	w.kill()
	startWorker(t, env, "demo", "rel-waits", logs, opts...)
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var res workflows.MigrateResult
	if err := run.Get(cctx, &res); err != nil {
		t.Fatalf("migration: %v\n%s", err, logs.String())
	}
	counts := map[string]int{"DFW export": countTasks(t, demo, "DFW", "export"),
		"IAD import": countTasks(t, demo, "IAD", "import"), "ORD import": countTasks(t, demo, "ORD", "import"),
		"IAD image": countImages(t, demo, "IAD", img.ID), "ORD image": countImages(t, demo, "ORD", img.ID)}
	for what, n := range counts {
		if n != 1 {
			t.Errorf("%d of %s, want exactly 1", n, what)
		}
	}
	t.Logf("export %.0fs, imports %.0fs and %.0fs, total %.0fs with two kills and a 413 storm; counts %v",
		res.ExportSeconds, res.Targets[0].ImportSeconds, res.Targets[1].ImportSeconds, res.TotalSeconds, counts)
	scanForSecrets(t, env, logs.String())
}

// taskIn reports whether the account has a task of the type in the status in region.
func taskIn(t *testing.T, c *cloud.Client, region, typ, status string) bool {
	ts, err := c.ListTasks(context.Background(), region)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if tk.Type == typ && tk.Status == status {
			return true
		}
	}
	return false
}

// countTasks counts the account's tasks of a type in region, whatever their status.
func countTasks(t *testing.T, c *cloud.Client, region, typ string) int {
	ts, err := c.ListTasks(context.Background(), region)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tk := range ts {
		if tk.Type == typ {
			n++
		}
	}
	return n
}
