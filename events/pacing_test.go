package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestBridgeHoldsEventsWhileTemporalIsBehind: with no worker polling the account's queue, every
// run the bridge starts leaves a workflow task waiting in Temporal. Once MaxBacklog of them wait,
// the bridge takes no more to Temporal: the events it has in hand wait, told in progress, for ten
// ack waits (past MaxDeliver of them, after which an event left alone would be dead-lettered),
// as a production bridge waits out a backlog of many minutes with 30-second ack waits. None is
// redelivered, dead-lettered or lost; once a worker drains the queue, every one runs, once.
func TestBridgeHoldsEventsWhileTemporalIsBehind(t *testing.T) {
	env := testenv.New(t)
	const tenant, first, later = "100001", 4, 6
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
	send := func(n int) {
		for range n {
			in := workflows.ShareInput{Region: "DFW", ImageID: img, Members: []string{"100002"},
				Deadline: workflows.Duration(time.Second + time.Duration(len(ids))*time.Millisecond)}
			ids = append(ids, workflows.ShareWorkflowID(tenant, in))
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

	env.StartWorker("demo") // polls the queue: the backlog drains and the held events go on
	waitFor(t, "start of every event's run", func() bool { return b.Stats.Started.Load() == first+later })
	for _, id := range ids {
		if n := countRuns(t, env, id); n != 1 {
			t.Errorf("%s ran %d times, want once", id, n)
		}
		if err := env.Client.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if d, r := b.Stats.DeadLettered.Load(), b.Stats.Retried.Load(); d != 0 || r != 0 {
		t.Fatalf("%d dead-lettered, %d retried: holding must cost no delivery", d, r)
	}
}
