package activities

import (
	"context"
	"encoding/json"
)

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
