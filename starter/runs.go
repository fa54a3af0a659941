package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/imageflow/imageflow/internal/searchattr"
	"github.com/imageflow/imageflow/workflows"
)

// kinds maps the names people use to the workflow types: each job command's own name (and
// "bulk", the older name of bulk-migrate).
var kinds = map[string]string{"migrate": workflows.MigrateImageWorkflow, "share": workflows.ShareImageWorkflow,
	"accept": workflows.AcceptShareWorkflow, "bulk": workflows.BulkMigrateWorkflow,
	"bulk-migrate": workflows.BulkMigrateWorkflow, "distribute": workflows.DistributeImageWorkflow,
	"prune": workflows.PruneImagesWorkflow, "cleanup": workflows.CleanupMigrationWorkflow}

// statuses maps the names people use to Temporal's execution statuses (as its queries spell them).
var statuses = map[string]string{"running": "Running", "completed": "Completed", "failed": "Failed",
	"cancelled": "Canceled", "terminated": "Terminated", "timed-out": "TimedOut", "continued": "ContinuedAsNew"}

// runFilter is what runs can select by.
type runFilter struct {
	kind, status, image, region string
	since                       time.Time
	limit                       int
}

// query is the visibility query for the filter. Image and region go into it only when the
// namespace has imageflow's search attributes; otherwise (a plain Temporal server) the caller
// matches them against workflow ids, which carry both.
func (f runFilter) query(withAttrs bool) string {
	var parts []string
	if f.kind != "" {
		parts = append(parts, fmt.Sprintf("WorkflowType = '%s'", kinds[f.kind]))
	}
	if f.status != "" {
		parts = append(parts, fmt.Sprintf("ExecutionStatus = '%s'", statuses[f.status]))
	}
	if !f.since.IsZero() {
		parts = append(parts, fmt.Sprintf("StartTime > '%s'", f.since.UTC().Format(time.RFC3339)))
	}
	if withAttrs && f.image != "" {
		parts = append(parts, fmt.Sprintf("%s = '%s'", workflows.SearchImageID.GetName(), f.image))
	}
	if withAttrs && f.region != "" {
		parts = append(parts, fmt.Sprintf("(%s = '%s' OR %s = '%s')", workflows.SearchSourceRegion.GetName(), f.region,
			workflows.SearchTargetRegions.GetName(), f.region))
	}
	return strings.Join(parts, " AND ")
}

// matchID is the fallback for a server without the attributes: ids name the image and regions.
func (f runFilter) matchID(id string) bool {
	if f.image != "" && !strings.Contains(id, "-"+f.image+"-") && !strings.HasSuffix(id, "-"+f.image) {
		return false
	}
	if f.region == "" {
		return true
	}
	tokens := strings.FieldsFunc(id, func(r rune) bool { return r == '-' || r == '+' })
	return slices.Contains(tokens, f.region)
}

// runRow is one run in the listing.
type runRow struct {
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Type       string    `json:"type"`
	Status     string    `json:"status"`
	JobStatus  string    `json:"job_status,omitempty"` // imageflow's own: Succeeded, Partial, Waiting...
	Started    time.Time `json:"started"`
	Closed     time.Time `json:"closed,omitzero"`
	ETA        time.Time `json:"eta,omitzero"`
	// Schedule is the schedule that started the run, if one did.
	Schedule string `json:"schedule,omitempty"`
}

