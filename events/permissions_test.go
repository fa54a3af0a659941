package events_test

import (
	"context"
	"encoding/json"
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

// TestPermissionsKeepAccountsApart runs NATS with the accounts imageflow documents for two
// tenants and tries every door as the partner would. Its sender cannot command the demo's
// worker (NATS refuses the publish, nothing is stored, nothing runs); its stream, read by any
// API a tenant may call, names no subject of the demo's but the offers made to it; its worker
// cannot read the demo's commands, create, change or delete a stream, or open a consumer not its
// own; and the whole loop still works across accounts: a migration and a share by event, the
// partner's worker accepting the offer it hears, its decision reaching the demo's share.
func TestPermissionsKeepAccountsApart(t *testing.T) {
	env := testenv.New(t, testenv.Options{NATSAuth: []string{"100001", "100002"}})
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	env.StartWorker("partner", testenv.WorkerOptions{Events: true, AutoAccept: true,
		AcceptPolicy: workflows.AcceptPolicy{TrustedProducers: []string{"100001"}}})
	ctx := context.Background()
	st, err := env.JetStream().Stream(ctx, "IMAGEFLOW") // the demo account's, as its admin
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
	var pe *events.PermissionError
	if !errors.As(err, &pe) || pe.Subject != subjects.Cmd("100001", events.CmdMigrate) {
		t.Fatalf("the partner's forged command: want a PermissionError naming its subject, got %v", err)
	}
	waitFor(t, "a permissions violation for the forged command", func() bool {
		return senderErrs.about(subjects.Cmd("100001", events.CmdMigrate))
	})
	if info, err := st.Info(ctx, jetstream.WithSubjectFilter(subjects.Commands("100001"))); err != nil ||
		len(info.State.Subjects) != 0 {
		t.Fatalf("the stream holds demo commands after the forged one: %v %v", info.State.Subjects, err)
	}

	// The partner's worker, reading the demo account's commands or taking the stream.
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
		t.Fatalf("the partner's worker cannot read its stream's settings: %v", err)
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
	refused("make a consumer of another name", api+"CONSUMER.CREATE.IMAGEFLOW.spy",
		func(c context.Context) error {
			_, err := pst.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "spy",
				FilterSubject: subjects.Commands("100002")})
			return err
		})
	refused("open the demo's consumer", api+"CONSUMER.INFO.IMAGEFLOW.imageflow-100001", func(c context.Context) error {
		_, err := pst.Consumer(c, "imageflow-100001")
		return err
	})
	refused("delete a consumer", api+"CONSUMER.DELETE.IMAGEFLOW.imageflow-100002", func(c context.Context) error {
		return pst.DeleteConsumer(c, "imageflow-100002")
	})
	refused("change the stream", api+"STREAM.UPDATE.IMAGEFLOW", func(c context.Context) error {
		_, err := partnerWorker.UpdateStream(c, jetstream.StreamConfig{Name: "IMAGEFLOW", Subjects: []string{">"},
			MaxAge: 5 * time.Second})
		return err
	})
	refused("delete the stream", api+"STREAM.DELETE.IMAGEFLOW", func(c context.Context) error {
		return partnerWorker.DeleteStream(c, "IMAGEFLOW")
	})
	refused("create a stream", api+"STREAM.CREATE.MINE", func(c context.Context) error {
		_, err := partnerWorker.CreateStream(c, jetstream.StreamConfig{Name: "MINE", Subjects: []string{"x.>"}})
		return err
	})

	// The whole loop, across accounts: migrate and share by the demo's sender, the partner's
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
		t.Fatalf("share across accounts: %+v %v", sres, err)
	}

	// What the partner learns from its stream after all that: its own subjects, the offer made to
	// it and its decision; nothing of the demo's migration, nor how many messages the demo has.
	partnerSeesOnlyItsOwn(t, partnerSender, st)
	senderReadsItsDeadLetter(t, demoSender, send, mig)
}

