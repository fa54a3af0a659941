package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
)

// CleanupMigrationWorkflow deletes what a migration left in Cloud Files, as its own run: a
// migration ends, with its result and its migration.completed, once its images are active, and
// a region whose storage is down at that moment holds only this run, not the job.
const CleanupMigrationWorkflow = "CleanupMigration"

// FactCleanupCompleted announces that a migration's intermediate objects are gone.
const FactCleanupCompleted = "cleanup.completed"

// CleanupRequest is what a migration leaves to clean up.
type CleanupRequest struct {
	// MigrationID is the migration the objects belong to.
	MigrationID string `json:"migration_id"`
	// Own is the objects in the worker's own account; Peer, those in a target cloud's.
	Own  *activities.CleanupInput `json:"own,omitempty"`
	Peer *activities.CleanupInput `json:"peer,omitempty"`
	// OutageTolerance and MaxRetryInterval are the migration's: how long a fault is waited out,
	// and the backoff's cap.
	OutageTolerance  Duration `json:"outage_tolerance,omitempty"`
	MaxRetryInterval Duration `json:"max_retry_interval,omitempty"`
	// HeartbeatTimeout is the migration's, for the deletion's heartbeats.
	HeartbeatTimeout Duration `json:"heartbeat_timeout,omitempty"`
}

// CleanupResult is what the cleanup deleted.
type CleanupResult struct {
	MigrationID    string `json:"migration_id"`
	ObjectsDeleted int    `json:"objects_deleted"`
}

// CleanupWorkflowID names the cleanup of one migration run (a migration run again later leaves
// its own objects, and its own cleanup).
func CleanupWorkflowID(migrationRunKey string) string {
	return key("cleanup", "", migrationRunKey)
}

// CleanupMigration deletes a migration's intermediate objects, waiting out faults as the
// migration would have (its job status says Waiting meanwhile), then announces cleanup.completed.
func CleanupMigration(ctx workflow.Context, in CleanupRequest) (CleanupResult, error) {
	ctx = withPatience(ctx, in.OutageTolerance.D(), in.MaxRetryInterval.D())
	res := CleanupResult{MigrationID: in.MigrationID}
	setJobStatus(ctx, JobRunning, "cleaning up after "+in.MigrationID)
	fin := activities.FinishMigrationInput{Cleanup: in.Own, TargetCleanup: in.Peer,
		Fact: activities.Fact{Type: FactCleanupCompleted, ID: runKey(ctx) + ":" + FactCleanupCompleted,
			Data: map[string]any{"migration_id": in.MigrationID, "cleanup_workflow_id": workflow.GetInfo(ctx).
				WorkflowExecution.ID}}}
	hb := in.HeartbeatTimeout.D()
	if hb <= 0 {
		hb = 2 * time.Minute
	}
	fctx := withLongActivity(ctx, "delete the intermediate objects of "+in.MigrationID, 30*time.Minute, hb)
	if err := workflow.ExecuteActivity(fctx, a.FinishMigration, fin).Get(ctx, &res.ObjectsDeleted); err != nil {
		setJobStatus(ctx, JobFailed, fmt.Sprintf("cleanup of %s failed: %s", in.MigrationID, reason(err)))
		return res, err
	}
	setJobStatus(ctx, JobSucceeded, fmt.Sprintf("deleted %d objects of %s", res.ObjectsDeleted, in.MigrationID))
	return res, nil
}
