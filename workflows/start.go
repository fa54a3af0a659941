package workflows

import (
	"fmt"
	"strings"
	"time"

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

// CheckScheduleID is the rule for a schedule's id: it names the schedule in the UI and in every
// run it starts.
func CheckScheduleID(id string) error {
	if id == "" || len(id) > 200 || strings.ContainsFunc(id, func(r rune) bool { return !scheduleIDRune(r) }) {
		return fmt.Errorf("schedule id %q: use 1 to 200 letters, digits, '.', '_' and '-'", id)
	}
	return nil
}

func scheduleIDRune(r rune) bool {
	return r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}

// MemoEventID is the memo key holding the id of the event that started a run, so a redelivered
// event is known for a duplicate even after its run ended.
const MemoEventID = "event_id"

// Describe is a job's static summary and details for the Temporal UI: what it does, from where
// to where, and who asked (the starter or an event), the same whichever door it came through.
func Describe(input any, who string) (summary, details string) {
	var lines []string
	add := func(k, v string) {
		if v != "" {
			lines = append(lines, k+": "+v)
		}
	}
	switch in := input.(type) {
	case MigrateInput:
		summary = fmt.Sprintf("migrate %s from %s to %s", in.ImageID, in.SourceRegion,
			strings.Join(in.TargetRegions, ", "))
		add("image", in.ImageID)
		add("from", in.SourceRegion)
		add("to", strings.Join(in.TargetRegions, ", "))
		add("target cloud", in.TargetCloud)
		add("name", in.TargetName)
		add("share with", strings.Join(in.ShareWith, ", "))
		if !in.Deadline.IsZero() {
			add("deadline", in.Deadline.UTC().Format(time.RFC3339))
		}
	case BulkInput:
		summary = fmt.Sprintf("bulk-migrate from %s to %s", in.SourceRegion, strings.Join(in.TargetRegions, ", "))
		add("from", in.SourceRegion)
		add("to", strings.Join(in.TargetRegions, ", "))
		add("name pattern", in.Filter.NamePattern)
	case ShareInput:
		summary = fmt.Sprintf("share %s in %s with %s", in.ImageID, in.Region, strings.Join(in.Members, ", "))
		add("image", in.ImageID)
		add("region", in.Region)
		add("members", strings.Join(in.Members, ", "))
	case DistributeInput:
		summary = fmt.Sprintf("distribute %s version %d to %s", in.Family, in.Version, strings.Join(in.Regions, ", "))
		add("image", in.ImageID+" in "+in.SourceRegion)
		add("accounts", strings.Join(in.Accounts, ", "))
		if in.Keep > 0 {
			add("keep", fmt.Sprintf("%d newest versions per region", in.Keep))
		}
	case PruneRequest:
		summary = fmt.Sprintf("keep the newest %d of %s%s in %s", in.Keep, in.Family, in.Lineage,
			strings.Join(in.Regions, ", "))
	case AcceptInput:
		summary = fmt.Sprintf("decide on %s in %s offered by %s", in.ImageID, in.Region, in.Producer)
		add("image", in.ImageID)
		add("region", in.Region)
		add("producer", in.Producer)
	default:
		summary = fmt.Sprintf("%T", input)
	}
	add("asked by", who)
	return summary, strings.Join(lines, "\n")
}
