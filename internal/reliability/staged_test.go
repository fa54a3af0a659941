package reliability

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestWorkerKilledMidStagedUpload: a migration between two regions of a generic OpenStack cloud
// (Glance without tasks) whose target has Swift and takes web-download is staged there in
// pieces, not streamed in one upload. The worker is killed (SIGKILL) at half, a new one started:
// the migration completes with at most one piece per transfer sent again (a streamed upload,
// which Glance cannot resume, sends it all again), says it was staged, and leaves no staging.
func TestWorkerKilledMidStagedUpload(t *testing.T) {
	const size = 512 << 20
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.GenericRegions = []string{"RegionOne", "RegionTwo"}
		c.SwiftRegions = []string{"RegionTwo"}
		c.WebDownloadRegions = []string{"RegionTwo"}
	}})
	demo := env.Cloud("demo")
	ctx := context.Background()
	src, err := demo.CreateImage(ctx, "RegionOne", cloud.NewImage{Name: "staged-01", DiskFormat: "raw",
		ContainerFormat: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	data := io.LimitReader(rand.NewChaCha8([32]byte{7}), size)
	if err := demo.UploadImageData(ctx, "RegionOne", src.ID, data, size); err != nil {
		t.Fatal(err)
	}
	if src, err = demo.GetImage(ctx, "RegionOne", src.ID); err != nil {
		t.Fatal(err)
	}
	// Staging into RegionTwo's Swift at 64 MiB/s: 8 s, against a heartbeat timeout of 3 s.
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "bandwidth", Region: "RegionTwo", Service: "files",
		Method: "PUT", BytesPerSecond: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	// Staged from 256 MiB up: production's 1 GiB threshold scaled as the image is (512 MiB).
	opts := []string{"IMAGEFLOW_NATS_DISABLED=true", fmt.Sprintf("IMAGEFLOW_WORKER_COPY_PARALLELISM=%d", par),
		fmt.Sprintf("IMAGEFLOW_WORKER_COPY_SEGMENT_SIZE=%d", segment), "IMAGEFLOW_WORKER_STAGE_MIN_SIZE=268435456"}
	w := startWorker(t, env, "demo", "rel-staged", logs, opts...)
	in := workflows.MigrateInput{ImageID: src.ID, SourceRegion: "RegionOne", TargetRegions: []string{"RegionTwo"},
		HeartbeatTimeout: workflows.Duration(3 * time.Second)}
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID("100001", in), "rel-staged"),
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, "half the staging", 3*time.Minute, func() bool { return env.Emulator.BytesReceived("RegionTwo") > size/2 })
	w.kill()
	atKill := env.Emulator.BytesReceived("RegionTwo")
	startWorker(t, env, "demo", "rel-staged", logs, opts...)
	cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	var res workflows.MigrateResult
	if err := run.Get(cctx, &res); err != nil {
		t.Fatalf("migration after the kill: %v\n%s", err, logs.String())
	}
	again := env.Emulator.BytesReceived("RegionTwo") - size
	t.Logf("killed at %d MiB staged; %d MiB sent again (allowance %d MiB); result %+v", atKill>>20, again>>20,
		par*segment>>20, res.Targets[0])
	if tr := res.Targets[0]; tr.Status != "succeeded" || tr.Path != "staged" {
		t.Fatalf("target %+v, want succeeded by staging", tr)
	}
	if again > par*segment {
		t.Errorf("%d MiB staged again, more than one piece per transfer (%d MiB)", again>>20, par*segment>>20)
	}
	img, err := demo.GetImage(ctx, "RegionTwo", res.Targets[0].ImageID)
	if err != nil || img.Checksum != src.Checksum || img.Status != "active" {
		t.Fatalf("RegionTwo's image %+v (%v), want checksum %s", img, err, src.Checksum)
	}
	env.AwaitCleanup(res.Cleanup)
	if n := testenv.Leftovers(t, demo, "RegionTwo"); n != 0 {
		t.Errorf("%d staged objects left in RegionTwo", n)
	}
	scanForSecrets(t, env, logs.String())
}
