package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/imageflow/imageflow/workflows"
)

// stepOf reads a status query's answer: a bulk's as its own type, paced as of now (the rate and
// ETA move while no child ends), any other run's as it came.
func stepOf(workflowType string, v converter.EncodedValue) any {
	if workflowType == workflows.BulkMigrateWorkflow {
		var b workflows.BulkStatus
		if v.Get(&b) == nil {
			b.Pace(time.Now())
			return b
		}
		return nil
	}
	var step any
	if v.Get(&step) != nil {
		return nil
	}
	return step
}

// bulkText is a bulk's progress in one line: counts by state, the rate and the ETA.
func bulkText(b workflows.BulkStatus) string {
	s := b.Summary
	parts := []string{fmt.Sprintf("%s: %d of %d ended", b.Step, b.Ended(), s.Total)}
	done := fmt.Sprintf("%d succeeded", s.Succeeded)
	if s.AlreadyDone > 0 {
		done += fmt.Sprintf(" (%d done by an earlier run)", s.AlreadyDone)
	}
	parts = append(parts, done, fmt.Sprintf("%d failed", s.Failed), fmt.Sprintf("%d running", b.Running),
		fmt.Sprintf("%d not started", b.Left))
	line := strings.Join(parts, ", ")
	if b.PerHour > 0 {
		line += fmt.Sprintf("; %.0f images/h", b.PerHour)
		if b.Left+b.Running > 0 {
			in := time.Until(b.ETA)
			if in > 10*time.Minute { // a bulk's hours are not known to the second
				in = in.Round(time.Minute)
			}
			line += fmt.Sprintf(", ETA %s UTC (in %s)", b.ETA.Format("15:04:05"), left(in))
		}
	}
	if s.Runs > 1 {
		line += fmt.Sprintf("; run %d (continued as new every batch)", s.Runs)
	}
	return line
}

// failureRows are a bulk's failed images with their reasons (the first 100 the bulk keeps).
func failureRows(fs []workflows.BulkFailure) [][]string {
	var rows [][]string
	for _, f := range fs {
		rows = append(rows, []string{"failed " + orDash(f.ImageID), f.Error})
	}
	return rows
}

// madeImage is one source image's copy in a region.
type madeImage struct {
	SourceImageID string `json:"source_image_id"`
	ImageID       string `json:"image_id"`
}

// bulkImages lists, for an ended bulk, every copy its request's images have in each target, by
// region: the summary keeps only the first workflows.MaxBulkMade, so the copies are looked up
// where they are, by the migration stamp on them (as a re-run would find them). ok is false for
// any other run, or when the starter cannot read the cloud (it says why on stderr).
func (a *app) bulkImages(ctx context.Context, id string) (map[string][]madeImage, bool) {
	tc, err := a.temporal(ctx)
	if err != nil {
		return nil, false
	}
	it := tc.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return nil, false
	}
	first, err := it.Next()
	started := first.GetWorkflowExecutionStartedEventAttributes()
	if err != nil || started.GetWorkflowType().GetName() != workflows.BulkMigrateWorkflow {
		return nil, false
	}
	var in workflows.BulkInput
	if err := converter.GetDefaultDataConverter().FromPayloads(started.GetInput(), &in); err != nil {
		return nil, false
	}
	cc, err := a.cloud(ctx)
	var p bulkPlan
	if err == nil {
		p, err = a.plan(ctx, cc.Tenant(), in.BulkRequest)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "the copies were not listed by region: %s\n", plain(err))
		return nil, false
	}
	made := map[string][]madeImage{}
	for _, r := range in.TargetRegions {
		made[r] = []madeImage{}
	}
	for _, img := range p.Images {
		for r, imageID := range img.Done {
			made[r] = append(made[r], madeImage{SourceImageID: img.ID, ImageID: imageID})
		}
	}
	for _, r := range in.TargetRegions {
		fmt.Fprintf(a.stderr, "%s: %d of %d images have their copy (every id: \"images\" in the JSON)\n", r,
			len(made[r]), len(p.Images))
	}
	return made, true
}
