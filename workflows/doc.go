// Package workflows holds imageflow's Temporal workflows (MigrateImage, ShareImage, AcceptShare,
// BulkMigrate), their inputs, ids and results, and the names of their signals, queries and
// search attributes. Everything here is deterministic workflow code; the cloud is reached only
// through the activities package.
package workflows
