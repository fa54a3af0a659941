package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"

	tlog "go.temporal.io/sdk/log"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

var subjects = testenv.Subjects

// collector gathers messages on a subject.
type collector struct {
	mu   sync.Mutex
	msgs [][]byte
}

func collect(t *testing.T, env *testenv.Env, subject string) *collector {
	t.Helper()
	nc, err := nats.Connect(env.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c := &collector{}
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		c.mu.Lock()
		c.msgs = append(c.msgs, m.Data)
		c.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *collector) wait(t *testing.T, n int, timeout time.Duration) [][]byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		got := append([][]byte{}, c.msgs...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("want %d messages, got %d: %s", n, len(c.msgs), c.msgs)
	return nil
}

// streamed reads every message the stream holds on subject.
func streamed(t *testing.T, env *testenv.Env, subject string) [][]byte {
	t.Helper()
	ctx := context.Background()
	st, err := env.JetStream().Stream(ctx, "IMAGEFLOW")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil && subjectMatches(subject, m.Subject) {
			out = append(out, m.Data)
		}
	}
	return out
}

// subjectMatches reports whether subject falls under pattern, whose last token may be ">".
func subjectMatches(pattern, subject string) bool {
	if prefix, ok := strings.CutSuffix(pattern, ">"); ok {
		return strings.HasPrefix(subject, prefix)
	}
	return pattern == subject
}

func imageID(t *testing.T, env *testenv.Env, name string) string {
	t.Helper()
	imgs, err := env.Cloud("demo").ListImages(context.Background(), "DFW", cloud.ImageFilter{Name: name})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("find %s: %v", name, err)
	}
	return imgs[0].ID
}

func publisher(env *testenv.Env, source string) *events.Publisher {
	return events.NewPublisher(env.JetStream(), subjects, source)
}

func countRuns(t *testing.T, env *testenv.Env, id string) int {
	t.Helper()
	return env.Runs(id)
}

func TestMigrateEventRunsAndAnnouncesCompletion(t *testing.T) {
	env := testenv.New(t)
	r := env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	done := collect(t, env, subjects.AllFacts("migration.completed"))
	started := collect(t, env, subjects.AllFacts("migration.started"))
	in := workflows.MigrateInput{
		ImageID:       imageID(t, env, "demo-web-01"),
		SourceRegion:  "DFW",
		TargetRegions: []string{"IAD"},
	}
	p := publisher(env, "test")
	// Ten publishes of the same event: the stream drops the repeats by message id, and five more
	// with new ids (a republish after the duplicate window) join the run that exists.
	for i := 0; i < 10; i++ {
		if err := p.Command(context.Background(), events.CmdMigrate, "evt-1", "100001", in); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		if err := p.Command(context.Background(), events.CmdMigrate, fmt.Sprintf("evt-1-again-%d", i), "100001", in); err != nil {
			t.Fatal(err)
		}
	}
	msgs := done.wait(t, 1, 2*time.Minute)
	var ev events.Event
	if err := json.Unmarshal(msgs[0], &ev); err != nil || ev.Type != "imageflow.evt.migration.completed" ||
		ev.SpecVersion != "1.0" {
		t.Fatalf("completed event %s", msgs[0])
	}
	var data map[string]any
	_ = json.Unmarshal(ev.Data, &data)
	if data["migration_id"] != workflows.MigrateWorkflowID("100001", in) {
		t.Fatalf("completed event data %v", data)
	}
	time.Sleep(500 * time.Millisecond)
	if n := countRuns(t, env, workflows.MigrateWorkflowID("100001", in)); n != 1 {
		t.Fatalf("%d runs for one request", n)
	}
	if s := &r.Bridge.Stats; s.Started.Load() != 1 || s.Duplicates.Load() != 5 || s.Received.Load() != 6 {
		t.Fatalf(
			"bridge stats: received %d started %d duplicates %d",
			s.Received.Load(),
			s.Started.Load(),
			s.Duplicates.Load(),
		)
	}
	if len(started.wait(t, 1, time.Second)) != 1 {
		t.Fatal("started announced more than once")
	}
}

