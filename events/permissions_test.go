package events_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// permissionErrors records the permission violations NATS reports on a connection.
type permissionErrors struct {
	mu   sync.Mutex
	seen []string
}

func (p *permissionErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()),
		"permissions violation") {
		p.mu.Lock()
		p.seen = append(p.seen, err.Error())
		p.mu.Unlock()
	}
}

func (p *permissionErrors) about(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.seen {
		if strings.Contains(s, subject) {
			return true
		}
	}
	return false
}

// connectAs dials the test's NATS as role's user of tenant, recording permission violations.
func connectAs(t *testing.T, env *testenv.Env, role, tenant string) (*nats.Conn, jetstream.JetStream,
	*permissionErrors) {
	t.Helper()
	pe := &permissionErrors{}
	nc, err := nats.Connect(env.NATSURL, nats.UserInfo(events.UserName(role, tenant),
		testenv.NATSPassword(role, tenant)), nats.CustomInboxPrefix(events.InboxPrefix(tenant)),
		nats.ErrorHandler(pe.handler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, pe
}

// TestPermissionsKeepAccountsApart runs NATS with the authorization imageflow documents for two
// accounts. The partner's sender cannot command the demo account's worker (NATS refuses the
// publish, nothing is stored, nothing runs); the partner's worker cannot read the demo account's
// commands by any door (a subscription, a consumer of its own over them, the demo's consumer, a
// read by sequence, the demo's inbox); and the demo's whole loop still works under these users:
// a migration by event, a share by event, the partner's worker accepting the offer it hears.
func TestPermissionsKeepAccountsApart(t *testing.T) {
	env := testenv.New(t, testenv.Options{NATSAuth: []string{"100001", "100002"}})
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	env.StartWorker("partner", testenv.WorkerOptions{Events: true, AutoAccept: true,
		AcceptPolicy: workflows.AcceptPolicy{TrustedProducers: []string{"100001"}}})
	ctx := context.Background()
	admin := env.JetStream()
	st, err := admin.Stream(ctx, "IMAGEFLOW")
	if err != nil {
		t.Fatal(err)
	}

	// The partner's sender, commanding the demo account's worker.
	_, partnerSender, senderErrs := connectAs(t, env, events.RoleSender, "100002")
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	mig := workflows.MigrateInput{ImageID: imageID(t, env, "demo-web-01"), SourceRegion: "DFW",
		TargetRegions: []string{"IAD"}}
	_, err = events.NewPublisher(partnerSender, subjects, "partner").Send(pctx, events.CmdMigrate, "forged-1",
		"100001", mig)
	cancel()
	if err == nil {
		t.Fatal("NATS took the partner's command for the demo account")
	}
	waitFor(t, "a permissions violation for the forged command", func() bool {
		return senderErrs.about(subjects.Cmd("100001", events.CmdMigrate))
	})
	if info, err := st.Info(ctx, jetstream.WithSubjectFilter(subjects.Commands("100001"))); err != nil ||
		len(info.State.Subjects) != 0 {
		t.Fatalf("the stream holds demo commands after the forged one: %v %v", info.State.Subjects, err)
	}

	// The partner's worker, reading the demo account's commands.
	pnc, partnerWorker, workerErrs := connectAs(t, env, events.RoleWorker, "100002")
	for _, subject := range []string{subjects.Commands("100001"), events.InboxPrefix("100001") + ".>"} {
		if _, err := pnc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		_ = pnc.Flush()
		waitFor(t, "a subscription violation on "+subject, func() bool { return workerErrs.about(subject) })
	}
	pst, err := partnerWorker.Stream(ctx, "IMAGEFLOW")
	if err != nil {
		t.Fatalf("the partner's worker cannot read the stream's settings: %v", err)
	}
	// Each door must be shut by NATS itself: a permissions violation on the API subject.
	refused := func(what, api string, f func(context.Context) error) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := f(c); err == nil {
			t.Errorf("the partner's worker could %s", what)
		}
		waitFor(t, "a permissions violation on "+api, func() bool { return workerErrs.about(api) })
	}
	api := "$JS.API."
	refused("make a consumer over the demo's commands",
		api+"CONSUMER.CREATE.IMAGEFLOW.imageflow-100002.imageflow.cmd.100001",
		func(c context.Context) error {
			_, err := pst.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "imageflow-100002",
				FilterSubject: subjects.Commands("100001")})
			return err
		})
	refused("make a consumer of another name over the demo's commands", api+"CONSUMER.CREATE.IMAGEFLOW.spy",
		func(c context.Context) error {
			_, err := pst.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "spy",
				FilterSubject: subjects.Commands("100001")})
			return err
		})
	refused("open the demo's consumer", api+"CONSUMER.INFO.IMAGEFLOW.imageflow-100001", func(c context.Context) error {
		_, err := pst.Consumer(c, "imageflow-100001")
		return err
	})
	refused("read the stream by sequence", api+"DIRECT.GET.IMAGEFLOW", func(c context.Context) error {
		_, err := pst.GetMsg(c, 1)
		return err
	})

	// The whole loop, under these users: migrate and share by the demo's sender, the partner's
	// worker accepting by event.
	_, demoSender, _ := connectAs(t, env, events.RoleSender, "100001")
	send := events.NewPublisher(demoSender, subjects, "demo")
	if _, err := send.Send(ctx, events.CmdMigrate, "mig-1", "100001", mig); err != nil {
		t.Fatal(err)
	}
	var res workflows.MigrateResult
	if err := awaitRun(t, env, workflows.MigrateWorkflowID("100001", mig), &res); err != nil ||
		len(res.Targets) != 1 || res.Targets[0].ImageID == "" {
		t.Fatalf("migration under permissions: %+v %v", res, err)
	}
	share := workflows.ShareInput{Region: "IAD", ImageID: res.Targets[0].ImageID, Members: []string{"100002"},
		Deadline: workflows.Duration(time.Hour), PollInterval: workflows.Duration(time.Hour)}
	if _, err := send.Send(ctx, events.CmdShare, "share-1", "100001", share); err != nil {
		t.Fatal(err)
	}
	var sres workflows.ShareResult
	err = awaitRun(t, env, workflows.ShareWorkflowID("100001", share), &sres)
	if err != nil || sres.Members[0].Status != "accepted" || sres.Members[0].Via != "signal" {
		t.Fatalf("share under permissions: %+v %v", sres, err)
	}
}

// awaitRun waits for the bridge to start run id, then for its result.
func awaitRun(t *testing.T, env *testenv.Env, id string, result any) error {
	t.Helper()
	waitFor(t, "run "+id, func() bool { return env.Runs(id) > 0 })
	return env.Client.GetWorkflow(context.Background(), id, "").Get(context.Background(), result)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestREADMEShowsTheAuthorization: the configuration the README shows for account 100001 is the
// one AuthorizationConfig writes, line wrapping aside.
func TestREADMEShowsTheAuthorization(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(b), "### Who may publish what")
	block := string(b)[start:]
	block = block[strings.Index(block, "authorization {"):]
	block = block[:strings.Index(block, "```")]
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), "") }
	want := events.AuthorizationConfig(subjects, "IMAGEFLOW", []string{"100001"})
	want = want[strings.Index(want, "authorization {"):]
	if squeeze(block) != squeeze(want) {
		t.Fatalf("the README's authorization differs from AuthorizationConfig's:\n%s", want)
	}
}
