package main

import (
	"context"
	"strconv"

	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/devserver"
	"github.com/imageflow/imageflow/internal/runner"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

func freeAddr(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) }

// TestWorkerProcess runs the worker's run() against real Temporal, NATS and the emulator: health,
// a migration by event, metrics, JSON logs without the secret, and a graceful stop.
func TestWorkerProcess(t *testing.T) {
	env := testenv.New(t)
	addr := freeAddr(t)
	cfg := config.Config{
		Temporal: config.Temporal{
			Address:   env.TemporalAddr,
			Namespace: env.Namespace,
			TaskQueue: "imageflow-demo",
		},
		NATS: config.NATS{
			URL:           env.NATSURL,
			SubjectPrefix: "imageflow",
			Stream:        "IMAGEFLOW",
			MaxDeliver:    5,
			AckWait:       10 * time.Second,
		},
		Cloud: config.Cloud{IdentityURL: env.Emulator.IdentityURL(), Username: "demo", APIKey: "demo-api-key"},
		Worker: config.Worker{
			ActivityConcurrency: 8,
			CopyParallelism:     4,
			CopySegmentSize:     16 << 20,
			TaskPollInterval:    50 * time.Millisecond,
			TaskPollMaxInterval: 200 * time.Millisecond,
			HTTPAddr:            addr,
			StopTimeout:         5 * time.Second,
		},
	}
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *runner.Runner, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logger, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("worker exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not start")
	}
	if body := get(t, "http://"+addr+"/healthz"); body != "ok\n" {
		t.Fatalf("healthz %q", body)
	}

	nc, _ := nats.Connect(env.NATSURL)
	defer nc.Close()
	completed := make(chan *nats.Msg, 1)
	_, _ = nc.ChanSubscribe("imageflow.evt.100001.migration.completed", completed)
	imgs, _ := env.Cloud("demo").ListImages(ctx, "DFW", cloud.ImageFilter{Name: "demo-web-01"})
	in := workflows.MigrateInput{ImageID: imgs[0].ID, SourceRegion: "DFW", TargetRegions: []string{"ORD"}}
	if err := events.NewPublisher(env.JetStream(), testenv.Subjects, "test").Command(ctx, events.CmdMigrate, "w-1", "100001", in); err != nil {
		t.Fatal(err)
	}
	select {
	case <-completed:
	case <-time.After(2 * time.Minute):
		t.Fatal("no migration.completed event")
	}
	m := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{"imageflow_bridge_started_total 1", "imageflow_bridge_received_total 1",
		"temporal_", "go_goroutines", `imageflow_copy_bytes_total{source_region="DFW",target_region="ORD"} 6.7108864e+07`,
		`imageflow_copies_in_flight{source_region="DFW",target_region="ORD"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"stopped"`) || !strings.Contains(out, `"tenant":"100001"`) {
		t.Fatalf("logs lack start/stop lines: %s", out)
	}
	if strings.Contains(out, "demo-api-key") {
		t.Fatal("the API key appears in the logs")
	}
}

func TestWorkerFailsClearlyOnBadCredentials(t *testing.T) {
	env := testenv.New(t)
	cfg := config.Config{
		Temporal: config.Temporal{Address: env.TemporalAddr, Namespace: env.Namespace, TaskQueue: "imageflow-demo"},
		Cloud:    config.Cloud{IdentityURL: env.Emulator.IdentityURL(), Username: "demo", APIKey: "wrong-key-123"},
	}
	err := run(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "rejected the credentials") ||
		strings.Contains(err.Error(), "wrong-key-123") {
		t.Fatalf("error %v", err)
	}
}

