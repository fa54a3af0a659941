package reliability

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestImagesOutageDuringTheImportPoll: the images service of the target answers 503 while the
// worker polls its import task, for longer than the task takes (on devstack: 6 minutes of 503s
// against 66-second tasks and a poll backing off to 2 minutes; here a 4 s outage against 2 s
// tasks and a poll backing off to 200 ms). The poll waits it out inside its attempt, so Temporal's
// retry state never showed it: the run said Running and nothing else. Now the run is told at
// once: its status and ImageflowJobStatus say Waiting, naming the region and service first; the
// operators get job.waiting past the notice threshold; and the wait ends with one image.
func TestImagesOutageDuringTheImportPoll(t *testing.T) {
	const outage = 4 * time.Second
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.ExportSegmentSize, c.TaskDuration, c.TaskBytesPerSecond = 16<<20, 0, 32<<20 // 64 MiB: 2 s tasks
	}})
	env.StartWorker("demo", testenv.WorkerOptions{Events: true, WaitNoticeAfter: outage / 4})
	waiting := env.Collect(testenv.Subjects.AllFacts(activities.FactJobWaiting))
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-web-01")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}}
	opts := start(workflows.MigrateWorkflowID("100001", in), testenv.TaskQueue("demo"))
	opts.TypedSearchAttributes = workflows.StartAttributes(img.ID, "DFW", in.TargetRegions, nil)
	run, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	status := func() workflows.MigrateStatus {
		var st workflows.MigrateStatus
		if v, err := env.Client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.StatusQuery); err == nil {
			_ = v.Get(&st)
		}
		return st
	}
	polling := func() bool { // the import task exists and is polled: its activity has beaten
		desc, err := env.Client.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil {
			return false
		}
		for _, pa := range desc.GetPendingActivities() {
			if pa.GetActivityType().GetName() == "ImportImage" && pa.GetHeartbeatDetails() != nil {
				return true
			}
		}
		return false
	}
	for !polling() {
		if ctx.Err() != nil {
			t.Fatal("the import task was never polled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "error", Region: "IAD", Service: "images",
		Status: 503}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage / 2)
	st := status()
	desc, err := env.Client.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if st.Waiting == nil || !strings.HasPrefix(st.Waiting.Reason, "IAD images: poll of task") ||
		!strings.Contains(st.Waiting.Reason, "503") {
		t.Fatalf("status halfway through the outage: %+v, want a wait naming IAD's images first", st.Waiting)
	}
	if js := jobStatusOf(desc.GetWorkflowExecutionInfo().GetSearchAttributes()); js != workflows.JobWaiting {
		t.Errorf("ImageflowJobStatus during the outage is %q, want %q", js, workflows.JobWaiting)
	}
	time.Sleep(outage / 2)
	env.Emulator.ClearFaults()
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("migration across the images outage: %v", err)
	}
	if n := countImages(t, demo, "IAD", img.ID); n != 1 {
		t.Fatalf("%d images in IAD after the outage, want 1", n)
	}
	facts := waiting.All()
	if len(facts) == 0 || !strings.Contains(string(facts[0]), "IAD images: poll of task") {
		t.Fatalf("job.waiting facts: %q, want one naming IAD's images", facts)
	}
}

// TestCleanupDoesNotHoldCompletion: the source region's storage answers 503 from the import on,
// for ten retry caps (on devstack: 5 minutes of 503s; cleanup held migration.completed 8.5
// minutes). The migration ends, with its result and migration.completed, once its image is
// active; its cleanup is a run of its own that waits out the outage and then deletes every
// object, announcing cleanup.completed.
func TestCleanupDoesNotHoldCompletion(t *testing.T) {
	const retryCap = 250 * time.Millisecond
	const outage = 20 * retryCap
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.ExportSegmentSize, c.TaskDuration, c.TaskBytesPerSecond = 16<<20, 0, 64<<20 // 64 MiB: 1 s tasks
	}})
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	cleaned := env.Collect(testenv.Subjects.AllFacts(workflows.FactCleanupCompleted))
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-web-01")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		MaxRetryInterval: workflows.Duration(retryCap)}
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID("100001", in),
		testenv.TaskQueue("demo")), workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var st workflows.MigrateStatus
		if v, err := env.Client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.StatusQuery); err == nil &&
			v.Get(&st) == nil && st.Targets["IAD"] == "importing" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the import never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "error", Region: "DFW", Service: "files",
		Status: 503}); err != nil {
		t.Fatal(err)
	}
	faulted := time.Now()
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("migration: %v", err)
	}
	ended := time.Since(faulted)
	if ended >= outage || res.Cleanup == "" {
		t.Fatalf("the migration ended %s into a %s outage of its source's storage (cleanup run %q): "+
			"cleanup held it", ended, outage, res.Cleanup)
	}
	time.Sleep(outage - ended)
	d, err := env.Client.DescribeWorkflowExecution(ctx, res.Cleanup, "")
	if err != nil || d.GetWorkflowExecutionInfo().GetStatus().String() != "Running" {
		t.Fatalf("the cleanup run at the end of the outage: %v %v, want it running (waiting it out)",
			d.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	env.Emulator.ClearFaults()
	if done := env.AwaitCleanup(res.Cleanup); done.ObjectsDeleted == 0 {
		t.Fatalf("the cleanup run deleted nothing: %+v", done)
	}
	for _, r := range []string{"DFW", "IAD"} {
		if n := testenv.Leftovers(t, demo, r); n != 0 {
			t.Errorf("%d intermediate objects left in %s", n, r)
		}
	}
	if facts := cleaned.All(); len(facts) != 1 || !strings.Contains(string(facts[0]), run.GetID()) {
		t.Fatalf("cleanup.completed facts: %q", facts)
	}
	t.Logf("migration ended %s after the storage outage began; cleanup waited it out", ended.Round(time.Millisecond))
}
