package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Typed search attributes the worker registers; the UI can filter runs by them.
var (
	SearchImageID       = temporal.NewSearchAttributeKeyKeyword("ImageflowImageId")
	SearchSourceRegion  = temporal.NewSearchAttributeKeyKeyword("ImageflowSourceRegion")
	SearchTargetRegions = temporal.NewSearchAttributeKeyKeywordList("ImageflowTargetRegions")
	SearchMember        = temporal.NewSearchAttributeKeyKeywordList("ImageflowMember")
	SearchJobStatus     = temporal.NewSearchAttributeKeyKeyword("ImageflowJobStatus")
	// SearchEta is when a migration is expected to end, re-estimated at each step, so a list of
	// runs can be sorted or filtered by it ("ImageflowEta < '2026-11-28T18:00:00Z'").
	SearchEta = temporal.NewSearchAttributeKeyTime("ImageflowEta")
)

// SearchAttributeKeys lists them all, for registration.
var SearchAttributeKeys = []temporal.SearchAttributeKey{
	SearchImageID,
	SearchSourceRegion,
	SearchTargetRegions,
	SearchMember,
	SearchJobStatus,
	SearchEta,
}

// StartAttributes are the search attributes a run is started with; empty values are left out.
// A run started with them (JobStatus included) keeps JobStatus current as it goes.
func StartAttributes(imageID, sourceRegion string, targets, members []string) temporal.SearchAttributes {
	updates := []temporal.SearchAttributeUpdate{SearchJobStatus.ValueSet(JobRunning)}
	if imageID != "" {
		updates = append(updates, SearchImageID.ValueSet(imageID))
	}
	if sourceRegion != "" {
		updates = append(updates, SearchSourceRegion.ValueSet(CanonicalRegion(sourceRegion)))
	}
	if len(targets) > 0 {
		updates = append(updates, SearchTargetRegions.ValueSet(canonicalAll(targets)))
	}
	if len(members) > 0 {
		updates = append(updates, SearchMember.ValueSet(members))
	}
	return temporal.NewSearchAttributes(updates...)
}

// childAttributes are a child run's search attributes, given only when this run has them (which
// proves the server has them registered), so the UI can filter children as it does direct runs.
func childAttributes(
	ctx workflow.Context,
	imageID, region string,
	targets, members []string,
) temporal.SearchAttributes {
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(SearchJobStatus); !ok {
		return temporal.SearchAttributes{}
	}
	return StartAttributes(imageID, region, targets, members)
}

// setEta records the expected end as a search attribute, when the run carries attributes.
func setEta(ctx workflow.Context, eta time.Time) {
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(SearchJobStatus); ok {
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchEta.ValueSet(eta))
	}
}

// setJobStatus records the job status as a search attribute when the run was started with the
// attributes (which proves the server has them registered), and always as current details.
func setJobStatus(ctx workflow.Context, status, details string) {
	workflow.SetCurrentDetails(ctx, details)
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(SearchJobStatus); ok {
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchJobStatus.ValueSet(status))
	}
}

func canonicalAll(regions []string) []string {
	out := make([]string, len(regions))
	for i, r := range regions {
		out[i] = CanonicalRegion(r)
	}
	return out
}
