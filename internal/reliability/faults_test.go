package reliability

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestMigrationThroughCloudFaults runs a migration to two regions through a 413 storm with
// Retry-After, 503 bursts, every token expiring mid-run and a slow link: it finishes, with one
// image per target.
func TestMigrationThroughCloudFaults(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) { c.ExportSegmentSize = 16 << 20 }})
	env.StartWorker("demo")
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-web-01")
	for _, f := range []emulator.Fault{
		{Kind: "rate-limit", Region: "DFW", Service: "images", RetryAfter: 1, Count: 6},
		{Kind: "rate-limit", Region: "IAD", Service: "files", RetryAfter: 1, Count: 4},
		{Kind: "error", Region: "IAD", Service: "files", Method: "PUT", Path: "/v1/MossoCloudFS_100001/imageflow-", Status: 503, Count: 5},
		{Kind: "error", Region: "LON", Service: "images", Status: 500, Count: 3},
		{Kind: "bandwidth", Region: "LON", Service: "files", Method: "PUT", BytesPerSecond: 32 << 20},
		{Kind: "latency", Region: "LON", Latency: "30ms"},
	} {
		if err := env.Emulator.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD", "LON"}}
	run, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.MigrateWorkflowID("100001", in), testenv.TaskQueue("demo")),
		workflows.MigrateImageWorkflow,
		in,
	)
	if err != nil {
		t.Fatal(err)
	}
	go func() { // expire every token while the copies run
		for i := 0; i < 3; i++ {
			time.Sleep(700 * time.Millisecond)
			env.Emulator.ExpireTokens()
		}
	}()
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("migration through faults: %v", err)
	}
	for _, r := range []string{"IAD", "LON"} {
		if n := countImages(t, demo, r, img.ID); n != 1 {
			t.Errorf("%d images in %s, want 1", n, r)
		}
	}
	scanForSecrets(t, env)
}

// TestExportTaskFailsClearly: a failing export task ends the migration at once with the cloud's
// reason; once the cause is gone, the same request runs again and succeeds.
func TestExportTaskFailsClearly(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo")
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-web-01")
	_ = env.Emulator.AddFault(
		emulator.Fault{
			Kind:     "task-failure",
			TaskType: "export",
			Image:    img.ID,
			Count:    1,
			Message:  "Error code 111: storage backend unavailable",
		},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"ORD"}}
	id := workflows.MigrateWorkflowID("100001", in)
	run, err := env.Client.ExecuteWorkflow(
		ctx,
		start(id, testenv.TaskQueue("demo")),
		workflows.MigrateImageWorkflow,
		in,
	)
	if err != nil {
		t.Fatal(err)
	}
	err = run.Get(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "storage backend unavailable") {
		t.Fatalf("want the task's reason, got %v", err)
	}
	run, err = env.Client.ExecuteWorkflow(ctx, start(id, testenv.TaskQueue("demo")), workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("re-run after the failure: %v", err)
	}
	if n := countImages(t, demo, "ORD", img.ID); n != 1 {
		t.Fatalf("%d images in ORD", n)
	}
}

// TestCloudDownDuringMigration takes the whole cloud away (every listener closed) in the middle of
// a migration and brings it back on the same ports and data: the migration finishes, once.
// Fifteen seconds by default; two minutes with IMAGEFLOW_LONG_TESTS=1.
func TestCloudDownDuringMigration(t *testing.T) {
	outage := 15 * time.Second
	if long() {
		outage = 2 * time.Minute
	}
	base := testenv.FreePortRun(t, 7)
	dataDir := t.TempDir()
	cfg := func(c *emulator.Config) {
		c.DataDir, c.ExportSegmentSize = dataDir, 16<<20
		c.Faults = []emulator.Fault{
			{Kind: "bandwidth", Region: "SYD", Service: "files", Method: "PUT", BytesPerSecond: 24 << 20},
		}
	}
	env := testenv.New(t, testenv.Options{Emulator: cfg, EmulatorAddr: "127.0.0.1:" + strconv.Itoa(base)})
	env.StartWorker("demo")
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-db-01")
	ctx, cancel := context.WithTimeout(context.Background(), outage+4*time.Minute)
	defer cancel()
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"SYD"}}
	run, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.MigrateWorkflowID("100001", in), testenv.TaskQueue("demo")),
		workflows.MigrateImageWorkflow,
		in,
	)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, "the copy to start", 2*time.Minute, func() bool { return env.Emulator.BytesReceived("SYD") > 32<<20 })
	if err := env.Emulator.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage)
	c := emulator.Config{TaskDuration: 50 * time.Millisecond}
	cfg(&c)
	emu, err := emulator.New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start("127.0.0.1:" + strconv.Itoa(base)); err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("migration across a %s outage: %v", outage, err)
	}
	if n := countImages(t, env.Cloud("demo"), "SYD", img.ID); n != 1 {
		t.Fatalf("%d images in SYD after the outage, want 1", n)
	}
}

// TestShareThroughFaults: a share whose polls and settlement meet 503s and rate limits still ends
// accepted when the consumer accepts.
func TestShareThroughFaults(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo")
	demo, partner := env.Cloud("demo"), env.Cloud("partner")
	img := findImage(t, demo, "DFW", "demo-web-01")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := workflows.ShareInput{
		Region:       "DFW",
		ImageID:      img.ID,
		Members:      []string{"100002"},
		Deadline:     workflows.Duration(time.Minute),
		PollInterval: workflows.Duration(time.Second),
	}
	run, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.ShareWorkflowID("100001", in), testenv.TaskQueue("demo")),
		workflows.ShareImageWorkflow,
		in,
	)
	if err != nil {
		t.Fatal(err)
	}
	wait(
		t,
		"the offer",
		time.Minute,
		func() bool { _, err := demo.GetMember(ctx, "DFW", img.ID, "100002"); return err == nil },
	)
	_ = env.Emulator.AddFault(
		emulator.Fault{Kind: "error", Region: "DFW", Service: "images", Method: "GET", Status: 503, Count: 4},
	)
	_ = env.Emulator.AddFault(
		emulator.Fault{Kind: "rate-limit", Region: "DFW", Service: "images", Method: "GET", RetryAfter: 1, Count: 3},
	)
	if _, err := partner.UpdateMember(ctx, "DFW", img.ID, "accepted"); err != nil {
		t.Fatal(err)
	}
	var res workflows.ShareResult
	if err := run.Get(ctx, &res); err != nil || res.Members[0].Status != "accepted" {
		t.Fatalf("share through faults: %+v %v", res, err)
	}
}
