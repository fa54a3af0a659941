package events_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
)

// doors drives one bridge of account 100001 and reads its dead letters by stream sequence.
type doors struct {
	t   *testing.T
	env *testenv.Env
	js  jetstream.JetStream
}

// sendBad publishes a command that can only be dead-lettered; it returns its stream sequence.
func (d doors) sendBad(id string) uint64 {
	d.t.Helper()
	// A stream just made again may take a moment to answer: a publisher tries again.
	for i := 0; ; i++ {
		ack, err := d.js.Publish(context.Background(), subjects.Cmd("100001", "migrate"), []byte(`{not json`),
			jetstream.WithMsgID(id))
		if err == nil {
			return ack.Sequence
		}
		if i == 5 {
			d.t.Fatalf("publish %s: %v", id, err)
		}
		d.t.Logf("publish %s: %v; trying again", id, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// deadLetter waits for the dead letter of stream message seq.
func (d doors) deadLetter(seq uint64, within time.Duration) *events.DeadLetter {
	d.t.Helper()
	ctx := context.Background()
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		st, err := d.js.Stream(ctx, "IMAGEFLOW")
		if err != nil {
			continue
		}
		if dl, err := events.FindDeadLetter(ctx, st, subjects, "100001", seq); err == nil && dl != nil {
			return dl
		}
	}
	d.t.Fatalf("no dead letter for stream message %d within %s", seq, within)
	return nil
}

func (d doors) bridge(ctx context.Context, cfg events.BridgeConfig) (*events.Bridge, chan error) {
	d.t.Helper()
	cfg.Subjects, cfg.Stream, cfg.Tenant, cfg.TaskQueue = subjects, "IMAGEFLOW", "100001", testenv.TaskQueue("demo")
	b, err := events.NewBridge(ctx, d.js, d.env.Client, cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	return b, done
}

// TestDeadLettersCannotBeSuppressed: dead letters used the message id "dlq-<stream seq>" in the
// stream's duplicate window, which every publisher shares, so a publisher could send that id
// first and the bad event vanished without a trace; and a request sent with such an id was
// dropped as a duplicate while its sender was told it went. No id a publisher chooses may meet
// one the bridge writes.
func TestDeadLettersCannotBeSuppressed(t *testing.T) {
	env := testenv.New(t)
	d := doors{t: t, env: env, js: env.JetStream()}
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, d.js, "IMAGEFLOW", subjects, 1); err != nil {
		t.Fatal(err)
	}
	// The bad event waits (no bridge yet) while the forger takes its dead letter's old id.
	bad := d.sendBad("bad-event")
	forged, err := d.js.Publish(ctx, subjects.Cmd("100001", "migrate"), []byte(`{"forged":true}`),
		jetstream.WithMsgID(fmt.Sprintf("dlq-%d", bad)))
	if err != nil || forged.Duplicate {
		t.Fatalf("forger's publish: %+v %v", forged, err)
	}
	bctx, stop := context.WithCancel(ctx)
	defer stop()
	d.bridge(bctx, events.BridgeConfig{})
	if dl := d.deadLetter(bad, 30*time.Second); !strings.Contains(dl.Reason, "not a CloudEvents JSON envelope") {
		t.Fatalf("dead letter of the bad event: %+v", dl)
	}
	d.deadLetter(forged.Sequence, 30*time.Second)
	// A request whose id looks like a dead letter's is a new request, not a duplicate.
	sent, err := publisher(env, "test").Send(ctx, events.CmdMigrate, fmt.Sprintf("dlq-%d", bad+2), "100001",
		map[string]any{"image_id": "none"})
	if err != nil || sent.Duplicate {
		t.Fatalf("a request with a dead-letter-like id: %+v %v", sent, err)
	}
	d.deadLetter(sent.Seq, 30*time.Second)
	// Two workers' copies of one bad event still make one dead letter: the second is refused.
	if n := len(streamed(t, env, subjects.DeadLetter("100001", bad))); n != 1 {
		t.Fatalf("%d dead letters for stream message %d", n, bad)
	}
}

// TestBridgeOutlivesItsStream: a consumer deleted, the stream deleted, its subjects changed by
// hand, the stream purged: each time the bridge finds out, makes its
// stream and consumer again and reads on. When it cannot (another consumer holds its name),
// it says so in Healthy and Run returns the error, so the worker exits for its supervisor.
func TestBridgeOutlivesItsStream(t *testing.T) {
	env := testenv.New(t)
	d := doors{t: t, env: env, js: env.JetStream()}
	ctx := context.Background()
	bctx, stop := context.WithCancel(ctx)
	defer stop()
	b, done := d.bridge(bctx, events.BridgeConfig{CheckEvery: 300 * time.Millisecond, RecoverFor: 3 * time.Second})
	d.deadLetter(d.sendBad("before"), 30*time.Second)

	st, err := d.js.Stream(ctx, "IMAGEFLOW")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteConsumer(ctx, "imageflow-100001"); err != nil {
		t.Fatal(err)
	}
	d.deadLetter(d.sendBad("after-consumer-deleted"), 30*time.Second)

	if err := d.js.DeleteStream(ctx, "IMAGEFLOW"); err != nil {
		t.Fatal(err)
	}
	d.deadLetter(d.sendBad("after-stream-deleted"), 30*time.Second)

	// Changed by hand so that it no longer holds dead letters.
	if _, err := d.js.UpdateStream(ctx, jetstream.StreamConfig{Name: "IMAGEFLOW", Storage: jetstream.FileStorage,
		Subjects: []string{subjects.Prefix + ".cmd.>"}}); err != nil {
		t.Fatal(err)
	}
	d.deadLetter(d.sendBad("after-stream-changed"), 30*time.Second)

	if st, err = d.js.Stream(ctx, "IMAGEFLOW"); err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx); err != nil {
		t.Fatal("purge: ", err)
	}
	d.deadLetter(d.sendBad("after-purge"), 30*time.Second)
	if err := b.Healthy(); err != nil {
		t.Fatalf("healthy after recovering: %v", err)
	}

	// A squatter takes the consumer's name with a configuration the bridge cannot update
	// (another ack policy), so the consumer cannot be made again. The bridge may make its own
	// between the delete and the squatter's create: then try again.
	for i := 0; ; i++ {
		_ = st.DeleteConsumer(ctx, "imageflow-100001")
		_, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "imageflow-100001",
			AckPolicy: jetstream.AckNonePolicy})
		if err == nil {
			break
		}
		if i == 50 {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "could not be re-created") {
			t.Fatalf("Run returned %v", err)
		}
		if b.Healthy() == nil {
			t.Fatal("Healthy is nil after the bridge gave up")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return though its stream cannot be made again")
	}
}

