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
)

// RunStarter starts workflow runs: the worker's Temporal client.
type RunStarter interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any,
		args ...any) (client.WorkflowRun, error)
}

// RunStart is a run a job hands its leftovers to, to outlive it (a migration's cleanup). It runs
// on the job's task queue.
type RunStart struct {
	WorkflowID   string `json:"workflow_id"`
	WorkflowType string `json:"workflow_type"`
	// Summary is the run's one line in the UI.
	Summary string `json:"summary,omitempty"`
	// Input is the run's argument, as JSON.
	Input json.RawMessage `json:"input"`
	// FactKey, when set, names the started run's workflow id in the fact's data.
	FactKey string `json:"fact_key,omitempty"`
}

// ConcludeInput is a job's last word: the fact announcing its outcome, and, when Then is set,
// the run that goes on with what the job leaves.
type ConcludeInput struct {
	Fact Fact      `json:"fact"`
	Then *RunStart `json:"then,omitempty"`
}

// Conclude starts Then (a start that finds it started already counts: a retried attempt, or a
// replayed job) and then publishes the fact, naming the run. It returns the run's workflow id,
// "" when there is none. One activity instead of a child run and a publish: a job's history
// carries its work, not its bookkeeping (a migration's had 65 events where 59 did the work).
func (a *Activities) Conclude(ctx context.Context, in ConcludeInput) (string, error) {
	started := ""
	if in.Then != nil {
		if err := a.startRun(ctx, *in.Then); err != nil {
			return "", err
		}
		started = in.Then.WorkflowID
		if in.Then.FactKey != "" {
			if in.Fact.Data == nil {
				in.Fact.Data = map[string]any{}
			}
			in.Fact.Data[in.Then.FactKey] = started
		}
	}
	return started, a.PublishFact(ctx, in.Fact)
}

func (a *Activities) startRun(ctx context.Context, r RunStart) error {
	if a.cfg.Runs == nil {
		return errors.New("this worker cannot start runs (no Temporal client given to its activities)")
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
