package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// Pacing by Temporal's backlog. Every event the bridge hands to Temporal (a start, a signal)
// becomes a workflow task on the worker's queue. A burst taken off the stream as fast as the
// bridge can signal (100,000 acceptances in two minutes, bench row 6) left 56,630 workflow tasks
// waiting in Temporal, and while the signals went on, runs completed at 2 or 3 a second: the
// burst starved the work it was for. Held in the stream instead, events wait where they are
// durable and cheap, and the worker keeps up with what it already has.

// BacklogReader reports how many workflow tasks wait on the worker's task queue.
type BacklogReader func(ctx context.Context) (int64, error)

// TaskQueueBacklog reads the workflow-task backlog of queue from Temporal (its approximate
// count, as DescribeTaskQueue reports it with stats).
func TaskQueueBacklog(svc workflowservice.WorkflowServiceClient, namespace, queue string) BacklogReader {
	return func(ctx context.Context) (int64, error) {
		resp, err := svc.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace:     namespace,
			TaskQueue:     &taskqueuepb.TaskQueue{Name: queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
			TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW,
			ReportStats:   true,
		})
		if err != nil {
			return 0, fmt.Errorf("describe task queue %s: %w", queue, err)
		}
		return resp.GetStats().GetApproximateBacklogCount(), nil
	}
}

// pacer holds events while the backlog is at its limit or over. It reads the backlog every so
// often rather than per event: a read is a call to Temporal, and the count is approximate anyway.
type pacer struct {
	read  BacklogReader
	limit int64
	every time.Duration
	log   *slog.Logger
	held  atomic.Bool
	last  atomic.Int64 // the backlog last read
}

// run reads the backlog until ctx ends. A backlog it cannot read holds nothing: events then go
// to Temporal, which says for itself whether it can take them.
func (p *pacer) run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	failing := false
	for {
		n, err := p.read(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				p.log.Warn("cannot read Temporal's backlog; events are not held meanwhile", "error", err)
			}
			failing = true
			p.set(false, 0)
		case err == nil:
			failing = false
			p.set(n >= p.limit, n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *pacer) set(hold bool, n int64) {
	p.last.Store(n)
	if p.held.Swap(hold) == hold {
		return
	}
	if hold {
		p.log.Warn("holding events in the stream: Temporal is behind on this worker's queue",
			"backlog", n, "limit", p.limit)
	} else {
		p.log.Info("taking events again: Temporal's backlog is under the limit", "backlog", n, "limit", p.limit)
	}
}

// holding says events wait; a bridge without a pacer never holds them.
func (p *pacer) holding() bool { return p != nil && p.held.Load() }

// Holding says the bridge is holding events because Temporal is behind (see pacing.go).
func (b *Bridge) Holding() bool { return b.pace.holding() }