// TestShareWithoutRoomIsRefusedUpFront: the cloud takes 128 members per image. A share that
// would pass it (counting the members the image has) is dead-lettered with the reason before
// any member is added; it used to add members up to the limit and fail, leaving them offered.
func TestShareWithoutRoomIsRefusedUpFront(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	d := doors{t: t, env: env, js: env.JetStream()}
	ctx := context.Background()
	web := imageID(t, env, "demo-web-01")
	c := env.Cloud("demo")
	for i := range 126 {
		if _, err := c.AddMember(ctx, "DFW", web, fmt.Sprint(300000+i)); err != nil {
			t.Fatal(err)
		}
	}
	in := map[string]any{"region": "DFW", "image_id": web,
		"members": []string{"100002", "400001", "400002", "400003", "300001"}}
	sent, err := publisher(env, "test").Send(ctx, events.CmdShare, "too-many", "100001", in)
	if err != nil {
		t.Fatal(err)
	}
	dl := d.deadLetter(sent.Seq, 30*time.Second)
	if !strings.Contains(dl.Reason, "has 126 members and the share adds 4 more") ||
		!strings.Contains(dl.Reason, "limit of 128") {
		t.Fatalf("dead letter reason %q", dl.Reason)
	}
	// The owner as a member: the cloud would refuse it after the other members were added.
	sent, err = publisher(env, "test").Send(ctx, events.CmdShare, "self-share", "100001",
		map[string]any{"region": "DFW", "image_id": web, "members": []string{"100002", "100001"}})
	if err != nil {
		t.Fatal(err)
	}
	if dl := d.deadLetter(sent.Seq, 30*time.Second); !strings.Contains(dl.Reason, "is the account the request is for") {
		t.Fatalf("dead letter reason %q", dl.Reason)
	}
	ms, err := c.ListMembers(ctx, "DFW", web)
	if err != nil || len(ms) != 126 {
		t.Fatalf("%d members after the refused share (%v), want the 126 it had", len(ms), err)
	}
}
