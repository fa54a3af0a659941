package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/workflows"
)

// startStep is the step a run waits in while its worker cannot start: no activity of it runs, so
// the run's own status would otherwise say only that no worker polls its task queue.
const startStep = "worker start"

// runsTold tells the migrations on the worker's task queue why nothing moves while the worker
// waits for the cloud at start (activities.WaitingSignal, as a step waiting inside its attempt
// does), and that the wait is over once it starts. Each run is told once per wait: a run's
// ETA moves by the time waited at each telling.
//
// A signal alone would sit in the run's history: only a worker running the run's workflow
// code turns it into the status, ImageflowJobStatus and answers to queries. So during the wait
// a stand-in polls the task queue's workflow tasks, never its activities, which wait in
// Temporal for the worker proper.
type runsTold struct {
	tc      client.Client
	ns      string
	queue   string
	logger  *slog.Logger
	told    map[string]string // workflow id -> run id, told that it waits
	standIn worker.Worker     // nil until the first telling
}

func newRunsTold(tc client.Client, ns, queue string, logger *slog.Logger) *runsTold {
	return &runsTold{tc: tc, ns: ns, queue: queue, logger: logger, told: map[string]string{}}
}

// waiting tells the running migrations not told yet that the worker waits for what since then.
func (r *runsTold) waiting(ctx context.Context, what string, since time.Time, cause error) {
	if r == nil {
		return
	}
	w := activities.Waiting{Step: startStep, Since: since.UTC(), Reason: fmt.Sprintf(
		"waiting for %s since %s UTC (%s); the worker starts when it answers", what,
		since.UTC().Format("15:04:05"), activities.CauseOf(cause))}
	if r.standIn == nil {
		r.standIn = worker.New(r.tc, r.queue, worker.Options{LocalActivityWorkerOnly: true})
		workflows.Register(r.standIn)
		if err := r.standIn.Start(); err != nil {
			r.logger.Warn("cannot run the workflows while the worker waits", "error", err.Error())
		}
	}
	runs, err := r.running(ctx)
	if err != nil {
		r.logger.Warn("cannot list the runs to tell them the worker waits", "error", err.Error())
		return
	}
	for _, e := range runs {
		if r.told[e.GetWorkflowId()] == e.GetRunId() {
			continue
		}
		if err := r.tc.SignalWorkflow(ctx, e.GetWorkflowId(), e.GetRunId(), activities.WaitingSignal, w); err != nil {
			r.logger.Warn("cannot tell a run the worker waits", "workflow_id", e.GetWorkflowId(), "error", err.Error())
			continue
		}
		r.told[e.GetWorkflowId()] = e.GetRunId()
	}
}

// over tells every run told of the wait that it is over.
func (r *runsTold) over(ctx context.Context) {
	if r == nil {
		return
	}
	for id, run := range r.told {
		if err := r.tc.SignalWorkflow(ctx, id, run, activities.WaitingSignal, activities.Waiting{}); err != nil {
			r.logger.Warn("cannot tell a run the worker started", "workflow_id", id, "error", err.Error())
		}
	}
	clear(r.told)
	r.stop()
}

// stop stops the stand-in, if one runs: the worker proper starts, or the worker gives up.
func (r *runsTold) stop() {
	if r != nil && r.standIn != nil {
		r.standIn.Stop()
		r.standIn = nil
	}
}

// running lists the open migrations on the worker's task queue (the only runs that show a wait).
func (r *runsTold) running(ctx context.Context) ([]*commonpb.WorkflowExecution, error) {
	q := fmt.Sprintf("TaskQueue = %q AND WorkflowType = %q AND ExecutionStatus = 'Running'", r.queue,
		workflows.MigrateImageWorkflow)
	var out []*commonpb.WorkflowExecution
	var token []byte
	for {
		resp, err := r.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: r.ns,
			Query: q, NextPageToken: token})
		if err != nil {
			return nil, err
		}
		for _, info := range resp.GetExecutions() {
			out = append(out, info.GetExecution())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}