func (a *app) runs(ctx context.Context, args []string) error {
	fs := a.flags("runs",
		"[--kind migrate|share|accept|bulk|distribute|prune] [--status S] [--image ID] [--region R] [--since 24h]")
	var o out
	var f runFilter
	o.flag(fs)
	fs.StringVar(&f.kind, "kind", "", "migrate, share, accept, bulk-migrate, distribute, prune or cleanup")
	fs.StringVar(&f.status, "status", "", "running, completed, failed, cancelled, terminated, timed-out or continued")
	fs.StringVar(&f.image, "image", "", "runs that touched this image")
	fs.StringVar(&f.region, "region", "", "runs from or to this region")
	fs.Var(sinceFlag(&f.since), "since", "runs started since: a duration back from now (24h) or a time")
	fs.IntVar(&f.limit, "limit", 50, "most runs to list, newest first")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, ok := kinds[f.kind]; f.kind != "" && !ok {
		return usageErr("--kind must be migrate, share, accept, bulk-migrate, distribute, prune or cleanup, not %q",
			f.kind)
	}
	if _, ok := statuses[f.status]; f.status != "" && !ok {
		return usageErr("--status %q is not one of running, completed, failed, cancelled, terminated, timed-out, "+
			"continued", f.status)
	}
	if f.limit < 1 || f.limit > 1000 {
		return usageErr("--limit must be 1 to 1000")
	}
	if strings.ContainsAny(f.image+f.region, `'"\`) {
		return usageErr("--image and --region cannot hold quotes or backslashes")
	}
	f.region = workflows.CanonicalRegion(f.region)
	rows, err := a.listRuns(ctx, f)
	if err != nil {
		return err
	}
	return a.print(o, rows, func() [][]string {
		out := [][]string{{"WORKFLOW ID", "TYPE", "STATUS", "JOB", "STARTED", "ENDED/ETA", "SCHEDULE"}}
		for _, r := range rows {
			end := when(r.Closed)
			if r.Closed.IsZero() && !r.ETA.IsZero() {
				end = "eta " + when(r.ETA) + etaNote(r.ETA, r.JobStatus == workflows.JobWaiting)
			}
			out = append(out, []string{r.WorkflowID, r.Type, r.Status, orDash(r.JobStatus), when(r.Started), end,
				orDash(r.Schedule)})
		}
		return out
	})
}

// listRuns pages through the matching runs, newest first, up to the limit.
func (a *app) listRuns(ctx context.Context, f runFilter) ([]runRow, error) {
	tc, err := a.temporal(ctx)
	if err != nil {
		return nil, err
	}
	withAttrs := searchattr.Present(ctx, tc, a.cfg.Temporal.Namespace)
	rows := []runRow{}
	var token []byte
	for len(rows) < f.limit {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: a.cfg.Temporal.Namespace, Query: f.query(withAttrs), PageSize: int32(f.limit),
			NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			if len(rows) < f.limit && (withAttrs || f.matchID(e.GetExecution().GetWorkflowId())) {
				rows = append(rows, a.runRow(e))
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	return rows, nil
}

func (a *app) runRow(e *workflowpb.WorkflowExecutionInfo) runRow {
	r := runRow{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
		Type: e.GetType().GetName(), Status: statusName(e.GetStatus()), Started: e.GetStartTime().AsTime(),
		JobStatus: attr[string](e.GetSearchAttributes(), workflows.SearchJobStatus.GetName()),
		ETA:       attr[time.Time](e.GetSearchAttributes(), workflows.SearchEta.GetName()),
		// Temporal marks the runs a schedule starts.
		Schedule: attr[string](e.GetSearchAttributes(), "TemporalScheduledById")}
	if e.GetCloseTime() != nil {
		r.Closed = e.GetCloseTime().AsTime()
	}
	return r
}

// attr decodes one search attribute of a listed run; zero when absent.
func attr[T any](sa *common.SearchAttributes, name string) T {
	var v T
	if p := sa.GetIndexedFields()[name]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
	}
	return v
}

// cancel asks a run to stop. A migration stops its copies, cleans up per its cleanup policy
// and ends as cancelled; --wait follows it until it has.
func (a *app) cancel(ctx context.Context, args []string) error {
	fs := a.flags("cancel", "[--workflow-id] ID|UI-URL [--wait]")
	var id string
	var wait bool
	fs.BoolVar(&wait, "wait", false, "wait until the run has stopped and cleaned up, then print its status")
	st, err := a.runCommand(ctx, fs, args, &id)
	if err != nil {
		return err
	}
	if st.Status != "Running" {
		return fmt.Errorf("run %s already ended (%s); nothing to cancel", id, st.Status)
	}
	if err := a.tc.CancelWorkflow(ctx, id, ""); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("run %s ended before the cancel reached it", id)
		}
		return fmt.Errorf("cancel %s: %w", id, err)
	}
	fmt.Fprintf(a.stderr, "asked run %s to cancel\n", id)
	if !wait {
		return nil
	}
	if st.NoWorker != "" {
		// The cancel is recorded, but only a worker can act on it: waiting would never end.
		return fmt.Errorf("run %s will cancel when a worker takes it up; %s", id, st.NoWorker)
	}
	for st.Status == "Running" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.pollEvery):
		}
		if st, err = a.describe(ctx, id); err != nil {
			return err
		}
	}
	if err := a.awaitCleanup(ctx, workflows.CleanupWorkflowID(id+"@"+st.RunID)); err != nil {
		return err
	}
	return a.printJSON(st)
}

// awaitCleanup waits for a migration's cleanup run, which goes on after the migration ends, when
// there is one: cancel --wait promises the objects are gone.
func (a *app) awaitCleanup(ctx context.Context, id string) error {
	if _, err := a.tc.DescribeWorkflowExecution(ctx, id, ""); err != nil {
		return nil // nothing to clean up (no objects yet, or the policy keeps them)
	}
	fmt.Fprintf(a.stderr, "waiting for its cleanup, run %s\n", id)
	if err := a.tc.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
		return fmt.Errorf("cleanup run %s: %s", id, plain(err))
	}
	return nil
}
