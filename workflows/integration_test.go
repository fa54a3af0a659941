package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestMigrateAndShareOnRealTemporal runs MigrateImage, ShareImage and AcceptShare on a real
// Temporal server against the emulator, with a producer (demo) and a consumer (partner) worker.
// With IMAGEFLOW_RECORD_HISTORIES=1 it refreshes the histories the replay test uses.
func TestMigrateAndShareOnRealTemporal(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo")
	env.StartWorker("partner")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	web := find(t, demo, "DFW", "demo-web-01")

	in := workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD", "LON"}}
	run, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo", web.ID),
		workflows.MigrateImageWorkflow,
		in,
	)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	// The migration ended with its images; its objects go in a cleanup run of their own.
	if cleaned := env.AwaitCleanup(res.Cleanup); cleaned.ObjectsDeleted == 0 {
		t.Fatalf("cleanup deleted nothing: %+v", res)
	}
	for i, region := range []string{"IAD", "LON"} {
		tr := res.Targets[i]
		img, err := demo.GetImage(ctx, region, tr.ImageID)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Status != "succeeded" || img.Status != "active" || img.Checksum != web.Checksum || img.Size != web.Size ||
			img.Properties["app"] != "web" || img.Properties["team"] != "platform" || len(img.Tags) != 2 ||
			img.Properties[workflows.PropMigrationID] != run.GetID() || img.Properties[workflows.PropSourceImageID] != web.ID {
			t.Fatalf("%s image %+v from %+v", region, img, tr)
		}
		left, err := demo.ListObjects(ctx, region, "", "")
		if err == nil && len(left) > 0 {
			t.Fatalf("intermediate objects left in %s: %v", region, left)
		}
	}
	// Not even the migration's empty containers stay behind.
	for _, region := range []string{"DFW", "IAD", "LON"} {
		cs, err := demo.ListContainers(ctx, region)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if strings.HasPrefix(c.Name, "imageflow-") {
				t.Fatalf("container %s left in %s after cleanup", c.Name, region)
			}
		}
	}
	// The same request again joins the finished run: no second migration, same result.
	again, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo", web.ID),
		workflows.MigrateImageWorkflow,
		in,
	)
	if err == nil {
		var res2 workflows.MigrateResult
		_ = again.Get(ctx, &res2)
		if again.GetRunID() != run.GetRunID() || res2.Targets[0].ImageID != res.Targets[0].ImageID {
			t.Fatalf("the same request started run %s (first %s)", again.GetRunID(), run.GetRunID())
		}
	}
	imgs, _ := demo.ListImages(
		ctx,
		"IAD",
		cloud.ImageFilter{Properties: map[string]string{workflows.PropSourceImageID: web.ID}},
	)
	if len(imgs) != 1 {
		t.Fatalf("%d images in IAD for the source, want 1", len(imgs))
	}

	// Share the new IAD image with the partner; the partner's worker accepts it by policy and the
	// producer's backstop poll hears the decision.
	share := workflows.ShareInput{Region: "IAD", ImageID: res.Targets[0].ImageID, Members: []string{"100002"},
		Deadline: workflows.Duration(time.Minute), PollInterval: workflows.Duration(time.Second)}
	srun, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.ShareWorkflowID(demo.Tenant(), share), "demo", share.ImageID),
		workflows.ShareImageWorkflow,
		share,
	)
	if err != nil {
		t.Fatal(err)
	}
	waitMember(t, demo, "IAD", share.ImageID, "100002")
	acc := workflows.AcceptInput{
		Region:          "IAD",
		ImageID:         share.ImageID,
		Producer:        demo.Tenant(),
		ShareWorkflowID: srun.GetID(),
		Policy:          workflows.AcceptPolicy{TrustedProducers: []string{demo.Tenant()}},
	}
	arun, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.AcceptWorkflowID("100002", acc), "partner", share.ImageID),
		workflows.AcceptShareWorkflow,
		acc,
	)
	if err != nil {
		t.Fatal(err)
	}
	var ares workflows.AcceptResult
	if err := arun.Get(ctx, &ares); err != nil || ares.Decision != "accepted" || ares.Member != "100002" {
		t.Fatalf("accept %+v %v", ares, err)
	}
	var sres workflows.ShareResult
	if err := srun.Get(ctx, &sres); err != nil || sres.Members[0].Status != "accepted" {
		t.Fatalf("share %+v %v", sres, err)
	}
	if img, err := env.Cloud("partner").GetImage(ctx, "IAD", share.ImageID); err != nil || img.ID != share.ImageID {
		t.Fatalf("partner cannot see the accepted image: %v", err)
	}
	// BulkMigrate: every image tagged "db" (demo-db-01) to ORD, as a child MigrateImage.
	bulk := workflows.BulkInput{BulkRequest: workflows.BulkRequest{SourceRegion: "DFW", TargetRegions: []string{"ORD"},
		Filter: cloud.ImageFilter{Tags: []string{"db"}}}}
	brun, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.BulkWorkflowID(demo.Tenant(), bulk.BulkRequest), "demo", ""),
		workflows.BulkMigrateWorkflow,
		bulk,
	)
	if err != nil {
		t.Fatal(err)
	}
	var sum workflows.BulkSummary
	if err := brun.Get(ctx, &sum); err != nil || sum.Total != 1 || sum.Succeeded != 1 {
		t.Fatalf("bulk %+v %v", sum, err)
	}
	db := find(t, demo, "DFW", "demo-db-01")
	imgs, _ = demo.ListImages(ctx, "ORD", cloud.ImageFilter{Properties: map[string]string{
		workflows.PropSourceImageID: db.ID}})
	if len(imgs) != 1 || imgs[0].Checksum != db.Checksum {
		t.Fatalf("bulk did not make one verified copy of demo-db-01 in ORD: %+v", imgs)
	}
	if len(sum.Made) != 1 || sum.Made[0].SourceImageID != db.ID || sum.Made[0].Images["ORD"] != imgs[0].ID {
		t.Fatalf("the bulk summary does not say which image it made where: %+v", sum.Made)
	}
	if os.Getenv("IMAGEFLOW_RECORD_HISTORIES") == "1" {
		for name, r := range map[string]client.WorkflowRun{"migrate": run, "share": srun, "accept": arun, "bulk": brun} {
			record(t, env.Client, r, name)
		}
	}
}

func start(id, user, imageID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: id, TaskQueue: testenv.TaskQueue(user),
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporalSA(imageID),
	}
}

func find(t *testing.T, c *cloud.Client, region, name string) cloud.Image {
	t.Helper()
	imgs, err := c.ListImages(context.Background(), region, cloud.ImageFilter{Name: name})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("find %s: %v %v", name, imgs, err)
	}
	return imgs[0]
}

func waitMember(t *testing.T, c *cloud.Client, region, image, member string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if _, err := c.GetMember(context.Background(), region, image, member); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("member %s never added to %s", member, image)
}

// record writes a run's history as JSON for the replay test.
func record(t *testing.T, c client.Client, run client.WorkflowRun, name string) {
	it := c.GetWorkflowHistory(
		context.Background(),
		run.GetID(),
		run.GetRunID(),
		false,
		enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT,
	)
	var h historypb.History
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: " "}.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "histories", name+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func temporalSA(imageID string) temporal.SearchAttributes {
	return workflows.StartAttributes(imageID, "", nil, nil)
}
