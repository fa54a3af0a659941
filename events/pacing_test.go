package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// first runs fill the backlog; later events are held behind it.
const first, later = 4, 6

// TestBridgeHoldsEventsWhileTemporalIsBehind: with no worker polling the account's queue, every
// run the bridge starts leaves a workflow task waiting in Temporal. Once MaxBacklog of them wait,
// the bridge takes no more to Temporal: the events it has in hand wait, told in progress, for ten
// ack waits (past MaxDeliver of them, after which an event left alone would be dead-lettered),
// as a production bridge waits out a backlog of many minutes with 30-second ack waits. None is
// redelivered, dead-lettered or lost; once a worker drains the queue, every one runs, once. Bad
// events sent during the hold are dead-lettered at once, and a held one sent again runs once.
func TestBridgeHoldsEventsWhileTemporalIsBehind(t *testing.T) {
	env := testenv.New(t)
	const tenant = "100001"
	queue := testenv.TaskQueue("demo")
	js, err := env.JetStreamAs(events.RoleWorker, tenant)
	if err != nil {
		t.Fatal(err)
	}
	ackWait := time.Second
	b, err := events.NewBridge(context.Background(), js, env.Client, events.BridgeConfig{
		Subjects: subjects, Stream: "IMAGEFLOW", Tenant: tenant, TaskQueue: queue,
		MaxDeliver: 3, AckWait: ackWait, Concurrency: 2,
		Backlog:    events.TaskQueueBacklog(env.Client.WorkflowService(), env.Namespace, queue),
		MaxBacklog: first, BacklogEvery: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- b.Run(ctx) }()
	t.Cleanup(func() { stop(); <-ran })

	img := imageID(t, env, "demo-db-01")
	var ids []string
	var ins []workflows.ShareInput
	send := func(n int) {
		for range n {
			in := workflows.ShareInput{Region: "DFW", ImageID: img, Members: []string{"100002"},
				Deadline: workflows.Duration(time.Second + time.Duration(len(ids))*time.Millisecond)}
			ids, ins = append(ids, workflows.ShareWorkflowID(tenant, in)), append(ins, in)
			if err := publisher(env, "test").Command(ctx, events.CmdShare, fmt.Sprint("held-", len(ids)), tenant,
				in); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(first)
	waitFor(t, "start of the first runs", func() bool { return b.Stats.Started.Load() == first })
	waitFor(t, "hold on events (the backlog at its limit)", b.Holding)
	send(later)
	waitFor(t, "hold on the later events", func() bool { return b.Stats.Held.Load() == later })
	time.Sleep(10 * ackWait)

	if n := b.Stats.Started.Load(); n != first || !b.Holding() {
		t.Fatalf("%d runs started while Temporal's backlog was at its limit, want %d", n, first)
	}
	info, err := js.Consumer(ctx, "IMAGEFLOW", "imageflow-"+tenant)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumRedelivered != 0 || ci.NumAckPending != later || b.Stats.DeadLettered.Load() != 0 {
		t.Fatalf("held events: %d redelivered, %d pending ack, %d dead-lettered; want 0, %d, 0",
			ci.NumRedelivered, ci.NumAckPending, b.Stats.DeadLettered.Load(), later)
	}

	refusedWhileHolding(t, env, b, ins[first])
	if n := b.Stats.Started.Load(); n != first || !b.Holding() {
		t.Fatalf("%d runs started, holding %v: the bad events must not have ended the hold", n, b.Holding())
	}

	env.StartWorker("demo") // polls the queue: the backlog drains and the held events go on
	waitFor(t, "start of every event's run", func() bool { return b.Stats.Started.Load() == first+later })
	waitFor(t, "the held event sent again, settled", func() bool { return b.Stats.Received.Load() == first+later+3 })
	for _, id := range ids {
		if n := countRuns(t, env, id); n != 1 {
			t.Errorf("%s ran %d times, want once", id, n)
		}
		if err := env.Client.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if d, r := b.Stats.DeadLettered.Load(), b.Stats.Retried.Load(); d != 2 || r != 0 {
		t.Fatalf("%d dead-lettered, %d retried: want the 2 bad events only; holding must cost no delivery", d, r)
	}
}

// refusedWhileHolding sends, while b holds, a body that is not JSON and an event whose tenant
// attribute names another account than its subject: each must be dead-lettered at once, with
// its reason, not after the hold (a wrong event waits for nothing). It then sends held, already
// waiting, again under another message id (as a publisher's retry past NATS's duplicate window
// would): it waits too, and must not make a second run.
func refusedWhileHolding(t *testing.T, env *testenv.Env, b *events.Bridge, held workflows.ShareInput) {
	t.Helper()
	ctx := context.Background()
	dlq := collect(t, env, subjects.DLQ())
	raw := func(msgID string, body []byte) {
		if _, err := env.JetStream().Publish(ctx, subjects.Cmd("100001", events.CmdShare), body,
			jetstream.WithMsgID(msgID)); err != nil {
			t.Fatal(err)
		}
	}
	event := func(id, tenant string, data any) []byte {
		ev, err := events.NewEvent(id, "test", "imageflow.cmd."+events.CmdShare, tenant, data)
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
	raw("not-json", []byte(`{not json`))
	raw("forged", event("forged", "100002", held))
	reasons := map[string]bool{}
	for _, l := range dlq.wait(t, 2, 5*time.Second) {
		var dl events.DeadLetter
		if err := json.Unmarshal(l, &dl); err != nil {
			t.Fatal(err)
		}
		reasons[dl.Reason] = true
	}
	if len(reasons) != 2 || !anyContains(reasons, "JSON") || !anyContains(reasons, "tenant attribute") {
		t.Fatalf("dead letters while holding: %v; want one naming the JSON, one the tenant", reasons)
	}
	raw("held-again", event(fmt.Sprint("held-", first+1), "100001", held))
}

func anyContains(set map[string]bool, part string) bool {
	for s := range set {
		if strings.Contains(s, part) {
			return true
		}
	}
	return false
}
