package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/converter"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestEtaMovesWithTheCopy: the worker estimates copies at 50 MiB/s but the link into IAD carries
// 2 MiB/s, so the estimate made before the copy puts the ETA seconds after the start while the copy
// takes a quarter of a minute (issue 40: "ETA about 17s on a copy that took 4 minutes", with
// ImageflowEta as stale). The copy tells its run its measured end once it moved by more than the
// worker's shift (here 2 s; 30 s in production against copies of minutes), and the run's status,
// ImageflowEta and current details then say the copy's end, not the stale estimate.
func TestEtaMovesWithTheCopy(t *testing.T) {
	env := testenv.New(t)
	// Two transfers, not the ceiling's sixteen: each connection's socket buffers take bytes the
	// slow link has not carried (the copy counts them sent), and on a machine whose buffers grow
	// to megabytes sixteen of them held half of this 64 MiB image, so the copy's own end swung by
	// seconds at each burst; a real image is gigabytes, where the buffers are a rounding error.
	env.StartWorker("demo", testenv.WorkerOptions{EtaShift: 2 * time.Second,
		Tune: func(c *activities.Config) { c.CopyParallelism, c.CopyMaxParallelism = 2, 2 }})
	demo := env.Cloud("demo")
	web := find(t, demo, "DFW", "demo-web-01")
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "link", Region: "IAD", Service: "files", Method: "PUT",
		BytesPerSecond: 2 << 20}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	in := workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		TargetName: "eta-test"}
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo", web.ID),
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	copyTakes := time.Duration(web.Size/(2<<20)) * time.Second
	var st workflows.MigrateStatus
	deadline := time.Now().Add(time.Minute)
	for {
		v, err := env.Client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.StatusQuery)
		if err == nil && v.Get(&st) == nil && st.Targets["IAD"] == "copying" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy did not begin: %+v %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	estimated := st.ETA
	if estimated.After(time.Now().Add(copyTakes / 2)) {
		t.Fatalf("the estimate already expects a slow copy (%s); the test needs it wrong", st.ETA)
	}
	time.Sleep(copyTakes / 2)
	st = consistentEta(t, env, run.GetID(), run.GetRunID())
	// Half-way the run's ETA is the copy's own (from its measured rate, in its heartbeat) plus the
	// import's estimate, within the shift or a tenth of the time left; not the estimate, passed.
	own := copyEnd(t, env, run.GetID())
	want := own.Add(time.Duration(st.Estimate.ImportSeconds * float64(time.Second)))
	if off := st.ETA.Sub(want).Abs(); off > max(2*time.Second, time.Until(want)/10)+4*time.Second {
		t.Errorf("half-way the run's ETA is %s, the copy's end plus the import %s", st.ETA, want)
	}
	if !st.ETA.After(time.Now()) || st.ETA.Sub(estimated) < copyTakes/4 {
		t.Errorf("half-way through a %s copy the ETA is %s, the estimate was %s: it did not move with the copy",
			copyTakes, st.ETA, estimated)
	}
	moved := st.ETA.Sub(estimated).Round(time.Second)
	env.Emulator.ClearFaults()
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil || len(res.Targets) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	t.Logf("a %s copy estimated at %s; half-way the run's ETA had moved %s later, to the copy's own end",
		copyTakes, time.Duration(st.Estimate.CopySeconds*float64(time.Second)).Round(time.Millisecond), moved)
}

// copyEnd is the end the run's copy measures for itself, from its last heartbeat.
func copyEnd(t *testing.T, env *testenv.Env, id string) time.Time {
	t.Helper()
	desc, err := env.Client.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, pa := range desc.GetPendingActivities() {
		if pa.GetActivityType().GetName() != "CopyObjectAcrossRegions" {
			continue
		}
		var p cloud.CopyProgress
		if err := converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &p); err != nil {
			t.Fatal(err)
		}
		end, err := time.Parse(time.RFC3339, p.ETA)
		if err != nil {
			t.Fatalf("the copy's heartbeat has no end: %+v", p)
		}
		return end
	}
	t.Fatal("no copy is running")
	return time.Time{}
}

// consistentEta reads the run's ETA where people see it (the status query, ImageflowEta, the UI's
// current details) until the three agree within a few seconds: a copy's tell may land between two
// reads, and one read may trail another by a tell. Each trails the copy by at most that, never
// by the stale estimate (the caller checks how far the ETA moved).
func consistentEta(t *testing.T, env *testenv.Env, id, runID string) workflows.MigrateStatus {
	t.Helper()
	ctx := context.Background()
	var attr, details string
	var st workflows.MigrateStatus
	near := func(at time.Time, err error) bool { return err == nil && at.Sub(st.ETA).Abs() <= 5*time.Second }
	for range 20 {
		v, err := env.Client.QueryWorkflow(ctx, id, runID, workflows.StatusQuery)
		if err != nil || v.Get(&st) != nil {
			t.Fatal(err)
		}
		desc, err := env.Client.DescribeWorkflowExecution(ctx, id, runID)
		if err != nil {
			t.Fatal(err)
		}
		attr = string(desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.SearchEta.GetName()].GetData())
		mv, err := env.Client.QueryWorkflow(ctx, id, runID, "__temporal_workflow_metadata") // the SDK's own query
		var md sdkpb.WorkflowMetadata
		if err != nil || mv.Get(&md) != nil {
			t.Fatalf("the run's metadata: %v", err)
		}
		details = md.GetCurrentDetails()
		var attrAt time.Time
		attrErr := json.Unmarshal([]byte(attr), &attrAt)
		m := etaInDetails.FindStringSubmatch(details)
		var detailsAt time.Time
		detailsErr := errors.New("no ETA in the details")
		if m != nil {
			detailsAt, detailsErr = time.Parse(time.DateTime, m[1])
		}
		if near(attrAt, attrErr) && near(detailsAt, detailsErr) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the status's ETA %s; ImageflowEta %s; current details %q", st.ETA, attr, details)
	return st
}

var etaInDetails = regexp.MustCompile(`ETA (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC`)
