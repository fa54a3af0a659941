package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// attempts counts how often an activity type was started in a run (retries included).
func attempts(t *testing.T, env *testenv.Env, id, activity string) int {
	it := env.Client.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	sched := map[int64]string{}
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch ev.GetEventType() {
		case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			sched[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enums.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if sched[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] == activity {
				n += int(ev.GetActivityTaskStartedEventAttributes().GetAttempt())
			}
		}
	}
	return n
}

// TestBadRequestsFailAtOnce: every doomed request to a workflow fails with a reason a person can
// act on, in one attempt, and the next good request still works.
func TestBadRequestsFailAtOnce(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo")
	env.StartWorker("partner")
	demo := env.Cloud("demo")
	web, rhel := findImage(t, demo, "DFW", "demo-web-01"), findImage(t, demo, "DFW", "demo-rhel-01")
	base := findImage(t, demo, "DFW", "Debian 12 (Bookworm) (PVHVM)")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cases := []struct {
		name, user string
		in         any
		workflow   string
		want       string
		checked    string // activity that must have run exactly once
	}{
		{
			"unknown image",
			"demo",
			workflows.MigrateInput{ImageID: "no-such-image", SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
			workflows.MigrateImageWorkflow,
			"image no-such-image was not found in DFW for account 100001",
			"CheckExportable",
		},
		{
			"base image",
			"demo",
			workflows.MigrateInput{ImageID: base.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
			workflows.MigrateImageWorkflow,
			"is a Rackspace base image",
			"CheckExportable",
		},
		{
			"licence-restricted image",
			"demo",
			workflows.MigrateInput{ImageID: rhel.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
			workflows.MigrateImageWorkflow,
			"carries licensed software",
			"CheckExportable",
		},
		{
			"another account's image",
			"partner",
			workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
			workflows.MigrateImageWorkflow,
			"was not found in DFW for account 100002",
			"CheckExportable",
		},
		{
			"unknown region",
			"demo",
			workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"AMS"}},
			workflows.MigrateImageWorkflow,
			`region "AMS" is not in account 100001's service catalog (it lists DFW`,
			"DescribeRegions",
		},
		{
			"unknown member",
			"demo",
			workflows.ShareInput{Region: "DFW", ImageID: web.ID, Members: []string{"bob"}},
			workflows.ShareImageWorkflow,
			`member "bob" is not a tenant id`,
			"",
		},
		{
			"share another account's image",
			"partner",
			workflows.ShareInput{Region: "DFW", ImageID: web.ID, Members: []string{"100003"}},
			workflows.ShareImageWorkflow,
			"is not owned by account 100002 in DFW",
			"OfferShare",
		},
		{
			"accept an offer that does not exist",
			"partner",
			workflows.AcceptInput{Region: "DFW", ImageID: web.ID, Producer: "100001"},
			workflows.AcceptShareWorkflow,
			"has no offer of image",
			"",
		},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := "bad-" + strings.ReplaceAll(c.name, " ", "-")
			run, err := env.Client.ExecuteWorkflow(ctx, start(id, testenv.TaskQueue(c.user)), c.workflow, c.in)
			if err != nil {
				t.Fatal(err)
			}
			err = run.Get(ctx, nil)
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("case %d: want a failure mentioning %q, got %v", i, c.want, err)
			}
			if c.checked != "" {
				if n := attempts(t, env, id, c.checked); n != 1 {
					t.Fatalf("%s ran %d times, want once", c.checked, n)
				}
			}
		})
	}
	// The next good request works.
	good := workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"HKG"}}
	run, err := env.Client.ExecuteWorkflow(
		ctx,
		start(workflows.MigrateWorkflowID("100001", good), testenv.TaskQueue("demo")),
		workflows.MigrateImageWorkflow,
		good,
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("good request after bad ones: %v", err)
	}
}

