package workflows_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
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
	env.AwaitCleanup(res.Cleanup)
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
	env.AwaitCleanup(res2.Cleanup)
	img, err := demo.GetImage(ctx, "ORD", res2.Targets[0].ImageID)
	if err != nil || img.Checksum != web.Checksum || res2.ExportSeconds != 0 {
		t.Fatalf("back in ORD: %+v %v (export %.1fs)", img, err, res2.ExportSeconds)
	}
	if left, err := demo.ListObjects(ctx, "ORD", "", ""); err == nil && len(left) > 0 {
		t.Fatalf("ORD keeps %d objects", len(left))
	}
}

// TestImageArrivesAsItLeft: a qcow2 image, private, with minimums, in a generic region arrives
// in another generic region as qcow2 in bare, private, with its minimums (every copy was made
// vhd and shared); to a region that imports only VHD it is refused before any byte moves, with
// the reason (it failed at the import with "not a valid VHD").
func TestImageArrivesAsItLeft(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.GenericRegions = []string{"RegionOne", "RegionTwo"}
	}})
	env.StartWorker("demo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	src, err := demo.CreateImage(ctx, "RegionOne", cloud.NewImage{Name: "qcow-01", DiskFormat: "qcow2",
		ContainerFormat: "bare", MinDisk: 10, MinRAM: 512, Visibility: "private"})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("qcow2 bytes "), 1<<19)
	if err := demo.UploadImageData(ctx, "RegionOne", src.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	migrate := func(to string) (workflows.MigrateResult, error) {
		in := workflows.MigrateInput{ImageID: src.ID, SourceRegion: "RegionOne", TargetRegions: []string{to}}
		run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo",
			src.ID), workflows.MigrateImageWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.MigrateResult
		return res, run.Get(ctx, &res)
	}
	res, err := migrate("RegionTwo")
	if err != nil {
		t.Fatal(err)
	}
	img, err := demo.GetImage(ctx, "RegionTwo", res.Targets[0].ImageID)
	if err != nil || img.DiskFormat != "qcow2" || img.ContainerFormat != "bare" || img.MinDisk != 10 ||
		img.MinRAM != 512 || img.Visibility != "private" {
		t.Fatalf("the copy in RegionTwo: %+v (%v)", img, err)
	}
	// Sharing the private copy is refused with what to do, not Glance's HTML.
	share := workflows.ShareInput{Region: "RegionTwo", ImageID: img.ID, Members: []string{"100002"}}
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.ShareWorkflowID(demo.Tenant(), share), "demo",
		img.ID), workflows.ShareImageWorkflow, share)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "visibility is shared") ||
		strings.Contains(err.Error(), "<br") {
		t.Fatalf("sharing a private image: %v", err)
	}
	began := time.Now()
	_, err = migrate("IAD")
	if err == nil || !strings.Contains(err.Error(), "is qcow2, and IAD imports only VHD") {
		t.Fatalf("a qcow2 image to a VHD-only region: %v", err)
	}
	if objs, _ := demo.ListContainers(ctx, "IAD"); len(objs) != 0 {
		t.Fatalf("bytes moved before the refusal: %d containers in IAD", len(objs))
	}
	t.Logf("refused in %s", time.Since(began).Round(time.Millisecond))
}

