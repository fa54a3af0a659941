package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestMigrateToGenericOpenStackRegion: from Rackspace's DFW to a region of a generic OpenStack
// cloud (Glance without tasks, no object store): the image is uploaded through the worker, with
// the same guarantees: the source's checksum, its properties and tags, the stamp, and nothing
// left behind where the migration kept objects.
func TestMigrateToGenericOpenStackRegion(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.GenericRegions = []string{"RegionOne"}
	}})
	env.StartWorker("demo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	web := find(t, demo, "DFW", "demo-web-01")
	// At production's ratios: the upload into RegionOne is capped at 16 MiB/s, so the 64 MiB take
	// 4 s against a heartbeat timeout of 1 s; only the upload's own heartbeats keep it alive.
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "bandwidth", Region: "RegionOne", Service: "images",
		Method: "PUT", BytesPerSecond: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	in := workflows.MigrateInput{ImageID: web.ID, SourceRegion: "dfw", TargetRegions: []string{"RegionOne", "IAD"},
		HeartbeatTimeout: workflows.Duration(time.Second)}
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo", web.ID),
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	env.Emulator.ClearFaults()
	for _, tr := range res.Targets {
		if tr.Region == "RegionOne" && tr.CopySeconds < 3 {
			t.Fatalf("the capped upload took %.1fs; the fault did not slow it", tr.CopySeconds)
		}
		img, err := demo.GetImage(ctx, tr.Region, tr.ImageID)
		if err != nil || img.Status != "active" || img.Checksum != web.Checksum || img.Properties["app"] != "web" ||
			len(img.Tags) != 2 || img.Properties[workflows.PropMigrationID] != run.GetID() {
			t.Fatalf("%s: %+v (%v)", tr.Region, img, err)
		}
		if tr.Region == "RegionOne" && img.Properties["os_hash_algo"] != "sha512" {
			t.Fatalf("RegionOne's image was not uploaded to Glance: %+v", img)
		}
	}
	for _, r := range []string{"DFW", "IAD"} {
		if left, err := demo.ListObjects(ctx, r, "", ""); err == nil && len(left) > 0 {
			t.Fatalf("%s keeps %d objects", r, len(left))
		}
	}
	if demo.HasObjectStore("RegionOne") {
		t.Fatal("RegionOne should have no object store")
	}

	// And back: from RegionOne (read from Glance by ranges, no export) to Rackspace's ORD (copied
	// into its Cloud Files and imported by a task).
	var fromOne string
	for _, tr := range res.Targets {
		if tr.Region == "RegionOne" {
			fromOne = tr.ImageID
		}
	}
	back := workflows.MigrateInput{ImageID: fromOne, SourceRegion: "RegionOne", TargetRegions: []string{"ORD"}}
	run, err = env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(demo.Tenant(), back), "demo",
		fromOne), workflows.MigrateImageWorkflow, back)
	if err != nil {
		t.Fatal(err)
	}
	var res2 workflows.MigrateResult
	if err := run.Get(ctx, &res2); err != nil {
		t.Fatal(err)
	}
	img, err := demo.GetImage(ctx, "ORD", res2.Targets[0].ImageID)
	if err != nil || img.Checksum != web.Checksum || res2.ExportSeconds != 0 {
		t.Fatalf("back in ORD: %+v %v (export %.1fs)", img, err, res2.ExportSeconds)
	}
	if left, err := demo.ListObjects(ctx, "ORD", "", ""); err == nil && len(left) > 0 {
		t.Fatalf("ORD keeps %d objects", len(left))
	}
}
