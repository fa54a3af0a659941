package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// timeFlag is a time given as a duration from now (6h ahead for a deadline, 24h back for a
// "since") or as a time (RFC 3339). A deadline must be in the future.
type timeFlag struct {
	t        *time.Time
	deadline bool // ahead of now, and not past; else back from now
}

func deadlineFlag(t *time.Time) timeFlag { return timeFlag{t: t, deadline: true} }
func sinceFlag(t *time.Time) timeFlag    { return timeFlag{t: t} }

func (f timeFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f timeFlag) Set(v string) error {
	example := map[bool]string{true: "a duration from now (6h)", false: "a duration back from now (24h)"}[f.deadline]
	if d, err := time.ParseDuration(v); err == nil {
		if f.deadline && d <= 0 {
			return fmt.Errorf("a deadline must be in the future, got %s", v)
		}
		if !f.deadline {
			d = -d
		}
		*f.t = time.Now().Add(d).UTC().Truncate(time.Second)
		return f.checkAhead()
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("want %s or a time (2026-11-28T18:00:00Z), got %q", example, v)
	}
	if f.deadline && !t.After(time.Now()) {
		return fmt.Errorf("deadline %s has passed", v)
	}
	*f.t = t.UTC()
	return f.checkAhead()
}

// checkAhead refuses a deadline further ahead than any job may wait (a slip of unit or year).
func (f timeFlag) checkAhead() error {
	if !f.deadline {
		return nil
	}
	if err := workflows.CheckDeadline("deadline", *f.t, time.Now()); err != nil {
		return errors.New(plain(err))
	}
	return nil
}

// spanFlag is a duration that must be given as more than zero and at most a year and a day:
// "-1h" or "0s" are mistakes, not requests for the default (leave the flag out for that).
type spanFlag struct{ d *time.Duration }

// String is the flag's value as a person writes it (72h, 90m, 1h30m); nothing when it is unset, so
// -h prints no "(default 0s)" beside a default the usage text explains.
func (f spanFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return ""
	}
	s := f.d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (f spanFlag) Set(v string) error {
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return fmt.Errorf("want a duration such as 72h or 90m, got %q", v)
	case d <= 0 || d > workflows.MaxDuration:
		return fmt.Errorf("%s must be more than zero and at most 366 days", v)
	}
	*f.d = d
	return nil
}