// TestSwiftWithoutTasksIsNotRackspace: a region whose catalog lists an object store (Swift) but
// whose Glance runs no import or export tasks, as most OpenStack clouds: images arrive there by
// upload and leave by download, not by tasks (it was taken for Rackspace's and the migration
// failed at the task it could not start).
func TestSwiftWithoutTasksIsNotRackspace(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.GenericRegions = []string{"RegionOne", "RegionTwo"}
		c.SwiftRegions = []string{"RegionOne"}
	}})
	env.StartWorker("demo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	if !demo.HasObjectStore("RegionOne") {
		t.Fatal("the emulator's RegionOne lists no object store")
	}
	if has, err := demo.HasTasks(ctx, "RegionOne"); err != nil || has {
		t.Fatalf("RegionOne runs tasks: %v %v", has, err)
	}
	if has, err := demo.HasTasks(ctx, "DFW"); err != nil || !has {
		t.Fatalf("DFW runs no tasks: %v %v", has, err)
	}
	web := find(t, demo, "DFW", "demo-web-01")
	migrate := func(in workflows.MigrateInput) workflows.TargetResult {
		t.Helper()
		run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo",
			in.ImageID), workflows.MigrateImageWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.MigrateResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("%s -> %v: %v", in.SourceRegion, in.TargetRegions, err)
		}
		env.AwaitCleanup(res.Cleanup)
		return res.Targets[0]
	}
	into := migrate(workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"RegionOne"}})
	img, err := demo.GetImage(ctx, "RegionOne", into.ImageID)
	if err != nil || img.Checksum != web.Checksum || img.Properties["os_hash_algo"] != "sha512" {
		t.Fatalf("in RegionOne (uploaded to Glance): %+v %v", img, err)
	}
	out := migrate(workflows.MigrateInput{ImageID: img.ID, SourceRegion: "RegionOne",
		TargetRegions: []string{"RegionTwo"}})
	if img2, err := demo.GetImage(ctx, "RegionTwo", out.ImageID); err != nil || img2.Checksum != web.Checksum {
		t.Fatalf("from RegionOne (downloaded from Glance) to RegionTwo: %+v %v", img2, err)
	}
	if ts, err := demo.ListObjects(ctx, "RegionOne", "", ""); err == nil && len(ts) > 0 {
		t.Fatalf("objects left in RegionOne's Swift: %d", len(ts))
	}
}

// TestGlanceDownloadMovesNoByteThroughTheWorker: a target region whose Glance offers
// glance-download pulls the image from the source region itself: the source's Glance serves no
// byte to the worker, and the copy is the source to the byte (checksum and os_hash). A target
// without it gets the image streamed through the worker, as before.
func TestGlanceDownloadMovesNoByteThroughTheWorker(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.GenericRegions = []string{"RegionOne", "RegionTwo", "RegionThree"}
		c.GlanceDownloadRegions = []string{"RegionTwo"}
	}})
	env.StartWorker("demo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	src, err := demo.CreateImage(ctx, "RegionOne", cloud.NewImage{Name: "pulled-01", DiskFormat: "qcow2",
		ContainerFormat: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("pull me "), 3<<17) // 3 MiB
	if err := demo.UploadImageData(ctx, "RegionOne", src.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if src, err = demo.GetImage(ctx, "RegionOne", src.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		region string
		served int64
	}{{"RegionTwo", 0}, {"RegionThree", int64(len(data))}} {
		before := env.Emulator.BytesServed("RegionOne")
		res := migrateOnce(ctx, t, env, demo.Tenant(),
			workflows.MigrateInput{ImageID: src.ID, SourceRegion: "RegionOne", TargetRegions: []string{c.region}})
		img, err := demo.GetImage(ctx, c.region, res.Targets[0].ImageID)
		if err != nil || img.Checksum != src.Checksum || img.Properties["os_hash_value"] != src.Properties["os_hash_value"] ||
			img.DiskFormat != "qcow2" {
			t.Fatalf("%s copy %+v (%v), want the source's checksum %s", c.region, img, err, src.Checksum)
		}
		if got := env.Emulator.BytesServed("RegionOne") - before; got != c.served {
			t.Fatalf("%s: the source served %d bytes to the worker, want %d", c.region, got, c.served)
		}
	}
}

