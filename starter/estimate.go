package main

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/workflows"
)

// recentRuns is how many finished migrations the estimate learns from.
const recentRuns = 20

// rates are the throughputs estimates use: measured over the account's recent migrations when
// there are any, else the configured ones (the worker's IMAGEFLOW_WORKER_ESTIMATE_* values).
func (a *app) rates(ctx context.Context) activities.Rates {
	r := activities.Rates{CopyBytesPerSecond: a.cfg.Worker.EstimateCopyRate,
		TaskBytesPerSecond: a.cfg.Worker.EstimateTaskRate, Basis: "configured"}
	if r.CopyBytesPerSecond <= 0 {
		r.CopyBytesPerSecond = activities.DefaultCopyRate
	}
	if r.TaskBytesPerSecond <= 0 {
		r.TaskBytesPerSecond = activities.DefaultTaskRate
	}
	if m, ok := a.measuredRates(ctx); ok {
		return m
	}
	return r
}

// measuredRates reads the results of the last completed migrations: bytes over copy seconds,
// and bytes over export and import seconds. Reused targets moved nothing and are left out.
func (a *app) measuredRates(ctx context.Context) (activities.Rates, bool) {
	tc, err := a.temporal(ctx)
	if err != nil {
		return activities.Rates{}, false
	}
	q := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Completed' AND CloseTime > '%s'",
		workflows.MigrateImageWorkflow, time.Now().Add(-30*24*time.Hour).UTC().Format(time.RFC3339))
	resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: a.cfg.Temporal.Namespace, Query: q, PageSize: recentRuns})
	if err != nil {
		return activities.Rates{}, false
	}
	var copyBytes, copySecs, taskBytes, taskSecs float64
	runs := 0
	for _, e := range resp.GetExecutions() {
		var res workflows.MigrateResult
		if tc.GetWorkflow(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()).Get(ctx, &res) != nil {
			continue
		}
		moved := false
		for _, t := range res.Targets {
			if t.Reused || t.Bytes == 0 || t.CopySeconds <= 0 {
				continue
			}
			copyBytes, copySecs = copyBytes+float64(t.Bytes), copySecs+t.CopySeconds
			taskBytes, taskSecs = taskBytes+float64(t.Bytes), taskSecs+t.ImportSeconds
			if !moved && res.ExportSeconds > 0 {
				taskBytes, taskSecs = taskBytes+float64(t.Bytes), taskSecs+res.ExportSeconds
			}
			moved = true
		}
		if moved {
			runs++
		}
	}
	if runs == 0 || copySecs < 1 || taskSecs < 1 {
		return activities.Rates{}, false
	}
	return activities.Rates{CopyBytesPerSecond: copyBytes / copySecs, TaskBytesPerSecond: taskBytes / taskSecs,
		Basis: fmt.Sprintf("measured over the last %d migration(s)", runs)}, true
}

// deadlineFlag is a --deadline: a duration from now (6h) or a time (RFC 3339).
type deadlineFlag struct{ t *time.Time }

func (d deadlineFlag) String() string {
	if d.t == nil || d.t.IsZero() {
		return ""
	}
	return d.t.Format(time.RFC3339)
}

func (d deadlineFlag) Set(v string) error {
	if dur, err := time.ParseDuration(v); err == nil {
		if dur <= 0 {
			return fmt.Errorf("a deadline must be in the future, got %s", v)
		}
		*d.t = time.Now().Add(dur).UTC().Truncate(time.Second)
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("want a duration from now (6h) or a time (2026-11-28T18:00:00Z), got %q", v)
	}
	if !t.After(time.Now()) {
		return fmt.Errorf("deadline %s has passed", v)
	}
	*d.t = t.UTC()
	return nil
}
