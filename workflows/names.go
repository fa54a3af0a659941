// Package workflows holds imageflow's Temporal workflows (MigrateImage, ShareImage, AcceptShare,
// BulkMigrate), their inputs and results, and the names of their signals, queries and search
// attributes. Everything here is deterministic workflow code; the cloud is reached only through
// the activities package.
package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
)

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

// Typed search attributes the worker registers; the UI can filter runs by them.
var (
	SearchImageID       = temporal.NewSearchAttributeKeyKeyword("ImageflowImageId")
	SearchSourceRegion  = temporal.NewSearchAttributeKeyKeyword("ImageflowSourceRegion")
	SearchTargetRegions = temporal.NewSearchAttributeKeyKeywordList("ImageflowTargetRegions")
	SearchMember        = temporal.NewSearchAttributeKeyKeywordList("ImageflowMember")
	SearchJobStatus     = temporal.NewSearchAttributeKeyKeyword("ImageflowJobStatus")
)

// SearchAttributeKeys lists them all, for registration.
var SearchAttributeKeys = []temporal.SearchAttributeKey{SearchImageID, SearchSourceRegion, SearchTargetRegions, SearchMember, SearchJobStatus}

// Job statuses written to SearchJobStatus.
const (
	JobRunning   = "Running"
	JobWaiting   = "Waiting"
	JobSucceeded = "Succeeded"
	JobPartial   = "Partial"
	JobFailed    = "Failed"
)

// Regions imageflow knows; inputs naming others are rejected before any work.
var Regions = []string{"DFW", "ORD", "IAD", "LON", "SYD", "HKG"}

// ErrInvalidRequest is the error type of a request rejected before any work.
const ErrInvalidRequest = "InvalidRequest"

func invalid(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrInvalidRequest, nil)
}

func knownRegion(r string) bool {
	for _, k := range Regions {
		if k == r {
			return true
		}
	}
	return false
}

// key builds a readable, deterministic workflow id: "<kind>-<tenant>-<parts...>", with a hash
// suffix when the parts are long, so the same request always maps to the same run.
func key(kind, tenant string, parts ...string) string {
	id := kind + "-" + tenant + "-" + strings.Join(parts, "-")
	if len(id) <= 200 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:180] + "-" + hex.EncodeToString(sum[:8])
}

func sortedCopy(xs []string) []string {
	out := append([]string{}, xs...)
	sort.Strings(out)
	return out
}

// runKey names this run in the ids of the facts it publishes: a job run again announces again,
// while an activity's retry repeats an id the stream drops.
func runKey(ctx workflow.Context) string {
	ex := workflow.GetInfo(ctx).WorkflowExecution
	return ex.ID + "@" + ex.RunID
}

// a is a nil receiver used only to name activities in ExecuteActivity; the worker supplies the
// real one.
var a *activities.Activities

// activityOptions are the defaults: quick calls retry with backoff, client mistakes do not.
func withActivity(ctx workflow.Context, summary string, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    20,
		},
	})
}

// withLongActivity is for activities that heartbeat (task waits, copies): a dead worker is
// noticed within the heartbeat timeout and the work moves to another worker.
func withLongActivity(ctx workflow.Context, summary string, timeout, heartbeat time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    heartbeat,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
	})
}

// setJobStatus records the job status as a search attribute when the run was started with the
// attributes (which proves the server has them registered), and always as current details.
func setJobStatus(ctx workflow.Context, status, details string) {
	workflow.SetCurrentDetails(ctx, details)
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(SearchJobStatus); ok {
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchJobStatus.ValueSet(status))
	}
}

// publish sends a lifecycle fact through the PublishFact activity; a failure to publish is
// logged, never fatal to the job.
func publish(ctx workflow.Context, typ, id string, data map[string]any) {
	ctx = withActivity(ctx, "publish "+typ, 30*time.Second)
	if err := workflow.ExecuteActivity(ctx, a.PublishFact, activities.Fact{Type: typ, ID: id, Data: data}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("could not publish fact", "type", typ, "error", err)
	}
}

// failWith adds context to an activity failure while keeping its error type (NotExportable,
// NotFound, TaskFailed...) at the top, so callers and the UI see the reason first.
func failWith(err error, format string, args ...any) error {
	if err == nil || temporal.IsCanceledError(err) {
		return err
	}
	msg := fmt.Sprintf(format, args...)
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return temporal.NewNonRetryableApplicationError(msg+": "+ae.Message(), ae.Type(), err)
	}
	return temporal.NewNonRetryableApplicationError(msg+": "+err.Error(), "Failed", err)
}

// reason is the human part of an activity failure: the application error's own message.
func reason(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return err.Error()
}

// StartAttributes are the search attributes a run is started with; empty values are left out.
// A run started with them (JobStatus included) keeps JobStatus current as it goes.
func StartAttributes(imageID, sourceRegion string, targets, members []string) temporal.SearchAttributes {
	updates := []temporal.SearchAttributeUpdate{SearchJobStatus.ValueSet(JobRunning)}
	if imageID != "" {
		updates = append(updates, SearchImageID.ValueSet(imageID))
	}
	if sourceRegion != "" {
		updates = append(updates, SearchSourceRegion.ValueSet(strings.ToUpper(sourceRegion)))
	}
	if len(targets) > 0 {
		updates = append(updates, SearchTargetRegions.ValueSet(upper(targets)))
	}
	if len(members) > 0 {
		updates = append(updates, SearchMember.ValueSet(members))
	}
	return temporal.NewSearchAttributes(updates...)
}
