package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestMigrateAcrossCloudsAndAccounts: one worker, acting as demo on the Rackspace emulator,
// holds two peers: a private OpenStack (another emulator: Keystone v3, a generic RegionOne) and
// the partner account. It migrates demo-web-01 into both: uploaded into the private cloud's
// Glance, and copied into the partner's Cloud Files and imported there by the partner's task.
// Each image is the source to the byte, owned by its cloud's account, stamped; nothing is left
// in the source's Cloud Files.
func TestMigrateAcrossCloudsAndAccounts(t *testing.T) {
	env := testenv.New(t)
	private, err := emulator.New(emulator.Config{GenericRegions: []string{"RegionOne"}, NoSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := private.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = private.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	privateDemo, err := cloud.New(ctx, cloud.Credentials{
		IdentityURL: strings.TrimSuffix(private.IdentityURL(), "v2.0/") + "v3",
		Username:    "demo", Password: "demo-password", ProjectName: "100001"}, cloud.Options{})
	if err != nil {
		t.Fatal(err)
	}
	partner := env.Cloud("partner")
	env.StartWorker("demo", testenv.WorkerOptions{Peers: map[string]*cloud.Client{"private": privateDemo,
		"partner": partner}})
	demo := env.Cloud("demo")
	web := find(t, demo, "DFW", "demo-web-01")
	for _, c := range []struct {
		peer   string
		region string
		as     *cloud.Client
	}{{"private", "RegionOne", privateDemo}, {"partner", "DFW", partner}} {
		in := workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{c.region},
			TargetCloud: c.peer}
		run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo",
			web.ID), workflows.MigrateImageWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.MigrateResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("%s: %v", c.peer, err)
		}
		env.AwaitCleanup(res.Cleanup)
		img, err := c.as.GetImage(ctx, c.region, res.Targets[0].ImageID)
		if err != nil || img.Checksum != web.Checksum || img.Owner != c.as.Tenant() || img.Properties["app"] != "web" ||
			img.Properties[workflows.PropMigrationID] != run.GetID() {
			t.Fatalf("%s %s: %+v %v", c.peer, c.region, img, err)
		}
	}
	if left, err := demo.ListObjects(ctx, "DFW", "", ""); err == nil && len(left) > 0 {
		t.Fatalf("the source keeps %d objects", len(left))
	}
	// A peer the worker does not hold is refused at once, naming the ones it does.
	in := workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		TargetCloud: "elsewhere"}
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo", web.ID),
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err == nil ||
		!strings.Contains(err.Error(), `no cloud named "elsewhere" (it holds: partner, private)`) {
		t.Fatalf("unknown peer: %v", err)
	}
}
