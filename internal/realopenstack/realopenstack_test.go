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
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	// The demo worker's reads are counted: the real RegionOne offers web-download, so it fetches
	// the export from the emulator through a temporary URL itself.
	counter := &testenv.ReadCounter{}
	demoWorker, err := cloud.New(ctx, cloud.Credentials{IdentityURL: env.Emulator.IdentityURL(), Username: "demo",
		APIKey: "demo-api-key"}, cloud.Options{Transport: counter})
	if err != nil {
		t.Fatal(err)
	}
	env.StartWorker("demo", testenv.WorkerOptions{Cloud: demoWorker, Peers: map[string]*cloud.Client{"rig": alpha}})
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
	if read := counter.Read.Load(); read > 1<<20 {
		t.Fatalf("the demo worker read %d bytes of the %d-byte export: the real Glance did not fetch it itself",
			read, web.Size)
	} else {
		t.Logf("DFW -> real RegionOne by web-download of a temporary URL: the worker read %d bytes", read)
	}
	back := migrate("alpha", alpha.Tenant(), workflows.MigrateInput{ImageID: real.ID, SourceRegion: "RegionOne",
		TargetRegions: []string{"IAD"}, TargetCloud: "emulator"})
	img, err := demo.GetImage(ctx, "IAD", back.ImageID)
	if err != nil || img.Checksum != web.Checksum {
		t.Fatalf("back in the emulator's IAD: %+v %v", img, err)
	}
	_ = alpha.DeleteImage(context.Background(), "RegionOne", real.ID)
}

// openstackCLI runs the real OpenStack client as a cloud of the rig's clouds.yaml (alpha is
// alpha in RegionOne, alpha-r2 in RegionTwo) and decodes its JSON output.
func openstackCLI(t *testing.T, cloudName string, out any, args ...string) {
	t.Helper()
	args = append([]string{"--os-cloud", cloudName}, args...)
	b, err := exec.Command("openstack", append(args, "-f", "json")...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("openstack %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("openstack %v: %v", args, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("openstack %v: %v\n%s", args, err, b)
	}
}

// TestImagesMadeByTheRealCLI: images made by the real client in qcow2 and raw, private, with
// minimums, migrate from RegionOne to RegionTwo and arrive, as the real client reads them, in
// the same formats, visibility and minimums (every copy was vhd and shared before); the qcow2 one
// bound for the emulator's IAD (which imports only VHD) is refused before any byte moves.
func TestImagesMadeByTheRealCLI(t *testing.T) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Fatal("the real OpenStack client (python3-openstackclient) is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	alpha := connect(t, "alpha")
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) { c.TaskDuration = time.Second }})
	env.StartWorker("alpha", testenv.WorkerOptions{Cloud: alpha,
		Peers: map[string]*cloud.Client{"emulator": env.Cloud("demo")}})
	file := filepath.Join(t.TempDir(), "disk")
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"qcow2", "raw"} {
		var made struct {
			ID string `json:"id"`
		}
		openstackCLI(t, "alpha", &made, "image", "create", "--disk-format", format,
			"--container-format", "bare", "--private", "--min-disk", "2", "--min-ram", "256", "--file", file,
			"imageflow-cli-"+format+"-"+time.Now().Format("150405"))
		in := workflows.MigrateInput{ImageID: made.ID, SourceRegion: "RegionOne", TargetRegions: []string{"RegionTwo"}}
		opts := workflows.StartOptions(workflows.MigrateWorkflowID(alpha.Tenant(), in), testenv.TaskQueue("alpha"))
		run, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.MigrateImageWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.MigrateResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		var got struct {
			DiskFormat      string `json:"disk_format"`
			ContainerFormat string `json:"container_format"`
			MinDisk         int    `json:"min_disk"`
			MinRAM          int    `json:"min_ram"`
			Visibility      string `json:"visibility"`
		}
		openstackCLI(t, "alpha-r2", &got, "image", "show", res.Targets[0].ImageID)
		if got.DiskFormat != format || got.ContainerFormat != "bare" || got.MinDisk != 2 || got.MinRAM != 256 ||
			got.Visibility != "private" {
			t.Fatalf("%s image as the real client reads it in RegionTwo: %+v", format, got)
		}
		t.Logf("%s: arrived in RegionTwo as %+v", format, got)
		if format == "qcow2" {
			in := workflows.MigrateInput{ImageID: made.ID, SourceRegion: "RegionOne", TargetRegions: []string{"IAD"},
				TargetCloud: "emulator"}
			opts := workflows.StartOptions(workflows.MigrateWorkflowID(alpha.Tenant(), in), testenv.TaskQueue("alpha"))
			run, err := env.Client.ExecuteWorkflow(ctx, opts, workflows.MigrateImageWorkflow, in)
			if err != nil {
				t.Fatal(err)
			}
			if err := run.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "imports only VHD") {
				t.Fatalf("qcow2 to the emulator's IAD: %v", err)
			}
		}
		_ = alpha.DeleteImage(context.Background(), "RegionOne", made.ID)
		_ = alpha.DeleteImage(context.Background(), "RegionTwo", res.Targets[0].ImageID)
	}
}