// TestIsolationByEvents: events can never make a worker act as another account. A share command
// for the partner naming the producer's image and a migrate command likewise are refused (the
// partner's credentials cannot see it); a forged acceptance does not fool the producer's share.
func TestIsolationByEvents(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	env.StartWorker("partner", testenv.WorkerOptions{Events: true})
	demo := env.Cloud("demo")
	web := findImage(t, demo, "DFW", "demo-web-01")
	dlq := make(chan *nats.Msg, 10)
	nc, _ := nats.Connect(env.NATSURL)
	defer nc.Close()
	_, _ = nc.ChanSubscribe(testenv.Subjects.DLQ(), dlq)
	expired := make(chan *nats.Msg, 1)
	_, _ = nc.ChanSubscribe("imageflow.evt.*.share.expired", expired)
	pub := events.NewPublisher(env.JetStream(), testenv.Subjects, "attacker")
	ctx := context.Background()
	_ = pub.Command(
		ctx,
		events.CmdShare,
		"iso-1",
		"100002",
		workflows.ShareInput{Region: "DFW", ImageID: web.ID, Members: []string{"100003"}},
	)
	_ = pub.Command(
		ctx,
		events.CmdMigrate,
		"iso-2",
		"100002",
		workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
	)
	reasons := map[string]string{}
	for len(reasons) < 2 {
		select {
		case m := <-dlq:
			var dl events.DeadLetter
			_ = json.Unmarshal(m.Data, &dl)
			var ev events.Event
			_ = json.Unmarshal(dl.Event, &ev)
			reasons[ev.ID] = dl.Reason
		case <-time.After(time.Minute):
			t.Fatalf("dead letters so far: %v", reasons)
		}
	}
	// The partner cannot even see the producer's unshared image, so both are refused as not found.
	if !strings.Contains(reasons["iso-1"], "not found in DFW for account 100002") ||
		!strings.Contains(reasons["iso-2"], "not found in DFW for account 100002") {
		t.Fatalf("reasons %v", reasons)
	}
	if _, err := demo.GetMember(ctx, "DFW", web.ID, "100002"); err == nil {
		t.Fatal("the partner's worker added a member to the producer's image")
	}
	// A real share, then a forged member-status claiming the partner accepted: it is checked
	// against the cloud, found pending, and the share expires.
	share := workflows.ShareInput{
		Region:    "DFW",
		ImageID:   web.ID,
		Members:   []string{"100002"},
		Deadline:  workflows.Duration(3 * time.Second),
		OnTimeout: workflows.Keep,
	}
	shareID := workflows.ShareWorkflowID("100001", share)
	_ = pub.Command(ctx, events.CmdShare, "iso-3", "100001", share)
	wait(
		t,
		"the offer",
		time.Minute,
		func() bool { _, err := demo.GetMember(ctx, "DFW", web.ID, "100002"); return err == nil },
	)
	_ = pub.Command(
		ctx,
		events.CmdMemberStatus,
		"iso-4",
		"100001",
		events.MemberStatus{
			ImageID:         web.ID,
			Region:          "DFW",
			Member:          "100002",
			Status:          "accepted",
			ShareWorkflowID: shareID,
		},
	)
	select {
	case <-expired:
	case <-time.After(time.Minute):
		t.Fatal("the share did not expire")
	}
	var res workflows.ShareResult
	if err := env.Client.GetWorkflow(ctx, shareID, "").Get(ctx, &res); err != nil ||
		res.Members[0].Status != "expired" {
		t.Fatalf("a forged acceptance was believed: %+v %v", res, err)
	}
	scanForSecrets(t, env)
}

