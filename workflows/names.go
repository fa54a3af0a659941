package workflows

import (
	"regexp"
	"slices"
	"strings"
)

// Names of the workflow types, as registered.
const (
	MigrateImageWorkflow = "MigrateImage"
	ShareImageWorkflow   = "ShareImage"
	AcceptShareWorkflow  = "AcceptShare"
	BulkMigrateWorkflow  = "BulkMigrate"
	// DistributeImageWorkflow sends a family version to regions and accounts (DistributeImage).
	DistributeImageWorkflow = "DistributeImage"
	// PruneImagesWorkflow applies retention on its own (PruneImages).
	PruneImagesWorkflow = "PruneImages"
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

// Regions are Rackspace's region names, which requests may give in any case. Other clouds'
// regions (RegionOne) are taken as spelled; whether the account's catalog lists a region is
// checked against the catalog (by the starter, the bridge's validator, and the first call).
var Regions = []string{"DFW", "ORD", "IAD", "LON", "SYD", "HKG"}

var regionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CanonicalRegion is r as catalogs spell it: Rackspace's names upper-cased, others as given.
func CanonicalRegion(r string) string {
	if slices.Contains(Regions, strings.ToUpper(r)) {
		return strings.ToUpper(r)
	}
	return r
}

// canonicalRegion is r as catalogs spell it: Rackspace's names upper-cased, others as given.
// It fails for what cannot be a region name.
func canonicalRegion(what, r string) (string, error) {
	r = CanonicalRegion(r)
	if !regionName.MatchString(r) {
		return r, invalid("%s %q is not a region name (letters, digits, '.', '_' and '-'; e.g. DFW or RegionOne)",
			what, r)
	}
	return r, nil
}

// RegionsOf lists the regions a request names in the worker's own cloud, for a check against
// its catalog (a migration into a peer cloud names only its source there).
func RegionsOf(input any) []string {
	switch in := input.(type) {
	case MigrateInput:
		if in.TargetCloud != "" {
			return []string{in.SourceRegion}
		}
		return append([]string{in.SourceRegion}, in.TargetRegions...)
	case BulkInput:
		return append([]string{in.SourceRegion}, in.TargetRegions...)
	case BulkRequest:
		return append([]string{in.SourceRegion}, in.TargetRegions...)
	case ShareInput:
		return []string{in.Region}
	case AcceptInput:
		return []string{in.Region}
	case DistributeInput:
		return append([]string{in.SourceRegion}, in.Regions...)
	case PruneRequest:
		return in.Regions
	}
	return nil
}

func upper(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strings.ToUpper(x)
	}
	return out
}
