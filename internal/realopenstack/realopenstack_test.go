//go:build realopenstack

// Package realopenstack runs imageflow against a real OpenStack: Debian's Keystone 22 and two
// Glance 25 (Zed) servers as RegionOne and RegionTwo, started by ../shared/openstack-rig.sh
// (internal/realopenstack/run.sh starts it and runs this with -tags realopenstack). The
// accounts come from the rig's clouds.yaml (OS_CLIENT_CONFIG_FILE): projects alpha and beta.
package realopenstack

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

func connect(t *testing.T, name string) *cloud.Client {
	t.Helper()
	creds, _, err := cloud.FromCloudsYAML(name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloud.New(context.Background(), creds, cloud.Options{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// TestRealOpenStack: a 24 MiB image of project alpha migrates from RegionOne to RegionTwo of a
// real Glance (read by ranges, uploaded through the worker, checksum checked by Glance's own
// MD5), and the copy is shared with project beta, whose worker accepts it by event.
func TestRealOpenStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	alpha, beta := connect(t, "alpha"), connect(t, "beta")
	t.Logf("alpha %s, beta %s, regions %v", alpha.Tenant(), beta.Tenant(), alpha.Regions())

	data := make([]byte, 24<<20)
	_, _ = rand.Read(data)
	sum := md5.Sum(data)
	want := hex.EncodeToString(sum[:])
	src, err := alpha.CreateImage(ctx, "RegionOne", cloud.NewImage{Name: "imageflow-rig-" + time.Now().Format("150405"),
		Properties: map[string]string{"app": "rig"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := alpha.UploadImageData(ctx, "RegionOne", src.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if img, err := alpha.GetImage(ctx, "RegionOne", src.ID); err != nil || img.Checksum != want {
		t.Fatalf("source image %+v %v, want checksum %s", img, err, want)
	}

	env := testenv.New(t)
	env.StartWorker("alpha", testenv.WorkerOptions{Cloud: alpha, Events: true})
	env.StartWorker("beta", testenv.WorkerOptions{Cloud: beta, Events: true, AutoAccept: true,
		AcceptPolicy: workflows.AcceptPolicy{TrustedProducers: []string{alpha.Tenant()}}})

	in := workflows.MigrateInput{ImageID: src.ID, SourceRegion: "RegionOne", TargetRegions: []string{"RegionTwo"},
		ShareWith: []string{beta.Tenant()}}
	opts := workflows.StartOptions(workflows.MigrateWorkflowID(alpha.Tenant(), in), testenv.TaskQueue("alpha"))
	run, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	tr := res.Targets[0]
	img, err := alpha.GetImage(ctx, "RegionTwo", tr.ImageID)
	if err != nil || img.Checksum != want || img.Properties["app"] != "rig" ||
		img.Properties[workflows.PropMigrationID] != run.GetID() {
		t.Fatalf("RegionTwo image %+v %v", img, err)
	}
	t.Logf("migrated %s -> RegionTwo %s in %.1fs", src.ID, img.ID, res.TotalSeconds)

	var sr workflows.ShareResult
	if err := env.Client.GetWorkflow(ctx, tr.ShareWorkflowID, "").Get(ctx, &sr); err != nil {
		t.Fatalf("share run %s: %v", tr.ShareWorkflowID, err)
	}
	m, err := alpha.GetMember(ctx, "RegionTwo", img.ID, beta.Tenant())
	if err != nil || m.Status != "accepted" {
		t.Fatalf("beta's membership %+v %v (share %+v)", m, err, sr)
	}
	t.Logf("shared with beta and accepted by its worker: %+v", sr.Members)
	for _, c := range []struct {
		cl     *cloud.Client
		region string
		id     string
	}{{alpha, "RegionOne", src.ID}, {alpha, "RegionTwo", img.ID}} {
		_ = c.cl.DeleteImage(context.Background(), c.region, c.id)
	}
}

// TestAcrossCloudsWithRealOpenStack: the emulator's Rackspace and the real OpenStack as peers.
// A worker acting as the emulator's demo account migrates demo-web-01 from DFW into the real
// RegionOne (uploaded to a real Glance); a worker acting as alpha migrates that image from the
// real RegionOne into the emulator's IAD (read from the real Glance by ranges, copied into the
// emulator's Cloud Files, imported by its task). Both arrive with the source's checksum.
func TestAcrossCloudsWithRealOpenStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	alpha := connect(t, "alpha")
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) { c.TaskDuration = time.Second }})
	demo := env.Cloud("demo")
	env.StartWorker("demo", testenv.WorkerOptions{Peers: map[string]*cloud.Client{"rig": alpha}})
	env.StartWorker("alpha", testenv.WorkerOptions{Cloud: alpha, Peers: map[string]*cloud.Client{"emulator": demo}})
	imgs, err := demo.ListImages(ctx, "DFW", cloud.ImageFilter{Name: "demo-web-01"})
	if err != nil || len(imgs) != 1 {
		t.Fatal(imgs, err)
	}
	web := imgs[0]
	migrate := func(user, tenant string, in workflows.MigrateInput) workflows.TargetResult {
		t.Helper()
		opts := workflows.StartOptions(workflows.MigrateWorkflowID(tenant, in), testenv.TaskQueue(user))
		run, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.MigrateImageWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.MigrateResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		t.Logf("%s -> %s %s in %.1fs", in.SourceRegion, in.TargetCloud, res.Targets[0].ImageID, res.TotalSeconds)
		return res.Targets[0]
	}
	into := migrate("demo", demo.Tenant(), workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW",
		TargetRegions: []string{"RegionOne"}, TargetCloud: "rig"})
	real, err := alpha.GetImage(ctx, "RegionOne", into.ImageID)
	if err != nil || real.Checksum != web.Checksum || real.Owner != alpha.Tenant() {
		t.Fatalf("in the real RegionOne: %+v %v", real, err)
	}
	back := migrate("alpha", alpha.Tenant(), workflows.MigrateInput{ImageID: real.ID, SourceRegion: "RegionOne",
		TargetRegions: []string{"IAD"}, TargetCloud: "emulator"})
	img, err := demo.GetImage(ctx, "IAD", back.ImageID)
	if err != nil || img.Checksum != web.Checksum {
		t.Fatalf("back in the emulator's IAD: %+v %v", img, err)
	}
	_ = alpha.DeleteImage(context.Background(), "RegionOne", real.ID)
}
