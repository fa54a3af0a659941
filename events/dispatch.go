package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/imageflow/imageflow/workflows"
)

// start starts the workflow a command asks for, unless its job is already known (see known).
//
// The first try refuses any earlier run of the id, running or ended, so the common case (a job
// never seen) costs one call to Temporal. Only when a run exists does the bridge look at it:
// joining a running job, recognising this very event's ended run, or starting again for a new
// request.
func (b *Bridge) start(ctx context.Context, s start, eventID string) outcome {
	o, done := b.try(ctx, s, eventID, enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
	if done {
		return o
	}
	if o, known := b.known(ctx, s.id, eventID); known {
		return o
	}
	o, _ = b.try(ctx, s, eventID, enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE)
	return o
}

// try starts the run under a reuse policy; done is false when a run of the id exists and the
// policy refused it (an ended one under reject-duplicate: the caller looks closer). Under
// allow-duplicate only a running one can refuse: another event's start an instant earlier,
// which this event joins.
func (b *Bridge) try(
	ctx context.Context, s start, eventID string, reuse enums.WorkflowIdReusePolicy,
) (o outcome, done bool) {
	opts := workflows.StartOptions(s.id, b.cfg.TaskQueue)
	opts.StaticSummary, opts.StaticDetails = workflows.Describe(s.input, "event "+eventID)
	opts.Memo = map[string]any{workflows.MemoEventID: eventID}
	opts.WorkflowIDReusePolicy = reuse
	opts.WorkflowIDConflictPolicy = enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL
	opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	if b.cfg.SearchAttributes {
		opts.TypedSearchAttributes = workflows.StartAttributes(
			s.attrs.imageID,
			s.attrs.region,
			s.attrs.targets,
			s.attrs.members,
		)
	}
	_, err := b.t.ExecuteWorkflow(ctx, opts, s.workflow, s.input)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		b.Stats.Started.Add(1)
		b.log.Info("workflow started by event", "workflow", s.workflow, "workflow_id", s.id, "event_id", eventID)
		return outcome{}, true
	case errors.As(err, &already) && reuse == enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE:
		return outcome{}, false
	case errors.As(err, &already):
		b.Stats.Duplicates.Add(1)
		b.log.Info("event joins the running job", "workflow_id", s.id, "event_id", eventID)
		return outcome{}, true
	case transient(err):
		return outcome{retry: true, reason: "Temporal unreachable: " + err.Error()}, true
	}
	return outcome{dead: "Temporal refused the start: " + err.Error()}, true
}

// known reports an event whose job needs no start: its run is going (the request joins it), or
// this very event started a run that has ended (a redelivery). A request sent again as a new
// event after its run ended is not known: it runs again.
func (b *Bridge) known(ctx context.Context, id, eventID string) (outcome, bool) {
	d, err := b.t.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return outcome{}, false
	case err != nil && transient(err):
		return outcome{retry: true, reason: "Temporal unreachable: " + err.Error()}, true
	case err != nil:
		return outcome{dead: "Temporal refused to describe " + id + ": " + err.Error()}, true
	}
	info := d.GetWorkflowExecutionInfo()
	switch {
	case info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		b.Stats.Duplicates.Add(1)
		b.log.Info("event joins the running job", "workflow_id", id, "event_id", eventID)
		return outcome{}, true
	case startedBy(info) == eventID || b.ranBefore(ctx, id, eventID):
		b.Stats.Duplicates.Add(1)
		b.log.Info("event already ran", "workflow_id", id, "event_id", eventID)
		return outcome{}, true
	}
	return outcome{}, false
}

// startedBy is the id of the event that started a run ("" when the starter did).
func startedBy(info *workflowpb.WorkflowExecutionInfo) string {
	var id string
	if p := info.GetMemo().GetFields()[workflows.MemoEventID]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &id)
	}
	return id
}

// ranBefore looks through the earlier runs of a job for one this event started. A listing
// that fails counts as no: the cloud side of every job is idempotent.
func (b *Bridge) ranBefore(ctx context.Context, id, eventID string) bool {
	resp, err := b.t.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = %q", id), PageSize: 100})
	if err != nil {
		b.log.Warn("could not list earlier runs", "workflow_id", id, "error", err)
		return false
	}
	for _, ex := range resp.GetExecutions() {
		if startedBy(ex) == eventID {
			return true
		}
	}
	return false
}

// signal delivers a consumer's decision to the producer's share run.
func (b *Bridge) signal(ctx context.Context, s start) outcome {
	if d, ok := s.input.(workflows.MemberDecision); ok {
		// Every signal is a history event: one for a member that is not waited on (settled, or
		// never offered) would only grow the run's history, and so would a flood for one that is.
		if !b.awaited(ctx, s.signalTo, d.Member) {
			b.Stats.Skipped.Add(1)
			return outcome{reason: "no pending decision for member " + d.Member}
		}
		if !b.signals.allow(s.signalTo + "/" + d.Member) {
			b.Stats.Skipped.Add(1)
			return outcome{reason: "a decision for member " + d.Member + " was signalled moments ago"}
		}
	}
	err := b.t.SignalWorkflow(ctx, s.signalTo, "", s.signalName, s.input)
	var nf *serviceerror.NotFound
	switch {
	case err == nil:
		b.Stats.Signalled.Add(1)
		return outcome{}
	case errors.As(err, &nf):
		// The share already ended (its poll saw the decision) or never ran here: nothing to do.
		b.Stats.Skipped.Add(1)
		b.log.Info("no running share for the decision", "workflow_id", s.signalTo)
		return outcome{}
	case transient(err):
		return outcome{retry: true, reason: "Temporal unreachable: " + err.Error()}
	}
	return outcome{dead: "Temporal refused the signal: " + err.Error()}
}

// awaited reports whether the share run still waits for member's decision. When the run cannot
// be asked, the signal goes anyway: the workflow checks every decision against the cloud.
func (b *Bridge) awaited(ctx context.Context, id, member string) bool {
	v, err := b.t.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		return true
	}
	var st workflows.ShareStatus
	if v.Get(&st) != nil {
		return true
	}
	return st.Step != "done" && st.Members[member] == "pending"
}

// signalSpacing is the least time between two decision signals for one member of one share: a
// real consumer decides once; the workflow re-reads the cloud on each signal anyway.
const signalSpacing = 10 * time.Second

// spacer lets one event per key through per signalSpacing.
type spacer struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (sp *spacer) allow(key string) bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	now := time.Now()
	if sp.last == nil || len(sp.last) > 10000 {
		sp.last = map[string]time.Time{} // forgetting early only lets a signal through
	}
	if t, ok := sp.last[key]; ok && now.Sub(t) < signalSpacing {
		return false
	}
	sp.last[key] = now
	return true
}
