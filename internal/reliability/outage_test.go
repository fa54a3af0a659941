package reliability

import (
	"context"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestOutageLongerThanTheOldLadder: a region's Cloud Files answer 503 from the start of a
// migration for ten times as long as the old retry ladder lasted, then recover. The ladder was
// ten attempts backing off from 1 s to a 1-minute cap (about four minutes, after which the run
// failed for good); here the cap is scaled to 250 ms, so the old ladder would have lasted about
// 2.5 s and the outage lasts 25 s (100 s with IMAGEFLOW_LONG_TESTS=1). The migration must wait
// it out and finish with one image in the target.
func TestOutageLongerThanTheOldLadder(t *testing.T) {
	retryCap := 250 * time.Millisecond
	outage := 10 * 10 * retryCap // ten times ten attempts at the cap
	if long() {
		outage *= 4
	}
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.ExportSegmentSize = 16 << 20
	}})
	// The worker announces a step waiting longer than a fifth of the outage (10 minutes at
	// production's scale, against an outage of hours), and again as the wait doubles.
	env.StartWorker("demo", testenv.WorkerOptions{Events: true, WaitNoticeAfter: outage / 5})
	waiting := env.Collect(testenv.Subjects.AllFacts(activities.FactJobWaiting))
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-web-01")
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "error", Region: "IAD", Service: "files",
		Status: 503}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), outage+3*time.Minute)
	defer cancel()
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		MaxRetryInterval: workflows.Duration(retryCap)}
	opts := start(workflows.MigrateWorkflowID("100001", in), testenv.TaskQueue("demo"))
	opts.TypedSearchAttributes = workflows.StartAttributes(img.ID, "DFW", in.TargetRegions, nil)
	run, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	time.Sleep(outage)
	desc, err := env.Client.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus().String(); st != "Running" {
		t.Fatalf("after a %s outage the run is %s, want still running (waiting it out)", outage, st)
	}
	// The run knows it waits (the worker told it): its status, its UI details and its
	// ImageflowJobStatus say so.
	v, err := env.Client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.StatusQuery)
	var status workflows.MigrateStatus
	if err != nil || v.Get(&status) != nil || status.Waiting == nil || status.Waiting.Attempt < 2 {
		t.Fatalf("status during the outage: %+v (%v), want a step waiting", status, err)
	}
	if js := jobStatusOf(desc.GetWorkflowExecutionInfo().GetSearchAttributes()); js != workflows.JobWaiting {
		t.Errorf("ImageflowJobStatus during the outage is %q, want %q", js, workflows.JobWaiting)
	}
	attempts := int32(0)
	for _, pa := range desc.GetPendingActivities() {
		attempts = max(attempts, pa.GetAttempt())
	}
	if attempts <= 10 {
		t.Errorf("the waiting step is on attempt %d after the outage, want more than the old ladder's 10", attempts)
	}
	env.Emulator.ClearFaults()
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("migration across a %s outage: %v", outage, err)
	}
	if n := countImages(t, demo, "IAD", img.ID); n != 1 {
		t.Fatalf("%d images in IAD after the outage, want 1", n)
	}
	// Waits of a fifth, two fifths and four fifths of the outage: three facts in the stream (one
	// per doubling, however many attempts announced it), naming the run and the step.
	facts := waiting.All()
	if len(facts) == 0 || !strings.Contains(string(facts[0]), run.GetID()) ||
		!strings.Contains(string(facts[0]), `"attempt"`) {
		t.Fatalf("job.waiting facts: %q", facts)
	}
	if n := factsIn(t, env, testenv.Subjects.AllFacts(activities.FactJobWaiting)); n != 3 {
		t.Fatalf("%d job.waiting facts in the stream, want 3 (at 5 s, 10 s and 20 s of a 25 s wait)", n)
	}
	t.Logf("outage %s; step on attempt %d when it ended; migration done %s after it began; %d job.waiting facts",
		outage, attempts, time.Since(began).Round(time.Second), 3)
}

// TestIdentityOutageDuringAMigration: identity answers 500 for ten times the old retry ladder
// (scaled as above: 25 s) while every token has just expired, so each of the worker's calls must
// renew one and cannot. Before, the first failed renewal was taken for bad credentials and
// failed the run for good; now the run waits, and finishes once identity is back, with one
// image.
func TestIdentityOutageDuringAMigration(t *testing.T) {
	retryCap := 250 * time.Millisecond
	outage := 10 * 10 * retryCap
	if long() {
		outage *= 12 // five minutes
	}
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.ExportSegmentSize = 16 << 20
	}})
	env.StartWorker("demo")
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-web-01")
	ctx, cancel := context.WithTimeout(context.Background(), outage+3*time.Minute)
	defer cancel()
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"ORD"},
		MaxRetryInterval: workflows.Duration(retryCap)}
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "error", Service: "identity", Status: 500}); err != nil {
		t.Fatal(err)
	}
	env.Emulator.ExpireTokens()
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID("100001", in),
		testenv.TaskQueue("demo")), workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage)
	desc, err := env.Client.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus().String(); st != "Running" {
		t.Fatalf("after a %s identity outage the run is %s, want still running", outage, st)
	}
	env.Emulator.ClearFaults()
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("migration across a %s identity outage: %v", outage, err)
	}
	if n := countImages(t, demo, "ORD", img.ID); n != 1 {
		t.Fatalf("%d images in ORD after the identity outage, want 1", n)
	}
}

// jobStatusOf reads ImageflowJobStatus from a run's search attributes ("" when unset).
func jobStatusOf(sa *commonpb.SearchAttributes) string {
	p := sa.GetIndexedFields()[workflows.SearchJobStatus.GetName()]
	var v string
	if p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
	}
	return v
}