func TestEventWaitsForStoppedWorker(t *testing.T) {
	env := testenv.New(t)
	r := env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	r.Stop() // the durable consumer stays; events queue up for it
	in := workflows.ShareInput{
		Region:   "DFW",
		ImageID:  imageID(t, env, "demo-db-01"),
		Members:  []string{"100002"},
		Deadline: workflows.Duration(time.Second),
	}
	if err := publisher(env, "test").Command(context.Background(), events.CmdShare, "share-while-down", "100001", in); err != nil {
		t.Fatal(err)
	}
	expired := collect(t, env, subjects.AllFacts("share.expired"))
	time.Sleep(300 * time.Millisecond)
	if n := countRuns(t, env, workflows.ShareWorkflowID("100001", in)); n != 0 {
		t.Fatalf("a run started with no worker: %d", n)
	}
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	expired.wait(t, 1, time.Minute)
}

func TestBadEventsAreDeadLettered(t *testing.T) {
	env := testenv.New(t)
	r := env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	// A second account's worker on the same stream reads its own commands only.
	partnerWorker := env.StartWorker("partner", testenv.WorkerOptions{Events: true})
	dlq := collect(t, env, subjects.DLQ())
	js := env.JetStream()
	raw := func(subject, id, body string) {
		if _, err := js.Publish(context.Background(), subject, []byte(body), jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	raw(subjects.Cmd("100001", "migrate"), "bad-1", `{not json`)
	raw(
		subjects.Cmd("100001", "migrate"),
		"bad-2",
		`{"specversion":"1.0","id":"x","source":"s","type":"imageflow.cmd.share","tenant":"100001","data":{}}`,
	)
	raw(subjects.Cmd("100001", "migrate"), "bad-3", strings.Repeat("x", events.MaxEventSize+1))
	p := publisher(env, "test")
	ctx := context.Background()
	_ = p.Command(
		ctx,
		events.CmdMigrate,
		"bad-4",
		"100001",
		map[string]any{"image_id": "x", "source_region": "DFW", "target_regions": []string{"IAD"}, "colour": "red"},
	)
	_ = p.Command(
		ctx,
		events.CmdMigrate,
		"bad-5",
		"100001",
		map[string]any{"image_id": "x", "source_region": "DFW", "target_regions": "IAD"},
	)
	_ = p.Command(
		ctx,
		events.CmdMigrate,
		"bad-6",
		"100001",
		workflows.MigrateInput{ImageID: "no-such-image", SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
	)
	_ = p.Command(
		ctx,
		events.CmdMigrate,
		"bad-7",
		"100001",
		workflows.MigrateInput{
			ImageID:       imageID(t, env, "demo-rhel-01"),
			SourceRegion:  "DFW",
			TargetRegions: []string{"IAD"},
		},
	)
	// No tenant attribute, and one that names another account than the subject does.
	raw(subjects.Cmd("100001", "migrate"), "bad-8", `{"specversion":"1.0","id":"bad-8","source":"s",`+
		`"type":"imageflow.cmd.migrate","data":{"image_id":"x","source_region":"DFW","target_regions":["IAD"]}}`)
	raw(subjects.Cmd("100001", "migrate"), "bad-12", `{"specversion":"1.0","id":"bad-12","source":"s",`+
		`"type":"imageflow.cmd.migrate","tenant":"100002","data":{"image_id":"x","source_region":"DFW",`+
		`"target_regions":["IAD"]}}`)
	// A decision in another member's name: the subject says who sent it.
	raw(subjects.MemberStatus("100001", "100002"), "bad-17", `{"specversion":"1.0","id":"bad-17","source":"s",`+
		`"type":"imageflow.cmd.member-status","tenant":"100001","data":{"image_id":"x","region":"DFW",`+
		`"member":"100009","status":"accepted","share_workflow_id":"`+workflows.ShareIDPrefix("100001")+`x"}}`)
	_ = p.Command(
		ctx,
		events.CmdMigrate,
		"bad-9",
		"100001",
		workflows.MigrateInput{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"MARS"}},
	)
	// A sender who put credentials in an event: refused, and the dead letter does not repeat them.
	_ = p.Command(ctx, events.CmdMigrate, "bad-10", "100001", map[string]any{"image_id": "x", "source_region": "DFW",
		"target_regions": []string{
			"IAD",
		}, "api_key": "demo-api-key", "auth": map[string]string{"password": "demo-password"}})
	// 200 KB: its dead letter keeps a bounded copy and the original's size and hash.
	huge := `{"specversion":"1.0","id":"huge","source":"s","type":"imageflow.cmd.migrate","tenant":"100001","data":{"pad":"` +
		strings.Repeat(
			"y",
			200<<10,
		) + `"}}`
	raw(subjects.Cmd("100001", "migrate"), "bad-11", huge)
	// A command for another account's worker travels on that account's subject: demo's never
	// sees it, and the partner's judges it (and dead-letters it: the image is not the partner's).
	_ = p.Command(
		ctx,
		events.CmdMigrate,
		"other-tenant",
		"100002",
		workflows.MigrateInput{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
	)
	// This stop's new fields, abused: a deadline that is no time, a lineage kept too long, and
	// a share into another cloud (which names a peer, never credentials).
	for id, data := range map[string]map[string]any{
		"bad-13": {"image_id": "x", "source_region": "DFW", "target_regions": []string{"IAD"}, "deadline": "tomorrow"},
		"bad-14": {"image_id": "x", "source_region": "DFW", "target_regions": []string{"IAD"}, "lineage_keep": 99},
		"bad-15": {"image_id": "x", "source_region": "DFW", "target_regions": []string{"IAD"},
			"target_cloud": "private", "share_with": []string{"100002"}},
	} {
		_ = p.Command(ctx, events.CmdMigrate, id, "100001", data)
	}
	// The next good event still runs.
	good := workflows.ShareInput{
		Region:   "DFW",
		ImageID:  imageID(t, env, "demo-web-01"),
		Members:  []string{"100002"},
		Deadline: workflows.Duration(time.Second),
	}
	expired := collect(t, env, subjects.AllFacts("share.expired"))
	_ = p.Command(ctx, events.CmdShare, "good-1", "100001", good)
	expired.wait(t, 1, time.Minute)

	dlq.wait(t, 17, 30*time.Second)
	time.Sleep(time.Second) // a second copy would show by now
	// The stream is the record: one dead letter per stream message, on its own subject.
	letters := streamed(t, env, subjects.DLQ())
	if len(letters) != 17 {
		t.Errorf(
			"%d dead letters in the stream for 17 bad events with two workers running, want one each",
			len(letters),
		)
		for _, l := range letters {
			t.Logf("%.300s", l)
		}
	}
	reasons := map[string]string{}
	for _, l := range letters {
		var dl events.DeadLetter
		if err := json.Unmarshal(l, &dl); err != nil {
			t.Fatalf("dead letter is not JSON: %s", l)
		}
		if strings.Contains(string(l), "demo-api-key") || strings.Contains(string(l), "demo-password") {
			t.Errorf("a dead letter repeats a secret: %s", l)
		}
		if len(l) > events.MaxDeadLetterOriginal+8<<10 {
			t.Errorf("a dead letter of %d bytes: not bounded", len(l))
		}
		var ev events.Event
		_ = json.Unmarshal(dl.Event, &ev)
		key := ev.ID
		if key == "" {
			key = fmt.Sprintf("raw-%d", dl.Size)
		}
		if dl.Truncated && (dl.Size <= events.MaxDeadLetterOriginal || len(dl.SHA256) != 64) {
			t.Errorf("a cut original should keep its size and hash: %d %q", dl.Size, dl.SHA256)
		}
		reasons[key] = dl.Reason
	}
	want := map[string]string{
		"bad-4":        "unknown field \"colour\"",
		"bad-5":        "cannot unmarshal string",
		"bad-6":        "image no-such-image was not found in DFW for account 100001",
		"bad-7":        "licensed software",
		"bad-8":        `tenant attribute "" disagrees with subject imageflow.cmd.100001.migrate`,
		"bad-9":        "region \"MARS\" is not in account 100001's service catalog (it lists DFW, HKG",
		"bad-10":       "unknown field",
		"other-tenant": "account 100002",
		"bad-12":       `tenant attribute "100002" disagrees with subject imageflow.cmd.100001.migrate`,
		"bad-17":       `member-status for member "100009" came on the subject of member "100002"'s decisions`,
		"bad-13":       `deadline "tomorrow" is not an RFC 3339 time`,
		"bad-14":       "lineage_keep must be 0 (off) to 10, got 99",
		"bad-15":       "share_with cannot be used with target_cloud",
		"x":            "does not match subject",
	}
	for id, text := range want {
		if !strings.Contains(reasons[id], text) {
			t.Errorf("%s: reason %q, want it to mention %q", id, reasons[id], text)
		}
	}
	if !strings.Contains(reasons["raw-9"], "not a CloudEvents JSON envelope") ||
		!strings.Contains(reasons[fmt.Sprintf("raw-%d", events.MaxEventSize+1)], "more than the") ||
		!strings.Contains(reasons[fmt.Sprintf("raw-%d", len(huge))], "more than the") {
		t.Errorf("malformed and oversized: %v", reasons)
	}
	if r.Bridge.Stats.Skipped.Load() != 0 || partnerWorker.Bridge.Stats.Received.Load() != 1 {
		t.Errorf("demo's worker skipped %d events, the partner's received %d: each should read its own only",
			r.Bridge.Stats.Skipped.Load(), partnerWorker.Bridge.Stats.Received.Load())
	}
}

// TestShareLoopByEventsAlone: the producer shares by event, the partner's worker accepts the
// offer it hears, its decision event signals the producer's ShareImage. The backstop poll is an
// hour away, so only events can close the loop.
func TestShareLoopByEventsAlone(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	env.StartWorker(
		"partner",
		testenv.WorkerOptions{
			Events:       true,
			AutoAccept:   true,
			AcceptPolicy: workflows.AcceptPolicy{TrustedProducers: []string{"100001"}},
		},
	)
	accepted := collect(t, env, subjects.AllFacts("share.accepted"))
	in := workflows.ShareInput{
		Region:       "DFW",
		ImageID:      imageID(t, env, "demo-web-01"),
		Members:      []string{"100002"},
		Deadline:     workflows.Duration(time.Hour),
		PollInterval: workflows.Duration(time.Hour),
	}
	if err := publisher(env, "test").Command(context.Background(), events.CmdShare, "share-loop", "100001", in); err != nil {
		t.Fatal(err)
	}
	accepted.wait(t, 1, time.Minute)
	run := env.Client.GetWorkflow(context.Background(), workflows.ShareWorkflowID("100001", in), "")
	var res workflows.ShareResult
	if err := run.Get(context.Background(), &res); err != nil || res.Members[0].Status != "accepted" ||
		res.Members[0].Via != "signal" {
		t.Fatalf("share %+v %v", res, err)
	}
	if img, err := env.Cloud("partner").GetImage(context.Background(), "DFW", in.ImageID); err != nil ||
		img.ID != in.ImageID {
		t.Fatalf("the partner does not see the image it accepted: %v", err)
	}
}

// TestUnreachableTemporalNaksThenDeadLetters: with Temporal unreachable the bridge naks an event
// for redelivery instead of dropping it, and after the last allowed delivery parks it in the
// dead-letter subject with the reason.
func TestUnreachableTemporalNaksThenDeadLetters(t *testing.T) {
	env := testenv.New(t)
	dead, err := client.NewLazyClient(
		client.Options{
			HostPort:  "127.0.0.1:1",
			Namespace: env.Namespace,
			Logger:    tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	js := env.JetStream()
	b, err := events.NewBridge(
		context.Background(),
		js,
		dead,
		events.BridgeConfig{Subjects: subjects, Stream: "IMAGEFLOW", Tenant: "100001",
			TaskQueue: "nobody", MaxDeliver: 3, NakDelay: 100 * time.Millisecond, AckWait: 5 * time.Second},
	)
	if err != nil {
		t.Fatal(err)
	}
	dlq := collect(t, env, subjects.DLQ())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	in := workflows.MigrateInput{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"IAD"}}
	if err := publisher(env, "test").Command(context.Background(), events.CmdMigrate, "unreachable-1", "100001", in); err != nil {
		t.Fatal(err)
	}
	letters := dlq.wait(t, 1, time.Minute)
	var dl events.DeadLetter
	if err := json.Unmarshal(letters[0], &dl); err != nil || dl.Deliveries != 3 ||
		!strings.Contains(dl.Reason, "gave up after 3 deliveries: Temporal unreachable") {
		t.Fatalf("dead letter %+v %v", dl, err)
	}
	if r := b.Stats.Retried.Load(); r != 2 {
		t.Fatalf("%d naks before giving up, want 2", r)
	}
}

// TestMaxDeliveriesAreDeadLettered: a handler that never finishes (a worker stuck or gone while
// holding the event) lets the ack wait pass on every delivery; when JetStream gives up, its
// advisory turns the event into a dead letter instead of letting it vanish.
func TestMaxDeliveriesAreDeadLettered(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	stuck := make(chan struct{})
	defer close(stuck)
	b, err := events.NewBridge(
		ctx,
		env.JetStream(),
		env.Client,
		events.BridgeConfig{Subjects: subjects, Stream: "IMAGEFLOW",
			Tenant: "100001", TaskQueue: "nobody", Consumer: "stuck", MaxDeliver: 2, AckWait: time.Second, Concurrency: 4,
			Validate: func(context.Context, string, any) error { <-stuck; return nil }},
	)
	if err != nil {
		t.Fatal(err)
	}
	bctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = b.Run(bctx) }()
	in := workflows.MigrateInput{ImageID: "img-stuck", SourceRegion: "DFW", TargetRegions: []string{"IAD"}}
	if err := publisher(env, "test").Command(ctx, events.CmdMigrate, "stuck-1", "100001", in); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range streamed(t, env, subjects.DLQ()) {
			var dl events.DeadLetter
			if json.Unmarshal(l, &dl) == nil && strings.Contains(dl.Reason, "max deliveries") {
				var ev events.Event
				if json.Unmarshal(dl.Event, &ev) != nil || ev.ID != "stuck-1" || dl.Deliveries != 2 {
					t.Fatalf("dead letter %s", l)
				}
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no dead letter after JetStream gave up on the event")
}

// TestRequestsRunAgainEventsOnce: a share sent again as a new event after its run ended runs
// again (and offers again); the same event delivered again does not; decisions for members the
// share does not wait on, and floods for one it does, never reach the run's history.
func TestRequestsRunAgainEventsOnce(t *testing.T) {
	env := testenv.New(t)
	r := env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	ctx := context.Background()
	p := publisher(env, "test")
	expired := collect(t, env, subjects.AllFacts("share.expired"))
	offered := collect(t, env, subjects.AllOffers())
	in := workflows.ShareInput{Region: "DFW", ImageID: imageID(t, env, "demo-web-01"), Members: []string{"100002"},
		Deadline: workflows.Duration(
			time.Second,
		), OnTimeout: workflows.Keep, PollInterval: workflows.Duration(time.Second)}
	id := workflows.ShareWorkflowID("100001", in)
	if err := p.Command(ctx, events.CmdShare, "again-1", "100001", in); err != nil {
		t.Fatal(err)
	}
	expired.wait(t, 1, time.Minute)
	// The fact comes from the run's last activity: wait for the run itself to end, or the
	// request would (rightly) join it.
	if err := env.Client.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Command(ctx, events.CmdShare, "again-2", "100001", in); err != nil {
		t.Fatal(err)
	}
	expired.wait(t, 2, time.Minute)
	offered.wait(t, 2, time.Second)
	if n := countRuns(t, env, id); n != 2 {
		t.Fatalf("%d runs after the request was sent again, want 2", n)
	}
	// Event again-1 delivered again after the duplicate window (a new message id, same event).
	ev, _ := events.NewEvent("again-1", "test", "imageflow.cmd.share", "100001", in)
	body, _ := json.Marshal(ev)
	later := subjects.Cmd("100001", events.CmdShare)
	if _, err := env.JetStream().Publish(ctx, later, body, jetstream.WithMsgID("later")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for r.Bridge.Stats.Received.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := countRuns(t, env, id); n != 2 || r.Bridge.Stats.Duplicates.Load() != 1 {
		t.Fatalf(
			"%d runs and %d duplicates after event again-1 came back, want 2 and 1",
			n,
			r.Bridge.Stats.Duplicates.Load(),
		)
	}

	// A share that waits: decisions for a member it did not offer to are dropped, and a flood of
	// forged ones for the member it waits on reaches it once.
	long := workflows.ShareInput{Region: "DFW", ImageID: in.ImageID, Members: []string{"100002"},
		Deadline: workflows.Duration(time.Hour), PollInterval: workflows.Duration(time.Hour)}
	longID := workflows.ShareWorkflowID("100001", long)
	if err := p.Command(ctx, events.CmdShare, "long-1", "100001", long); err != nil {
		t.Fatal(err)
	}
	offered.wait(t, 3, time.Minute)
	before := historyLength(t, env, longID)
	for i := 0; i < 40; i++ {
		member := []string{"100009", "100002"}[i%2]
		ms := events.MemberStatus{
			ImageID:         in.ImageID,
			Region:          "DFW",
			Member:          member,
			Status:          "accepted",
			ShareWorkflowID: longID,
		}
		if err := p.Decide(ctx, fmt.Sprintf("forged-%d", i), "100001", ms); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(30 * time.Second)
	for r.Bridge.Stats.Received.Load() < 44 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if s := r.Bridge.Stats.Signalled.Load(); s != 1 {
		t.Errorf("%d signals for 40 forged decisions, want 1", s)
	}
	// One signal and the settle it triggers (about 10 events), and the offer's own completion if
	// it lands after the first reading; 40 signals would be 40 events and more.
	if grown := historyLength(t, env, longID) - before; grown > 24 {
		t.Errorf("the share's history grew by %d events under 40 forged decisions", grown)
	}
}

func historyLength(t *testing.T, env *testenv.Env, id string) int {
	t.Helper()
	d, err := env.Client.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	return int(d.GetWorkflowExecutionInfo().GetHistoryLength())
}

// TestMigrateShareWithChainsToAutoAccept: a migration's share_with offers the new image the
// way a share does, so the partner's worker accepts it by policy: migrate, share and accept
// chain without a share run.
func TestMigrateShareWithChainsToAutoAccept(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	env.StartWorker("partner", testenv.WorkerOptions{Events: true, AutoAccept: true,
		AcceptPolicy: workflows.AcceptPolicy{TrustedProducers: []string{"100001"}}})
	ctx := context.Background()
	in := workflows.MigrateInput{ImageID: imageID(t, env, "demo-web-01"), SourceRegion: "DFW",
		TargetRegions: []string{"IAD"}, ShareWith: []string{"100002"}}
	if err := publisher(env, "test").Command(ctx, events.CmdMigrate, "chain-1", "100001", in); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for countRuns(t, env, workflows.MigrateWorkflowID("100001", in)) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var res workflows.MigrateResult
	if err := env.Client.GetWorkflow(ctx, workflows.MigrateWorkflowID("100001", in), "").Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	share := res.Targets[0].ShareWorkflowID
	if share == "" {
		t.Fatalf("the migration started no share run: %+v", res.Targets[0])
	}
	// The share run learns of the acceptance (by the partner's decision event) and ends.
	var sr workflows.ShareResult
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := env.Client.GetWorkflow(sctx, share, "").Get(sctx, &sr); err != nil {
		t.Fatalf("share run %s: %v", share, err)
	}
	m, err := env.Cloud("demo").GetMember(ctx, "IAD", res.Targets[0].ImageID, "100002")
	if err != nil || m.Status != "accepted" || fmt.Sprint(sr) == "" || !strings.Contains(fmt.Sprint(sr), "accepted") {
		t.Fatalf("member %+v %v; share result %+v", m, err, sr)
	}
}
