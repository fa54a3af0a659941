package reliability

import (
	"context"
	"fmt"
	"log/slog"
	neturl "net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	tlog "go.temporal.io/sdk/log"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/devserver"
	"github.com/imageflow/imageflow/internal/runner"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

const (
	gib     = 1 << 30
	segment = 64 << 20
	par     = 4
)

// TestWorkerKilledMidCopy kills the worker process (SIGKILL) in the middle of a 1 GiB copy, starts
// a new one, and checks: the migration completes, at most one segment per transfer is sent again,
// the target has exactly one image for the migration, and no intermediate object is left.
func TestWorkerKilledMidCopy(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.Images = []emulator.SeedImage{{Name: "rel-1g", Size: gib}}
		c.ExportSegmentSize = 256 << 20
	}})
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "rel-1g")
	logs := &testenv.SyncBuffer{}
	opts := []string{
		"IMAGEFLOW_NATS_DISABLED=true",
		fmt.Sprintf("IMAGEFLOW_WORKER_COPY_PARALLELISM=%d", par),
		fmt.Sprintf("IMAGEFLOW_WORKER_COPY_SEGMENT_SIZE=%d", segment),
	}
	w := startWorker(t, env, "demo", "rel-kill", logs, opts...)
	ctx := context.Background()
	in := workflows.MigrateInput{
		ImageID:          img.ID,
		SourceRegion:     "DFW",
		TargetRegions:    []string{"IAD"},
		HeartbeatTimeout: workflows.Duration(3 * time.Second),
	}
	run, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.MigrateWorkflowID("100001", in), "rel-kill"),
		workflows.MigrateImageWorkflow,
		in,
	)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, "a third of the copy", 3*time.Minute, func() bool { return env.Emulator.BytesReceived("IAD") > gib/3 })
	w.kill()
	atKill := env.Emulator.BytesReceived("IAD")
	startWorker(t, env, "demo", "rel-kill", logs, opts...)
	cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	var res workflows.MigrateResult
	if err := run.Get(cctx, &res); err != nil {
		t.Fatalf("migration after the kill: %v\n%s", err, logs.String())
	}
	env.AwaitCleanup(res.Cleanup)
	again := env.Emulator.BytesReceived("IAD") - gib
	t.Logf("killed at %d MiB received; %d MiB sent again (allowance %d MiB)", atKill>>20, again>>20, par*segment>>20)
	if again > par*segment {
		t.Errorf("%d MiB sent again, more than one segment per transfer (%d MiB)", again>>20, par*segment>>20)
	}
	if n := countImages(t, demo, "IAD", img.ID); n != 1 {
		t.Errorf("%d images in IAD for the migration, want exactly 1", n)
	}
	for _, r := range []string{"DFW", "IAD"} {
		if n := testenv.Leftovers(t, demo, r); n != 0 {
			t.Errorf("%d intermediate objects left in %s", n, r)
		}
	}
	if res.Targets[0].Status != "succeeded" {
		t.Fatalf("result %+v", res)
	}
	scanForSecrets(t, env, logs.String())
}