// TestNoSecretsAnywhere runs migrations and a share loop by events with two worker processes
// (debug logging on), then reads every workflow history, every pending activity's heartbeat,
// every message in the stream (dead letters included) and every log line: no secret appears.
func TestNoSecretsAnywhere(t *testing.T) {
	env := testenv.New(t)
	logs := &testenv.SyncBuffer{}
	startWorker(t, env, "demo", "imageflow-demo", logs)
	startWorker(
		t,
		env,
		"partner",
		"imageflow-partner",
		logs,
		"IMAGEFLOW_WORKER_AUTO_ACCEPT=true",
		"IMAGEFLOW_WORKER_TRUSTED_PRODUCERS=100001",
	)
	demo := env.Cloud("demo")
	web := findImage(t, demo, "DFW", "demo-web-01")
	nc, _ := nats.Connect(env.NATSURL)
	defer nc.Close()
	accepted := make(chan *nats.Msg, 1)
	completed := make(chan *nats.Msg, 1)
	_, _ = nc.ChanSubscribe("imageflow.evt.*.share.accepted", accepted)
	_, _ = nc.ChanSubscribe("imageflow.evt.*.migration.completed", completed)
	pub := events.NewPublisher(env.JetStream(), testenv.Subjects, "test")
	ctx := context.Background()
	_ = pub.Command(
		ctx,
		events.CmdMigrate,
		"s-1",
		"100001",
		workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
	)
	_ = pub.Command(
		ctx,
		events.CmdShare,
		"s-2",
		"100001",
		workflows.ShareInput{Region: "DFW", ImageID: web.ID, Members: []string{"100002"}},
	)
	_ = pub.Command(
		ctx,
		events.CmdMigrate,
		"s-3",
		"100001",
		map[string]any{"image_id": "x", "api_key": "oops"},
	) // dead-lettered
	for _, ch := range []chan *nats.Msg{accepted, completed} {
		select {
		case <-ch:
		case <-time.After(2 * time.Minute):
			t.Fatalf("the jobs did not finish:\n%s", logs.String())
		}
	}
	h, m := scanForSecrets(t, env, logs.String())
	if h < 3 || m < 8 || len(logs.String()) < 1000 {
		t.Fatalf(
			"scanned too little to mean anything: %d histories, %d messages, %d bytes of logs",
			h,
			m,
			len(logs.String()),
		)
	}
	t.Logf("no secret in %d histories, %d stream messages, %d KiB of worker logs", h, m, len(logs.String())>>10)
}

// TestNATSAuth: a NATS that requires credentials refuses a wrong password with a message naming
// the variables to check, and accepts the right ones.
func TestNATSAuth(t *testing.T) {
	ns, err := natsserver.NewServer(
		&natsserver.Options{
			Host:     "127.0.0.1",
			Port:     -1,
			Username: "imageflow",
			Password: "s3cret-nats",
			NoLog:    true,
			NoSigs:   true,
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("NATS did not start")
	}
	defer ns.Shutdown()
	for _, c := range []struct {
		user, pass string
		ok         bool
	}{{"", "", false}, {"imageflow", "wrong-pass", false}, {"imageflow", "s3cret-nats", true}} {
		nc, err := events.Connect(
			config.NATS{URL: ns.ClientURL(), User: c.user, Password: config.Secret(c.pass)},
			"test", "100001",
		)
		if c.ok {
			if err != nil {
				t.Fatalf("right credentials refused: %v", err)
			}
			nc.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "IMAGEFLOW_NATS_USER") ||
			strings.Contains(err.Error(), c.pass+"x") {
			t.Fatalf("user %q: error %v", c.user, err)
		}
		if c.pass != "" && strings.Contains(err.Error(), c.pass) {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
}

// TestTemporalTLSAndAPIKey: the worker's Temporal options turn on TLS for an API key and carry the
// key as credentials, never as plain text in the options' printable form.
func TestTemporalTLSAndAPIKey(t *testing.T) {
	opts, err := config.Temporal{
		Address:   "ns.tmprl.cloud:7233",
		Namespace: "ns",
		APIKey:    "tcloud-key-123",
	}.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opts.ConnectionOptions.TLS == nil || opts.Credentials == nil {
		t.Fatalf("API key without TLS or credentials: %+v", opts)
	}
	if _, err := (config.Temporal{TLSCert: "missing.pem", TLSKey: "missing.key"}).ClientOptions(); err == nil ||
		!strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("missing certificate: %v", err)
	}
	plain, _ := config.Temporal{Address: "localhost:7233"}.ClientOptions()
	if plain.ConnectionOptions.TLS != nil {
		t.Fatal("TLS for a local server without TLS settings")
	}
}
