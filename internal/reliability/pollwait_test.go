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
