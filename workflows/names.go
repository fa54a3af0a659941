package workflows

import "strings"

// Names of the workflow types, as registered.
const (
	MigrateImageWorkflow = "MigrateImage"
	ShareImageWorkflow   = "ShareImage"
	AcceptShareWorkflow  = "AcceptShare"
	BulkMigrateWorkflow  = "BulkMigrate"
)

// StatusQuery returns a workflow's current step and progress.
const StatusQuery = "status"

// MemberStatusSignal carries a consumer's decision to ShareImage (MemberDecision).
const MemberStatusSignal = "member-status"

// Job statuses written to SearchJobStatus.
const (
	JobRunning   = "Running"
	JobWaiting   = "Waiting"
	JobSucceeded = "Succeeded"
	JobPartial   = "Partial"
	JobFailed    = "Failed"
	JobCancelled = "Cancelled"
)

// Regions imageflow knows; inputs naming others are rejected before any work.
var Regions = []string{"DFW", "ORD", "IAD", "LON", "SYD", "HKG"}

func knownRegion(r string) bool {
	for _, k := range Regions {
		if k == r {
			return true
		}
	}
	return false
}

func upper(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strings.ToUpper(x)
	}
	return out
}
