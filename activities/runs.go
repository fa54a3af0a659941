package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// RunStarter starts workflow runs and reads their ends: the worker's Temporal client.
type RunStarter interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any,
		args ...any) (client.WorkflowRun, error)
	GetWorkflow(ctx context.Context, workflowID string, runID string) client.WorkflowRun
}

func (a *Activities) startRun(ctx context.Context, r RunStart) error {
	if a.cfg.Runs == nil {
		return errNoRuns
	}
	_, err := a.cfg.Runs.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: r.WorkflowID,
		TaskQueue: activity.GetInfo(ctx).TaskQueue, StaticSummary: r.Summary,
		// One run per id, ever: an attempt retried after its run ended must not start another.
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE}, r.WorkflowType, r.Input)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &already) {
		return fmt.Errorf("start %s run %s: %w", r.WorkflowType, r.WorkflowID, err)
	}
	return nil
}

var errNoRuns = errors.New("this worker cannot start or follow runs (no Temporal client given to its activities)")

// AwaitRun waits for the latest run of workflowID to end and returns its result as JSON. A job
// whose child was started by an earlier job (a bulk started again after a cancel, or to retry
// what failed) takes that run's outcome instead of redoing its work. The run's failure comes
// back as a non-retryable error naming it: waiting again would not change it.
func (a *Activities) AwaitRun(ctx context.Context, workflowID string) (json.RawMessage, error) {
	if a.cfg.Runs == nil {
		return nil, errNoRuns
	}
	b := startBeat(ctx, nil)
	defer b.stop()
	var res json.RawMessage
	err := a.cfg.Runs.GetWorkflow(ctx, workflowID, "").Get(ctx, &res)
	if err == nil || ctx.Err() != nil {
		return res, err
	}
	var ae *temporal.ApplicationError
	var ce *temporal.CanceledError
	var te *temporal.TerminatedError
	var to *temporal.TimeoutError
	if errors.As(err, &ae) || errors.As(err, &ce) || errors.As(err, &te) || errors.As(err, &to) {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the earlier run %s did not succeed: %v", workflowID, err), "EarlierRunFailed", nil)
	}
	return nil, fmt.Errorf("await run %s: %w", workflowID, err)
}
