// Package workflows holds imageflow's Temporal workflows: MigrateImage, ShareImage,
// AcceptShare and BulkMigrate.
package workflows