func TestHelpListsVariables(t *testing.T) {
	out, err := exec.Command("go", "run", ".", "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, v := range config.Vars() {
		if !strings.Contains(string(out), v.Name) {
			t.Fatalf("-h does not list %s:\n%s", v.Name, out)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestWorkerWaitsForIdentityAtStart: a worker started (or restarted by its supervisor) while
// identity answers 503 waits for it instead of exiting 1 with "authenticate ...: 503"; its
// /healthz says it is not ready and why, its log says it waits, and a migration waiting on its
// task queue says why nothing moves (it used to say only Running); when identity answers, it
// starts and the migration ends with its image.
// Scaled 200 times: a 10-minute outage, a 10 s retry cap and a minute between log lines are here
// 3 s, 50 ms and 300 ms; with IMAGEFLOW_LONG_TESTS=1, 10 times: 60 s, 1 s and 6 s. The worker
// must start within production's 15 s of identity's return, scaled (plus its own start-up).
func TestWorkerWaitsForIdentityAtStart(t *testing.T) {
	scale := time.Duration(200)
	if os.Getenv("IMAGEFLOW_LONG_TESTS") == "1" {
		scale = 10
	}
	outage := 10 * time.Minute / scale
	waitFirst, waitCap, waitLogEvery = time.Second/scale, 10*time.Second/scale, time.Minute/scale
	defer func() { waitFirst, waitCap, waitLogEvery = time.Second, 10*time.Second, time.Minute }()
	env := testenv.New(t)
	mig := startMigration(t, env, "imageflow-demo")
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "error", Service: "identity", Status: 503}); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := config.Config{
		Temporal: config.Temporal{Address: env.TemporalAddr, Namespace: env.Namespace, TaskQueue: "imageflow-demo"},
		NATS:     config.NATS{Disabled: true},
		Cloud:    config.Cloud{IdentityURL: env.Emulator.IdentityURL(), Username: "demo", APIKey: "demo-api-key"},
		Worker: config.Worker{ActivityConcurrency: 2, CopyParallelism: 1, CopySegmentSize: 16 << 20,
			HTTPAddr: addr, StopTimeout: time.Second, WorkflowCacheSize: 100,
			TaskPollInterval: 50 * time.Millisecond, TaskPollMaxInterval: 200 * time.Millisecond},
	}
	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *runner.Runner, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil)), ready) }()
	time.Sleep(outage)
	st := migrationStatus(t, env, mig)
	if st.Waiting == nil || !strings.HasPrefix(st.Waiting.Reason, "waiting for the cloud's identity service since") ||
		!strings.Contains(st.Waiting.Reason, "503") {
		t.Fatalf("the migration's status while its worker waits for identity: %+v", st.Waiting)
	}
	if js := jobStatus(t, env, mig); js != workflows.JobWaiting {
		t.Errorf("ImageflowJobStatus while the worker waits: %q, want %q", js, workflows.JobWaiting)
	}
	select {
	case err := <-done:
		t.Fatalf("the worker exited during the identity outage: %v", err)
	case <-ready:
		t.Fatal("the worker started while identity answered 503")
	default:
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "waiting for the cloud's identity service since") ||
		!strings.Contains(string(body), "503") {
		t.Fatalf("/healthz during the outage: %d %q", resp.StatusCode, body)
	}
	if n, want := strings.Count(logs.String(), "waiting for the cloud's identity service"),
		int(outage/waitLogEvery); n < want/2 || n > want+1 { // a loaded machine's sign-ins run slow
		t.Errorf("%d log lines in a %s wait logged every %s, want about %d:\n%s", n, outage, waitLogEvery, want,
			logs.String())
	}
	env.Emulator.ClearFaults()
	recovered := time.Now()
	select {
	case <-ready:
		// Production's goal is 15 s; the start-up after the sign-in (Temporal's pollers, under CI's
		// load) is not scaled. A retry cap left at production's 10 s would miss this by seconds.
		if d := time.Since(recovered); d > 15*time.Second/scale+3*time.Second {
			t.Errorf("the worker started %s after identity answered, want within %s and its start-up", d,
				15*time.Second/scale)
		} else {
			t.Logf("the worker started %s after identity answered (a %s outage)", d, outage)
		}
	case err := <-done:
		t.Fatalf("the worker exited after identity recovered: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not start once identity answered")
	}
	if b := get(t, "http://"+addr+"/healthz"); b != "ok\n" {
		t.Fatalf("/healthz once started: %q", b)
	}
	var res workflows.MigrateResult
	if err := mig.Get(ctx, &res); err != nil || len(res.Targets) != 1 || res.Targets[0].ImageID == "" {
		t.Fatalf("the migration after identity recovered: %+v %v", res, err)
	}
	env.AwaitCleanup(res.Cleanup)
	for _, region := range []string{"DFW", "IAD"} {
		if n := testenv.Leftovers(t, env.Cloud("demo"), region); n != 0 {
			t.Errorf("%d intermediate objects left in %s", n, region)
		}
	}
	if st := migrationStatus(t, env, mig); st.Waiting != nil {
		t.Errorf("the migration still says it waits: %+v", st.Waiting)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestWorkerRefusedPermissionsNamed: a worker given its account's sender credentials exits 1
// before it takes an event, naming the right it lacks and the subject; one given another
// account's worker credentials does not start either, naming whose they are (issue 39: both
// used to end in "context deadline exceeded").
func TestWorkerRefusedPermissionsNamed(t *testing.T) {
	env := testenv.New(t, testenv.Options{NATSAuth: []string{"100001", "100002"}})
	for _, c := range []struct{ role, tenant, want string }{
		{events.RoleSender, "100001", `NATS refused user sender-100001 permission to publish "imageflow.evt.100001.`},
		{events.RoleWorker, "100002", "account 100001 is not the one IMAGEFLOW_NATS_USER worker-100002 belongs to"},
	} {
		cfg := config.Config{
			Temporal: config.Temporal{Address: env.TemporalAddr, Namespace: env.Namespace, TaskQueue: "imageflow-demo"},
			NATS: config.NATS{URL: env.NATSURL, SubjectPrefix: "imageflow", Stream: "IMAGEFLOW", StreamReplicas: 1,
				User: events.UserName(c.role, c.tenant), Password: config.Secret(testenv.NATSPassword(c.role, c.tenant))},
			Cloud:  config.Cloud{IdentityURL: env.Emulator.IdentityURL(), Username: "demo", APIKey: "demo-api-key"},
			Worker: smallWorker,
		}
		err := startErr(cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("a worker logged in as %s: %v (want %q)", events.UserName(c.role, c.tenant), err, c.want)
		}
	}
}

// TestWorkerProvesItsNamespace: on a Temporal that keeps tenants apart, a worker whose key does
// not open its namespace exits before it polls, saying so; one whose namespace is another
// tenant's does not start either (issue 39).
func TestWorkerProvesItsNamespace(t *testing.T) {
	env := testenv.New(t)
	keys := &devserver.Keys{Admin: "admin-key", Tenants: map[string]string{"100001": "demo-key", "100002": "partner-key"}}
	ts, err := devserver.StartTemporal(devserver.TemporalOptions{DBPath: filepath.Join(t.TempDir(), "t.db"),
		Port: testenv.FreePort(t), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ts.Stop() })
	for _, c := range []struct{ ns, key, want string }{
		{"imageflow-100001", "partner-key", "the Temporal server refused namespace imageflow-100001 to this worker's key"},
		{"imageflow-100002", "partner-key", "account 100001 is not the one IMAGEFLOW_TEMPORAL_NAMESPACE imageflow-100002"},
	} {
		cfg := config.Config{
			Temporal: config.Temporal{Address: ts.Address, Namespace: c.ns, TaskQueue: "imageflow-demo",
				APIKey: config.Secret(c.key), Plaintext: true},
			NATS:   config.NATS{Disabled: true},
			Cloud:  config.Cloud{IdentityURL: env.Emulator.IdentityURL(), Username: "demo", APIKey: "demo-api-key"},
			Worker: smallWorker,
		}
		err := startErr(cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("namespace %s with key %s: %v (want %q)", c.ns, c.key, err, c.want)
		}
	}
}

// smallWorker is a worker's tuning for tests that only see it start (or refuse to).
var smallWorker = config.Worker{ActivityConcurrency: 2, CopyParallelism: 1, CopySegmentSize: 16 << 20,
	StopTimeout: time.Second, WorkflowCacheSize: 100}

// startErr runs a worker with cfg until it returns, at most a minute: the error it stopped with.
func startErr(cfg config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return run(ctx, cfg, slog.New(slog.DiscardHandler), nil)
}

// startMigration starts a migration of demo-web-01 from DFW to IAD on queue, as the bridge would.
func startMigration(t *testing.T, env *testenv.Env, queue string) client.WorkflowRun {
	t.Helper()
	ctx := context.Background()
	imgs, err := env.Cloud("demo").ListImages(ctx, "DFW", cloud.ImageFilter{Name: "demo-web-01"})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("demo-web-01 in DFW: %v (%d)", err, len(imgs))
	}
	in := workflows.MigrateInput{ImageID: imgs[0].ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}}
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.MigrateWorkflowID("100001", in), TaskQueue: queue,
		TypedSearchAttributes: workflows.StartAttributes(imgs[0].ID, "DFW", in.TargetRegions, nil),
	}, workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// migrationStatus asks a migration's status query.
func migrationStatus(t *testing.T, env *testenv.Env, run client.WorkflowRun) workflows.MigrateStatus {
	t.Helper()
	var st workflows.MigrateStatus
	v, err := env.Client.QueryWorkflow(context.Background(), run.GetID(), run.GetRunID(), workflows.StatusQuery)
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		t.Fatalf("status of %s: %v", run.GetID(), err)
	}
	return st
}

// jobStatus is a run's ImageflowJobStatus search attribute.
func jobStatus(t *testing.T, env *testenv.Env, run client.WorkflowRun) string {
	t.Helper()
	desc, err := env.Client.DescribeWorkflowExecution(context.Background(), run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	p := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.SearchJobStatus.GetName()]
	var v string
	if p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
	}
	return v
}