// senderReadsItsDeadLetter: the README's recipe for a refused command, under the sender's own
// rights: `nats stream get IMAGEFLOW --last-for imageflow.dlq.<tenant>.<seq>` is STREAM.MSG.GET
// with last_by_subj, which the issue found refused to senders.
func senderReadsItsDeadLetter(t *testing.T, js jetstream.JetStream, send *events.Publisher,
	mig workflows.MigrateInput) {
	t.Helper()
	ctx := context.Background()
	mig.TargetRegions = []string{"NOWHERE"}
	sent, err := send.Send(ctx, events.CmdMigrate, "bad-region-1", "100001", mig)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(map[string]string{"last_by_subj": subjects.DeadLetter("100001", sent.Seq)})
	var got struct {
		Message *struct {
			Subject string `json:"subject"`
			Data    []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	waitFor(t, "the sender reading its dead letter by STREAM.MSG.GET", func() bool {
		msg, err := js.Conn().Request("$JS.API.STREAM.MSG.GET.IMAGEFLOW", req, 2*time.Second)
		if err != nil {
			t.Fatalf("STREAM.MSG.GET as the sender: %v", err)
		}
		got.Message, got.Error = nil, nil
		return json.Unmarshal(msg.Data, &got) == nil && got.Message != nil
	})
	if !strings.Contains(string(got.Message.Data), "NOWHERE") {
		t.Errorf("the dead letter does not say what was refused: %s", got.Message.Data)
	}
}

// partnerSeesOnlyItsOwn reads the partner's stream as its sender (STREAM.INFO with every subject,
// as `nats stream subjects` does) and checks it names nothing of the demo's but what crossed to it.
func partnerSeesOnlyItsOwn(t *testing.T, partner jetstream.JetStream, demo jetstream.Stream) {
	t.Helper()
	ctx := context.Background()
	pst, err := partner.Stream(ctx, "IMAGEFLOW")
	if err != nil {
		t.Fatal(err)
	}
	info, err := pst.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	crossed := map[string]bool{}
	for subject := range info.State.Subjects {
		r, err := subjects.Parse(subject)
		switch {
		case err == nil && r.Tenant == "100002":
		case err == nil && r.Tenant == "100001" && r.Other == "100002":
			crossed[r.Name] = true
		default:
			t.Errorf("the partner's stream names %s", subject)
		}
	}
	if !crossed[events.EvtShareOffered] || !crossed[events.CmdMemberStatus] {
		t.Errorf("the offer and the decision should both be in the partner's stream: %v", info.State.Subjects)
	}
	dinfo, err := demo.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs >= dinfo.State.Msgs {
		t.Errorf("the partner's stream holds %d messages, the demo's %d: the demo's are not the partner's",
			info.State.Msgs, dinfo.State.Msgs)
	}
}

// TestWorkerNamesWhatItMayNot: a worker that logs in with its account's sender (or another
// account's worker) is stopped before it takes an event, by a PermissionError that names the
// right and the subject; a stream deleted by hand is not re-created by the worker, which says
// it is missing and whose step that is, and the operator's step makes it again.
func TestWorkerNamesWhatItMayNot(t *testing.T) {
	env := testenv.New(t, testenv.Options{NATSAuth: []string{"100001", "100002"}})
	ctx := context.Background()
	for _, as := range [][2]string{{events.RoleSender, "100001"}, {events.RoleWorker, "100002"}} {
		nc, _, _ := connectAs(t, env, as[0], as[1])
		err := events.ProveWorker(ctx, nc, subjects, "100001")
		var pe *events.PermissionError
		if !errors.As(err, &pe) || pe.User != events.UserName(as[0], as[1]) || pe.Action != "publish" ||
			!strings.HasPrefix(pe.Subject, "imageflow.evt.100001.") {
			t.Fatalf("%s proving 100001's worker rights: %v", pe, err)
		}
		if !strings.Contains(err.Error(), "publish the account's facts") {
			t.Errorf("the refusal does not say what the right is for: %v", err)
		}
	}
	nc, _, _ := connectAs(t, env, events.RoleWorker, "100001")
	if err := events.ProveWorker(ctx, nc, subjects, "100001"); err != nil {
		t.Fatalf("the account's own worker: %v", err)
	}

	admin, err := env.JetStreamAs(events.RoleAdmin, "100001")
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteStream(ctx, "IMAGEFLOW"); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = events.EnsureStream(ctx, js, "IMAGEFLOW", subjects, 1)
	var pe *events.PermissionError
	if !errors.As(err, &pe) || pe.Subject != "$JS.API.STREAM.CREATE.IMAGEFLOW" ||
		!strings.Contains(err.Error(), "does not exist in this NATS account") ||
		!strings.Contains(err.Error(), "setup-stream") {
		t.Fatalf("a worker finding its stream gone: %v", err)
	}
	if err := events.SetUpAccounts(ctx, env.NATSURL, subjects, "IMAGEFLOW", 1, []string{"100001"},
		testenv.NATSPassword(events.RoleAdmin, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := events.EnsureStream(ctx, js, "IMAGEFLOW", subjects, 1); err != nil {
		t.Fatalf("after the operator's step: %v", err)
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

// TestREADMEShowsTheAuthorization: the configuration the README shows for the demo's two
// accounts is the one AccountsConfig writes, line wrapping aside.
func TestREADMEShowsTheAuthorization(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(b), "### Who may publish what")
	block := string(b)[start:]
	block = block[strings.Index(block, "accounts {"):]
	block = block[:strings.Index(block, "```")]
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), "") }
	want := events.AccountsConfig(subjects, "IMAGEFLOW", []string{"100001", "100002"})
	want = want[strings.Index(want, "accounts {"):]
	if squeeze(block) != squeeze(want) {
		t.Fatalf("the README's accounts differ from AccountsConfig's:\n%s", want)
	}
}