// TestTemporalRestartMidMigration stops the persistent (SQLite) Temporal server of devstack in the
// middle of a migration and starts it again on the same file (or, under internal/temporalpg,
// the same PostgreSQL database): the run continues and completes.
func TestTemporalRestartMidMigration(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePortRun(t, 7)
	pg := testenv.TemporalPostgres(t)
	startTemporal := func() *devserver.Temporal {
		ts, err := devserver.StartTemporal(
			devserver.TemporalOptions{DBPath: filepath.Join(dir, "temporal.db"), PostgresURL: pg, Port: port},
		)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	ts := startTemporal()
	emu, err := emulator.New(emulator.Config{TaskDuration: 50 * time.Millisecond, ExportSegmentSize: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	// A slow link into IAD keeps the copy running long enough to restart Temporal under it.
	_ = emu.AddFault(
		emulator.Fault{Kind: "bandwidth", Region: "IAD", Service: "files", Method: "PUT", BytesPerSecond: 16 << 20},
	)
	tc, err := client.Dial(
		client.Options{
			HostPort:  ts.Address,
			Namespace: ts.Namespace,
			Logger:    tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	cc, err := cloud.New(
		context.Background(),
		cloud.Credentials{IdentityURL: emu.IdentityURL(), Username: "demo", APIKey: "demo-api-key"},
		cloud.Options{},
	)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runner.Start(
		context.Background(),
		runner.Options{Cloud: cc, Temporal: tc, TaskQueue: "rel-restart", StopTimeout: 3 * time.Second,
			Activities: activities.Config{
				TaskPollInterval:    100 * time.Millisecond,
				TaskPollMaxInterval: 500 * time.Millisecond,
				CopySegmentSize:     16 << 20,
			}},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	img := findImage(t, cc, "DFW", "demo-db-01")
	in := workflows.MigrateInput{
		ImageID:          img.ID,
		SourceRegion:     "DFW",
		TargetRegions:    []string{"IAD"},
		HeartbeatTimeout: workflows.Duration(10 * time.Second),
	}
	run, err := tc.ExecuteWorkflow(
		context.Background(),
		start(workflows.MigrateWorkflowID("100001", in), "rel-restart"),
		workflows.MigrateImageWorkflow,
		in,
	)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, "the copy to start", 2*time.Minute, func() bool { return emu.BytesReceived("IAD") > 32<<20 })
	if err := ts.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	ts = startTemporal()
	defer ts.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var res workflows.MigrateResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("migration across a Temporal restart: %v", err)
	}
	if res.Targets[0].Status != "succeeded" || countImages(t, cc, "IAD", img.ID) != 1 {
		t.Fatalf("result %+v", res)
	}
}

// TestNATSRestartWithEventsInFlight restarts the NATS server (same port, same store) while the
// bridge works through a backlog: every event is handled once, one run each.
func TestNATSRestartWithEventsInFlight(t *testing.T) {
	env := testenv.New(t)
	dir := t.TempDir()
	ns, url := testenv.StartNATS(t, dir)
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	b, err := events.NewBridge(
		ctx,
		js,
		env.Client,
		events.BridgeConfig{Subjects: testenv.Subjects, Stream: "IMAGEFLOW", Tenant: "100001",
			TaskQueue: "rel-nobody", Concurrency: 4, AckWait: 5 * time.Second},
	)
	if err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(js, testenv.Subjects, "test")
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			in := workflows.MigrateInput{
				ImageID:       fmt.Sprintf("img-%03d", i),
				SourceRegion:  "DFW",
				TargetRegions: []string{"IAD"},
			}
			for {
				if err := pub.Command(ctx, events.CmdMigrate, fmt.Sprintf("evt-%03d", i), "100001", in); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond) // NATS is away: the publisher retries, as activities do
			}
		}
	}
	publish(0, 60)
	bctx, stop := context.WithCancel(ctx)
	go func() { _ = b.Run(bctx) }()
	defer stop()
	wait(t, "some events handled", time.Minute, func() bool { return b.Stats.Started.Load() >= 10 })
	u, _ := neturl.Parse(url)
	port, _ := strconv.Atoi(u.Port())
	ns.Shutdown()
	ns.WaitForShutdown()
	time.Sleep(500 * time.Millisecond)
	ns2, err := natsserver.NewServer(
		&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	go ns2.Start()
	if !ns2.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not come back")
	}
	defer ns2.Shutdown()
	publish(60, 80)
	runs := func() int {
		resp, err := env.Client.ListWorkflow(
			ctx,
			&workflowservice.ListWorkflowExecutionsRequest{Namespace: env.Namespace, PageSize: 1000},
		)
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Executions)
	}
	// A redelivered event (its ack lost in the restart) is found a duplicate, not run twice.
	wait(t, "a run for each of the 80 events", 2*time.Minute, func() bool { return b.Stats.Started.Load() >= 80 })
	time.Sleep(time.Second) // any late redelivery would show now
	if n := runs(); n != 80 || b.Stats.Started.Load() != 80 || b.Stats.DeadLettered.Load() != 0 {
		t.Fatalf(
			"%d runs, %d started, %d duplicates, %d dead for 80 events",
			n,
			b.Stats.Started.Load(),
			b.Stats.Duplicates.Load(),
			b.Stats.DeadLettered.Load(),
		)
	}
	t.Logf("80 events across a NATS restart: %d runs started, %d redeliveries found duplicate, %d dead-lettered",
		b.Stats.Started.Load(), b.Stats.Duplicates.Load(), b.Stats.DeadLettered.Load())
}