// TestWebDownloadOfAnExport: from Rackspace's DFW (exported to Cloud Files) into a generic region
// whose Glance offers web-download, the target fetches the export through a temporary URL of
// the account's own: the worker reads only API answers, and the copy has the source's checksum.
// Into a generic region without it, the worker streams the export (reads the whole image).
func TestWebDownloadOfAnExport(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.GenericRegions = []string{"RegionOne", "RegionTwo"}
		c.WebDownloadRegions = []string{"RegionOne"}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	counter := &testenv.ReadCounter{}
	demo, err := cloud.New(ctx, cloud.Credentials{IdentityURL: env.Emulator.IdentityURL(), Username: "demo",
		APIKey: "demo-api-key"}, cloud.Options{Transport: counter})
	if err != nil {
		t.Fatal(err)
	}
	env.StartWorker("demo", testenv.WorkerOptions{Cloud: demo})
	web := find(t, demo, "DFW", "demo-web-01")
	for _, c := range []struct {
		region   string
		streamed bool
	}{{"RegionOne", false}, {"RegionTwo", true}} {
		before := counter.Read.Load()
		res := migrateOnce(ctx, t, env, demo.Tenant(),
			workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{c.region}})
		img, err := demo.GetImage(ctx, c.region, res.Targets[0].ImageID)
		if err != nil || img.Checksum != web.Checksum || img.Status != "active" {
			t.Fatalf("%s copy %+v (%v), want checksum %s", c.region, img, err, web.Checksum)
		}
		read := counter.Read.Load() - before
		if (c.streamed && read < web.Size) || (!c.streamed && read > 1<<20) {
			t.Fatalf("%s: the worker read %d bytes of a %d-byte image (streamed: %v)", c.region, read, web.Size,
				c.streamed)
		}
		t.Logf("%s: the worker read %d bytes", c.region, read)
	}
}

// TestRefusedImportFallsBackToStreaming: the target offers glance-download but refuses the
// import once (a 503): the image it made is deleted and the worker streams; one image arrives.
func TestRefusedImportFallsBackToStreaming(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.GenericRegions = []string{"RegionOne", "RegionTwo"}
		c.GlanceDownloadRegions = []string{"RegionTwo"}
	}})
	env.StartWorker("demo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	src, err := demo.CreateImage(ctx, "RegionOne", cloud.NewImage{Name: "fallback-01"})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("fall back "), 1<<18)
	if err := demo.UploadImageData(ctx, "RegionOne", src.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "error", Region: "RegionTwo", Service: "images",
		Method: "POST", Path: "/v2/images/", Count: 1}); err != nil {
		t.Fatal(err)
	}
	before := env.Emulator.BytesServed("RegionOne")
	migrateOnce(ctx, t, env, demo.Tenant(),
		workflows.MigrateInput{ImageID: src.ID, SourceRegion: "RegionOne", TargetRegions: []string{"RegionTwo"}})
	if served := env.Emulator.BytesServed("RegionOne") - before; served != int64(len(data)) {
		t.Fatalf("the source served %d bytes, want the image streamed once (%d)", served, len(data))
	}
	imgs, err := demo.ListImages(ctx, "RegionTwo", cloud.ImageFilter{Name: "fallback-01"})
	if err != nil || len(imgs) != 1 || imgs[0].Status != "active" {
		t.Fatalf("RegionTwo holds %+v (%v): want the one streamed image, the refused one deleted", imgs, err)
	}
}

// migrateOnce runs the migration as the demo worker and returns its result.
func migrateOnce(ctx context.Context, t *testing.T, env *testenv.Env, tenant string,
	in workflows.MigrateInput) workflows.MigrateResult {
	t.Helper()
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(tenant, in), "demo", in.ImageID),
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("migrate to %v: %v", in.TargetRegions, err)
	}
	return res
}

