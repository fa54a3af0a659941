package readme

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestOperatorGuide runs the README's starter session, as written, against a stack shaped like
// devstack's: Temporal, NATS, the emulator, the demo worker and the partner worker that accepts
// offers from 100001. "go run ./starter" runs a starter built once for the test.
func TestOperatorGuide(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("the operator's guide needs bash on PATH")
	}
	bs := blocks(t, devstackMarker)
	if len(bs) == 0 {
		t.Fatalf("README.md has no %s block", devstackMarker)
	}
	env := testenv.New(t)
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	env.StartWorker("partner", testenv.WorkerOptions{Events: true, AutoAccept: true,
		AcceptPolicy: workflows.AcceptPolicy{TrustedProducers: []string{"100001"}}})
	bin := filepath.Join(t.TempDir(), "starter")
	if out, err := exec.Command("go", "build", "-o", bin, "../../starter").CombinedOutput(); err != nil {
		t.Fatalf("build the starter: %v\n%s", err, out)
	}
	vars := []string{"IMAGEFLOW_TEMPORAL_ADDRESS=" + env.TemporalAddr,
		"IMAGEFLOW_TEMPORAL_NAMESPACE=" + env.Namespace, "IMAGEFLOW_NATS_URL=" + env.NATSURL}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IMAGEFLOW_") && !strings.HasPrefix(kv, "PATH=") {
			vars = append(vars, kv)
		}
	}
	vars = append(vars, "PATH="+withJQ(t))
	var said strings.Builder
	for i, b := range bs {
		script := strings.ReplaceAll(retarget(b, env.Emulator), "go run ./starter", bin)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
		cmd.Dir, cmd.Env = t.TempDir(), vars
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("guide block %d failed: %v\n%s", i+1, err, out)
		}
		t.Logf("guide block %d:\n%s", i+1, out)
		said.Write(out)
	}
	// The clouds.yaml example signed in by Keystone v3 and refused a region its catalog lacks.
	for _, want := range []string{"demo-web-01", `region "RegionOne" is not in account 100001's service catalog`} {
		if !strings.Contains(said.String(), want) {
			t.Fatalf("the guide's output lacks %q", want)
		}
	}
	// What the session did is in the cloud: the migrated image in SYD was offered to and accepted
	// by the partner; the restored copy is gone; ORD has the bulk migration's image.
	c := env.Cloud("demo")
	ctx := context.Background()
	for _, r := range []string{"SYD", "ORD"} {
		imgs, err := c.ListImages(ctx, r, cloud.ImageFilter{Name: "demo-web-01", Owner: "100001"})
		if err != nil || len(imgs) != 1 {
			t.Fatalf("%s: %d copies of demo-web-01 (%v)", r, len(imgs), err)
		}
		if r == "SYD" {
			if m, err := c.GetMember(ctx, r, imgs[0].ID, "100002"); err != nil || m.Status != "accepted" {
				t.Fatalf("the partner's membership of the SYD image: %+v %v", m, err)
			}
		}
	}
	if left, _ := c.ListImages(ctx, "DFW", cloud.ImageFilter{Name: "web-restored"}); len(left) != 0 {
		t.Fatalf("the guide deleted web-restored, yet %d remain", len(left))
	}
	// The golden-image recipe: db-base version 1 is LON's latest, accepted by the partner; the
	// DR schedule exists, paused by its last line.
	latest, err := c.ListImages(ctx, "LON", cloud.ImageFilter{Properties: map[string]string{
		"imageflow_family": "db-base", "imageflow_latest": "true"}})
	if err != nil || len(latest) != 1 {
		t.Fatalf("LON's db-base latest: %d (%v)", len(latest), err)
	}
	if m, err := c.GetMember(ctx, "LON", latest[0].ID, "100002"); err != nil || m.Status != "accepted" {
		t.Fatalf("the partner's membership of db-base v1 in LON: %+v %v", m, err)
	}
	d, err := env.Client.ScheduleClient().GetHandle(ctx, "dr-nightly").Describe(ctx)
	if err != nil || !d.Schedule.State.Paused || d.Schedule.State.Note != "maintenance window" {
		t.Fatalf("the DR schedule: %+v %v", d, err)
	}
}

// withJQ is the PATH for the guide's blocks: the machine's, plus, when jq is not installed, the
// little of it the README uses (internal/readme/minijq), so the test needs only Go.
func withJQ(t *testing.T) string {
	path := os.Getenv("PATH")
	if _, err := exec.LookPath("jq"); err == nil {
		return path
	}
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "jq"), "./minijq").CombinedOutput(); err != nil {
		t.Fatalf("build minijq: %v\n%s", err, out)
	}
	t.Log("jq is not installed: the guide's blocks use internal/readme/minijq")
	return dir + string(os.PathListSeparator) + path
}
