package workflows_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestDistributeFamilyVersions distributes versions 1 to 4 of a family to IAD and LON and the
// partner account, keeping 3 (forced: the partner accepts every version). Version 1's IAD copy
// is protected before version 4 goes out, and LON's import fails the first time version 4 is
// sent. Then: IAD moved its latest to 4 and kept 1 (protected) beside 2 to 4; LON kept its
// latest on 3 and pruned nothing until version 4 reached it on the second run, which deleted
// LON's version 1. The partner accepted every version it was offered, and each region has
// exactly one latest.
func TestDistributeFamilyVersions(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	env.StartWorker("partner", testenv.WorkerOptions{Events: true, AutoAccept: true,
		AcceptPolicy: workflows.AcceptPolicy{TrustedProducers: []string{"100001"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	web := find(t, demo, "DFW", "demo-web-01")
	sources := map[int]string{}
	for v := 1; v <= 4; v++ {
		id, err := env.Emulator.Snapshot(emulator.SnapshotRequest{Region: "DFW", ImageID: web.ID,
			Name: fmt.Sprintf("web-base-v%d", v), ChangedPercent: 1, Pattern: "clustered"})
		if err != nil {
			t.Fatal(err)
		}
		sources[v] = id
	}
	distribute := func(v int) (client.WorkflowRun, workflows.DistributeResult) {
		t.Helper()
		in := workflows.DistributeInput{ImageID: sources[v], SourceRegion: "DFW", Family: "web-base", Version: v,
			Regions: []string{"IAD", "LON"}, Accounts: []string{"100002"}, Keep: 3, Force: true,
			ShareDeadline: workflows.Duration(5 * time.Minute)}
		// As the starter and the bridge start it: a request again after its run ended runs again.
		opts := workflows.StartOptions(workflows.DistributeWorkflowID(demo.Tenant(), in), testenv.TaskQueue("demo"))
		run, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.DistributeImageWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.DistributeResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		return run, res
	}
	for v := 1; v <= 3; v++ {
		if _, res := distribute(v); res.Regions[0].Status != "distributed" || res.Regions[1].Status != "distributed" {
			t.Fatalf("version %d: %+v", v, res)
		}
	}
	v1IAD := familyCopies(t, demo, "IAD")[1]
	if _, err := demo.PatchImage(ctx, "IAD", v1IAD.ID, []cloud.PatchOp{{Op: "replace", Path: "/protected",
		Value: true}}); err != nil {
		t.Fatal(err)
	}
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "task-failure", Region: "LON", TaskType: "import"}); err != nil {
		t.Fatal(err)
	}
	_, res := distribute(4)
	if res.Regions[0].Status != "distributed" || res.Regions[1].Status != "failed" || res.Regions[1].Latest {
		t.Fatalf("version 4 with LON failing: %+v", res)
	}
	wantFamily(t, demo, "IAD", []int{1, 2, 3, 4}, 4)
	wantFamily(t, demo, "LON", []int{1, 2, 3}, 3)
	env.Emulator.ClearFaults()
	run, res := distribute(4)
	if res.Regions[1].Status != "distributed" || res.Regions[1].Pruned == nil || len(res.Regions[1].Pruned.Deleted) != 1 {
		t.Fatalf("version 4 again: %+v", res)
	}
	wantFamily(t, demo, "IAD", []int{1, 2, 3, 4}, 4)
	wantFamily(t, demo, "LON", []int{2, 3, 4}, 4)
	for _, region := range []string{"IAD", "LON"} {
		for v, img := range familyCopies(t, demo, region) {
			if v == 1 {
				continue
			}
			if m, err := demo.GetMember(ctx, region, img.ID, "100002"); err != nil || m.Status != "accepted" {
				t.Errorf("%s version %d: partner member %+v (%v), want accepted", region, v, m, err)
			}
		}
	}
	// IAD's version 2 is re-tagged by hand as version 50, without imageflow's migration id: it is
	// spared as not imageflow's and not counted among the newest kept (it took the one place, and
	// version 4 was to be deleted).
	handTagged(t, demo, "IAD", familyCopies(t, demo, "IAD")[2].ID, 50)
	// Retention alone, as a dry run: keeping 1 would delete version 3 in IAD (1 is protected, 50
	// is not imageflow's) and 2 and 3 in LON, and nothing changes.
	pr := workflows.PruneRequest{Regions: []string{"IAD", "LON"}, Family: "web-base", Keep: 1, Force: true,
		DryRun: true}
	prun, err := env.Client.ExecuteWorkflow(ctx, workflows.StartOptions(workflows.PruneWorkflowID(demo.Tenant(), pr),
		testenv.TaskQueue("demo")), workflows.PruneImagesWorkflow, pr)
	if err != nil {
		t.Fatal(err)
	}
	var plans []activities.PruneResult
	if err := prun.Get(ctx, &plans); err != nil || len(plans) != 2 || len(plans[0].Deleted) != 1 ||
		len(plans[0].Spared) != 2 || len(plans[0].Kept) != 1 || plans[0].Kept[0].Version != 4 ||
		len(plans[1].Deleted) != 2 {
		t.Fatalf("prune dry run: %+v %v", plans, err)
	}
	wantFamily(t, demo, "LON", []int{2, 3, 4}, 4)
	if os.Getenv("IMAGEFLOW_RECORD_HISTORIES") == "1" {
		record(t, env.Client, run, "distribute")
		record(t, env.Client, prun, "prune")
	}
}

// handTagged turns image id in region into one tagged by hand: version v of web-base without
// imageflow's migration id, as an operator would mark an image imageflow did not make.
func handTagged(t *testing.T, c *cloud.Client, region, id string, v int) {
	t.Helper()
	ops := []cloud.PatchOp{{Op: "replace", Path: "/" + activities.PropFamilyVersion, Value: strconv.Itoa(v)},
		{Op: "remove", Path: "/" + activities.PropMadeBy}}
	if _, err := c.PatchImage(context.Background(), region, id, ops); err != nil {
		t.Fatal(err)
	}
}

// familyCopies are web-base's images in region, by version.
func familyCopies(t *testing.T, c *cloud.Client, region string) map[int]cloud.Image {
	t.Helper()
	imgs, err := c.ListImages(context.Background(), region, cloud.ImageFilter{
		Properties: map[string]string{activities.PropFamily: "web-base"}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]cloud.Image{}
	for _, img := range imgs {
		v, _ := strconv.Atoi(img.Properties[activities.PropFamilyVersion])
		out[v] = img
	}
	return out
}

// wantFamily checks region holds exactly these versions, latest on one of them alone.
func wantFamily(t *testing.T, c *cloud.Client, region string, versions []int, latest int) {
	t.Helper()
	have := familyCopies(t, c, region)
	if len(have) != len(versions) {
		t.Fatalf("%s holds versions %v, want %v", region, keys(have), versions)
	}
	for _, v := range versions {
		img, ok := have[v]
		if !ok {
			t.Fatalf("%s lacks version %d (has %v)", region, v, keys(have))
		}
		if marked := img.Properties[activities.PropLatest] == "true"; marked != (v == latest) {
			t.Fatalf("%s version %d latest=%v, want latest on %d only", region, v, marked, latest)
		}
	}
}

func keys(m map[int]cloud.Image) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}