// TestTooLargeForImportIsRefusedUpFront: an image larger than the import tasks of a target take
// (Cloud Images: 160 GB) is refused before anything is exported or copied, with the limit and
// where it is set: it used to export and copy the whole image and fail at the import.
func TestTooLargeForImportIsRefusedUpFront(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo", testenv.WorkerOptions{MaxImportSize: 32 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	web := find(t, demo, "DFW", "demo-web-01") // 64 MiB
	in := workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}}
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID(demo.Tenant(), in), "demo",
		web.ID), workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	err = run.Get(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "IAD's import tasks take at most 33554432") ||
		!strings.Contains(err.Error(), "IMAGEFLOW_CLOUD_MAX_IMPORT_SIZE") {
		t.Fatalf("a 64 MiB image to a region importing at most 32 MiB: %v", err)
	}
	for _, region := range []string{"DFW", "IAD"} {
		if tasks, _ := demo.ListTasks(ctx, region); len(tasks) != 0 {
			t.Fatalf("%d tasks in %s before the refusal", len(tasks), region)
		}
	}
}

// TestCorruptCopyIsMendedAfterTheImport: the migration's copy leaves the pieces it cuts from the
// source's segments unhashed (the import's checksum proves the copy), so a bit flipped on its
// way into IAD lands there and the import's check fails. The migration then deletes that image,
// rechecks the copy against the source (only the bad piece is sent again) and imports once
// more: one image in IAD, the source's checksum, nothing left for an operator to clean.
func TestCorruptCopyIsMendedAfterTheImport(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.ExportSegmentSize = 64 << 20 // one source segment: every piece the copy sends is cut from it
	}})
	env.StartWorker("demo", testenv.WorkerOptions{NoCopyVerify: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	demo := env.Cloud("demo")
	web := find(t, demo, "DFW", "demo-web-01")
	before, err := demo.ListImages(ctx, "IAD", cloud.ImageFilter{Name: web.Name})
	if err != nil {
		t.Fatal(err)
	}
	in := workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}}
	sum := sha256.Sum256([]byte(workflows.MigrateWorkflowID(demo.Tenant(), in)))
	segments := "/v1/MossoCloudFS_" + demo.Tenant() + "/imageflow-" + hex.EncodeToString(sum[:6]) + "/" + web.ID +
		".vhd.parts/"
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "corrupt", Region: "IAD", Service: "files", Method: "PUT",
		Path: segments, Count: 1}); err != nil {
		t.Fatal(err)
	}
	res := migrateOnce(ctx, t, env, demo.Tenant(), in)
	if left := env.Emulator.Faults(); len(left) != 0 {
		t.Fatalf("the corruption never struck (faults left %+v): the test proves nothing", left)
	}
	tr := res.Targets[0]
	if tr.Status != "succeeded" || tr.BytesSent <= tr.Bytes || tr.BytesSent >= 2*tr.Bytes {
		t.Fatalf("IAD %+v: want succeeded, with one piece sent again (not the whole image)", tr)
	}
	if n := scheduled(ctx, t, env, workflows.MigrateWorkflowID(demo.Tenant(), in)); n["CopyObjectAcrossRegions"] != 2 ||
		n["ImportImage"] != 2 {
		t.Fatalf("activities %v: want two copies and two imports (the check failed once, then the mend)", n)
	}
	img, err := demo.GetImage(ctx, "IAD", tr.ImageID)
	if err != nil || img.Checksum != web.Checksum {
		t.Fatalf("IAD's image %+v (%v), want the source's checksum %s", img, err, web.Checksum)
	}
	after, err := demo.ListImages(ctx, "IAD", cloud.ImageFilter{Name: web.Name})
	if err != nil || len(after) != len(before)+1 {
		t.Fatalf("IAD holds %d images named %s, had %d (%v): want the mended one only, the bad one deleted",
			len(after), web.Name, len(before), err)
	}
}

// scheduled counts the activities a run scheduled, by type.
func scheduled(ctx context.Context, t *testing.T, env *testenv.Env, workflowID string) map[string]int {
	t.Helper()
	n := map[string]int{}
	it := env.Client.GetWorkflowHistory(ctx, workflowID, "", false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			n[a.GetActivityType().GetName()]++
		}
	}
	return n
}
