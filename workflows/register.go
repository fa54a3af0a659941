package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register adds every imageflow workflow to a worker under its stable name.
func Register(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(MigrateImage, workflow.RegisterOptions{Name: MigrateImageWorkflow})
	r.RegisterWorkflowWithOptions(ShareImage, workflow.RegisterOptions{Name: ShareImageWorkflow})
	r.RegisterWorkflowWithOptions(AcceptShare, workflow.RegisterOptions{Name: AcceptShareWorkflow})
	r.RegisterWorkflowWithOptions(BulkMigrate, workflow.RegisterOptions{Name: BulkMigrateWorkflow})
	r.RegisterWorkflowWithOptions(DistributeImage, workflow.RegisterOptions{Name: DistributeImageWorkflow})
	r.RegisterWorkflowWithOptions(PruneImages, workflow.RegisterOptions{Name: PruneImagesWorkflow})
	r.RegisterWorkflowWithOptions(CleanupMigration, workflow.RegisterOptions{Name: CleanupMigrationWorkflow})
}
