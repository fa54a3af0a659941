package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// errBatchDone ends a run's share of a bulk: it continues as new with what is left.
var errBatchDone = errors.New("batch done")

// bulkRun is one run of a bulk: its children, started Concurrency at a time, and what they end
// with.
type bulkRun struct {
	in     *BulkInput
	st     *BulkStatus
	tenant string
}

// bulkOutcome is how one child ended.
type bulkOutcome struct {
	imageID string
	res     MigrateResult
	err     error
	earlier bool // the outcome is an earlier run's of the same migration
}

// migrate runs children until none is left (nil), the batch is done (errBatchDone) or the bulk
// is cancelled (a cancellation carrying the summary). A cancel stops new starts and lets the
// running children finish: a migration cut off mid-import would leave an image the next run
// cannot recognise, so the bulk drains instead of cutting (children run disconnected, and a
// terminated bulk abandons them to finish on their own).
func (b *bulkRun) migrate(ctx workflow.Context) error {
	in := b.in
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	ended := workflow.NewChannel(dctx)
	started, running, cancelled := 0, 0, false
	for {
		for !cancelled && running < in.Concurrency && len(in.Pending) > 0 && started < in.BatchSize {
			if !in.Deadline.IsZero() && !workflow.Now(ctx).Before(in.Deadline) {
				in.skipOverdue()
				break
			}
			id := in.Pending[0]
			in.Pending = in.Pending[1:]
			b.start(dctx, id, ended)
			started++
			running++
		}
		b.report(dctx, running)
		if running == 0 {
			break
		}
		sel := workflow.NewSelector(dctx)
		sel.AddReceive(ended, func(c workflow.ReceiveChannel, _ bool) {
			var o bulkOutcome
			c.Receive(dctx, &o)
			running--
			b.record(o)
		})
		if !cancelled {
			sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {
				cancelled = true
				b.st.Step = "draining"
			})
		}
		sel.Select(dctx)
		if !cancelled && running == 0 && started >= in.BatchSize && len(in.Pending) > 0 {
			return errBatchDone
		}
	}
	if cancelled {
		in.Summary.NotStarted = len(in.Pending)
		b.st.Step, b.st.Summary = "cancelled", in.Summary
		setJobStatus(dctx, JobCancelled, fmt.Sprintf("cancelled: %d migrated, %d failed, %d not started of %d",
			in.Summary.Succeeded, in.Summary.Failed, in.Summary.NotStarted, in.Summary.Total))
		return temporal.NewCanceledError(in.Summary)
	}
	return nil
}

// start starts one child; its outcome is sent on ended. A child whose migration an earlier run
// started (running, or succeeded: the id's reuse policy admits a new run only after a failure)
// is not redone: the bulk waits for that run and takes its result.
func (b *bulkRun) start(ctx workflow.Context, id string, ended workflow.Channel) {
	in := b.in
	child := MigrateInput{ImageID: id, SourceRegion: in.SourceRegion, TargetRegions: in.TargetRegions,
		Policy: in.Policy, Cleanup: in.Cleanup, Deadline: in.Deadline, LineageKeep: in.LineageKeep}
	wid := MigrateWorkflowID(b.tenant, child)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            wid,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary: fmt.Sprintf("migrate %s from %s to %s", id, in.SourceRegion,
			strings.Join(in.TargetRegions, ", ")),
		TypedSearchAttributes: childAttributes(ctx, id, in.SourceRegion, in.TargetRegions, nil),
	})
	f := workflow.ExecuteChildWorkflow(cctx, MigrateImageWorkflow, child)
	workflow.Go(ctx, func(g workflow.Context) {
		o := bulkOutcome{imageID: id}
		o.err = f.Get(g, &o.res)
		var already *temporal.ChildWorkflowExecutionAlreadyStartedError
		if errors.As(o.err, &already) {
			o.earlier = true
			o.res, o.err = awaitEarlier(g, wid)
		}
		ended.Send(g, o)
	})
}

// awaitEarlier waits for the run of wid an earlier bulk (or a person) started, and reads its result.
func awaitEarlier(ctx workflow.Context, wid string) (MigrateResult, error) {
	var raw json.RawMessage
	actx := withLongActivity(ctx, "await the earlier run "+wid, 48*time.Hour, quickHeartbeat(ctx))
	if err := workflow.ExecuteActivity(actx, a.AwaitRun, wid).Get(ctx, &raw); err != nil {
		return MigrateResult{}, err
	}
	var res MigrateResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the earlier run %s's result is not a migration's: %v", wid, err), "BadResult", nil)
	}
	return res, nil
}

// record counts one child's outcome.
func (b *bulkRun) record(o bulkOutcome) {
	s := &b.in.Summary
	if o.err != nil {
		s.Failed++
		if len(s.Failures) < 100 {
			s.Failures = append(s.Failures, BulkFailure{ImageID: o.imageID, Error: o.err.Error()})
		}
		return
	}
	s.Succeeded++
	if o.earlier {
		s.AlreadyDone++
	}
	s.made(o.imageID, o.res)
}

// report refreshes the status query's answer and the run's line in the UI.
func (b *bulkRun) report(ctx workflow.Context, running int) {
	in := b.in
	b.st.Running, b.st.Left, b.st.Summary = running, len(in.Pending), in.Summary
	b.st.Pace(workflow.Now(ctx))
	line := fmt.Sprintf("%d of %d done (%d failed), %d running, %d waiting", b.st.Ended(), in.Summary.Total,
		in.Summary.Failed, running, len(in.Pending))
	if b.st.PerHour > 0 {
		line += fmt.Sprintf("; %.0f images/h, ETA %s UTC", b.st.PerHour, b.st.ETA.Format("15:04:05"))
	}
	if b.st.Step == "draining" {
		line = "cancelled, letting the running migrations finish: " + line
	}
	workflow.SetCurrentDetails(ctx, line)
}
