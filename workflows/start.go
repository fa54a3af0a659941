package workflows

import (
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// StartOptions are how every imageflow job starts, from the starter or from an event, so both
// doors follow one rule: a request that arrives while its job runs joins that run (the id comes
// from the request); sent again after the run ended, it runs again, and the cloud side is
// idempotent (a re-migration finds the image it made, a re-share offers again).
func StartOptions(id, taskQueue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                taskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}
}

// MemoEventID is the memo key holding the id of the event that started a run, so a redelivered
// event is known for a duplicate even after its run ended.
const MemoEventID = "event_id"
