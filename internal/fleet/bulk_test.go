package fleet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestBulkCancelledAtHalfThenResumed: a bulk of 40 images, cancelled once half have migrated,
// lets the migrations under way finish and starts no more; nothing half-made is left (no open
// migration, no intermediate object, no copy without its stamp). The same request started again
// does only what is left: the done images' runs are not redone (one run per migration id in all)
// and every image ends with exactly one copy.
func TestBulkCancelledAtHalfThenResumed(t *testing.T) {
	const n = 40
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.TaskDuration = 300 * time.Millisecond
		for i := range n {
			c.Images = append(c.Images, emulator.SeedImage{Name: fmt.Sprintf("bulk-%02d", i), Size: 64 << 10,
				Tags: []string{"bulk"}})
		}
	}})
	env.StartWorker("demo", testenv.WorkerOptions{})
	demo := env.Cloud("demo")
	in := workflows.BulkRequest{SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		Filter: cloud.ImageFilter{Tags: []string{"bulk"}}, Concurrency: 6, BatchSize: 8}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	id := workflows.BulkWorkflowID("100001", in)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := func() {
		if _, err := env.Client.ExecuteWorkflow(ctx, workflows.StartOptions(id, testenv.TaskQueue("demo")),
			workflows.BulkMigrateWorkflow, workflows.BulkInput{BulkRequest: in}); err != nil {
			t.Fatal(err)
		}
	}
	start()
	for st := (workflows.BulkStatus{}); st.Summary.Succeeded < n/2; time.Sleep(20 * time.Millisecond) {
		if v, err := env.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery); err == nil {
			_ = v.Get(&st)
		}
		if ctx.Err() != nil {
			t.Fatalf("the bulk never got half-way: %+v", st)
		}
	}
	if err := env.Client.CancelWorkflow(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	var ce *temporal.CanceledError
	err := env.Client.GetWorkflow(ctx, id, "").Get(ctx, nil)
	if !errors.As(err, &ce) {
		t.Fatalf("want the bulk cancelled, got %v", err)
	}
	var first workflows.BulkSummary
	if err := ce.Details(&first); err != nil {
		t.Fatal(err)
	}
	t.Logf("cancelled: %d migrated, %d failed, %d not started", first.Succeeded, first.Failed, first.NotStarted)
	if first.Failed != 0 || first.NotStarted == 0 || first.Succeeded+first.NotStarted != n {
		t.Fatalf("cancelled bulk's summary: %+v", first)
	}
	if open := openMigrations(t, env); open != 0 {
		t.Fatalf("%d migrations still open after the bulk ended: it must drain them", open)
	}
	if copies := copiesBySource(t, demo); len(copies) != first.Succeeded {
		t.Fatalf("%d images have copies in IAD after the cancel, %d migrated", len(copies), first.Succeeded)
	}

	start()
	var second workflows.BulkSummary
	if err := env.Client.GetWorkflow(ctx, id, "").Get(ctx, &second); err != nil {
		t.Fatal(err)
	}
	if second.Succeeded != n || second.AlreadyDone != first.Succeeded || second.Failed != 0 {
		t.Fatalf("resumed bulk's summary: %+v (the first: %+v)", second, first)
	}
	for src, c := range copiesBySource(t, demo) {
		if c != 1 {
			t.Errorf("image %s has %d copies in IAD", src, c)
		}
	}
	if copies := copiesBySource(t, demo); len(copies) != n {
		t.Fatalf("%d of %d images have a copy", len(copies), n)
	}
	imgs, err := demo.ListImages(ctx, "DFW", cloud.ImageFilter{Tags: []string{"bulk"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		child := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
			Policy: in.Policy, Cleanup: in.Cleanup}
		if runs := env.Runs(workflows.MigrateWorkflowID("100001", child)); runs != 1 {
			t.Errorf("image %s was migrated by %d runs", img.Name, runs)
		}
	}
	awaitNoLeftovers(t, demo)
}

// openMigrations counts the MigrateImage runs still open.
func openMigrations(t *testing.T, env *testenv.Env) int {
	t.Helper()
	resp, err := env.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: env.Namespace, Query: "WorkflowType = 'MigrateImage' AND ExecutionStatus = 'Running'"})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Executions)
}

// copiesBySource counts IAD's copies by the source image they were made from.
func copiesBySource(t *testing.T, demo *cloud.Client) map[string]int {
	t.Helper()
	made, err := demo.ListImages(context.Background(), "IAD", cloud.ImageFilter{Owner: "100001",
		Tags: []string{"bulk"}})
	if err != nil {
		t.Fatal(err)
	}
	copies := map[string]int{}
	for _, img := range made {
		src := img.Properties[workflows.PropSourceImageID]
		if src == "" {
			t.Errorf("image %s in IAD carries no migration stamp: half-made", img.ID)
		}
		copies[src]++
	}
	return copies
}

// awaitNoLeftovers waits for the cleanup runs the migrations started to empty both regions'
// intermediate containers.
func awaitNoLeftovers(t *testing.T, demo *cloud.Client) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		left := testenv.Leftovers(t, demo, "DFW") + testenv.Leftovers(t, demo, "IAD")
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d intermediate objects left a minute after the bulk", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
