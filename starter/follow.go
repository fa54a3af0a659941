package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/workflows"
)

// runStatus is what status prints and follow watches.
type runStatus struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Type       string `json:"type"`
	Status     string `json:"status"` // Running, Completed, Failed, ...
	TaskQueue  string `json:"task_queue"`
	// NoWorker, for a running run, says that no worker polls its task queue.
	NoWorker string                `json:"no_worker,omitempty"`
	Step     any                   `json:"step,omitempty"`
	Copies   map[string]copyStatus `json:"copies,omitempty"` // by target region (activity id if unknown)
	// Closed is when a finished run ended; Result and Error say how (status prints them).
	Closed string `json:"closed,omitempty"`
	Result any    `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	// Waiting lists the steps that are waiting out a fault: failed, and to be tried again.
	Waiting []waitStatus `json:"waiting,omitempty"`
}

// waitStatus is a step waiting out a fault (an activity between retries, or retrying).
type waitStatus struct {
	Step      string `json:"step"`
	Attempt   int32  `json:"attempt"`
	LastError string `json:"last_error"`
	LastTry   string `json:"last_try,omitempty"`
	NextTry   string `json:"next_try,omitempty"`
}

// waitOf reads a pending activity's retry state; ok is false for one not waiting out a fault.
func waitOf(pa *workflowpb.PendingActivityInfo) (waitStatus, bool) {
	if pa.GetAttempt() < 2 || pa.GetLastFailure() == nil {
		return waitStatus{}, false
	}
	w := waitStatus{Step: pa.GetActivityType().GetName(), Attempt: pa.GetAttempt(),
		LastError: truncateText(pa.GetLastFailure().GetMessage(), 300)}
	if t := pa.GetLastAttemptCompleteTime(); t != nil {
		w.LastTry = t.AsTime().UTC().Format(time.RFC3339)
	}
	if t := pa.GetNextAttemptScheduleTime(); t != nil {
		w.NextTry = t.AsTime().UTC().Format(time.RFC3339)
	}
	return w, true
}

func (w waitStatus) text() string {
	s := fmt.Sprintf("%s, attempt %d: %s", w.Step, w.Attempt, w.LastError)
	if t, err := time.Parse(time.RFC3339, w.NextTry); err == nil {
		s += "; next try " + t.Format("15:04:05") + " UTC"
	}
	return s
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

type copyStatus struct {
	Region     string `json:"region,omitempty"`
	BytesDone  int64  `json:"bytes_done"` // whole segments and the sent part of those in flight
	BytesTotal int64  `json:"bytes_total"`
	Segments   int    `json:"segments_done"`
	Of         int    `json:"segments_total"`
	// Reused were copied inside the target from a lineage's kept generation, not sent.
	Reused int64 `json:"bytes_reused,omitempty"`
	// Rate is this attempt's upload rate; Left is the time to go at that rate.
	Rate float64 `json:"bytes_per_second,omitempty"`
	Left string  `json:"time_left,omitempty"`
	// ETA is when the copy ends at that rate (RFC 3339).
	ETA string `json:"eta,omitempty"`
}

func (a *app) describe(ctx context.Context, id string) (runStatus, error) {
	tc, err := a.temporal(ctx)
	if err != nil {
		return runStatus{}, err
	}
	d, err := tc.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return runStatus{}, fmt.Errorf("no run with workflow id %q in namespace %s", id, a.cfg.Temporal.Namespace)
		}
		return runStatus{}, err
	}
	info := d.GetWorkflowExecutionInfo()
	st := runStatus{WorkflowID: id, RunID: info.GetExecution().GetRunId(), Type: info.GetType().GetName(),
		Status: statusName(info.GetStatus()), Copies: map[string]copyStatus{}, TaskQueue: info.GetTaskQueue()}
	running := info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	for _, pa := range d.GetPendingActivities() {
		if !running {
			break // an ended run's copies and waits are over: no time left to show
		}
		if w, ok := waitOf(pa); ok {
			st.Waiting = append(st.Waiting, w)
		}
		if p, ok := copyProgressOf(pa); ok {
			key := p.TargetRegion
			if key == "" {
				key = pa.GetActivityId()
			}
			st.Copies[key] = copyStatus{Region: p.TargetRegion, BytesDone: p.Copied(), BytesTotal: p.BytesTotal,
				Segments: p.SegmentsDone, Of: p.SegmentsTotal, Rate: p.BytesPerSecond, Left: left(p.Remaining()),
				Reused: p.BytesReused, ETA: p.ETA}
		}
	}
	if running {
		st.NoWorker = a.noWorkerNote(ctx, st.TaskQueue)
		if v, err := tc.QueryWorkflow(ctx, id, "", workflows.StatusQuery); err == nil {
			st.Step = stepOf(st.Type, v)
		}
		return st, nil
	}
	st.Closed = info.GetCloseTime().AsTime().UTC().Format(time.RFC3339)
	if err := tc.GetWorkflow(ctx, id, "").Get(ctx, &st.Result); err != nil {
		st.Error = plain(err)
	}
	return st, nil
}

// rows shows the status for people: the run, its step and ETA, each copy's progress, the end.
func (st runStatus) rows() [][]string {
	rows := [][]string{{"FIELD", "VALUE"}, {"workflow", st.WorkflowID}, {"type", st.Type}, {"status", st.Status}}
	if st.Step != nil {
		rows = append(rows, []string{"step", stepText(st.Step)})
	}
	if b, ok := st.Step.(workflows.BulkStatus); ok { // the reasons, while it runs: a result has them after
		rows = append(rows, failureRows(b.Summary.Failures)...)
	}
	for _, k := range slices.Sorted(maps.Keys(st.Copies)) {
		rows = append(rows, []string{"copy " + k, copyText(st.Copies[k])})
	}
	if st.Closed != "" {
		rows = append(rows, []string{"ended", st.Closed})
	}
	for _, w := range st.Waiting {
		rows = append(rows, []string{"waiting", w.text()})
	}
	if st.NoWorker != "" {
		rows = append(rows, []string{"worker", st.NoWorker})
	}
	if st.Error != "" {
		rows = append(rows, []string{"error", st.Error})
	}
	if st.Result != nil {
		made := resultRows(st.Result)
		rows = append(rows, made...)
		if len(made) == 0 { // a result of no known shape: a glance at it; --json has the whole
			rows = append(rows, []string{"result", truncateText(string(mustJSON(st.Result)), 160) +
				" (--json for all)"})
		}
	}
	return rows
}

// statusName is Temporal's status in imageflow's words: "Cancelled", as the job statuses beside
// it spell it, not Temporal's "Canceled".
func statusName(s enums.WorkflowExecutionStatus) string {
	if s == enums.WORKFLOW_EXECUTION_STATUS_CANCELED {
		return "Cancelled"
	}
	return strings.TrimPrefix(s.String(), "WorkflowExecutionStatus")
}

// follow waits for a run (which may not exist yet, after --via nats), shows progress, and prints
// the result as JSON. A failed run returns its error. refused, when set, is asked while the run
// does not exist yet: its error (the command was dead-lettered) ends the wait.
func (a *app) follow(ctx context.Context, id string, refused func(context.Context) error) error {
	tc, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	last := ""
	for {
		st, err := a.describe(ctx, id)
		if err != nil && strings.HasPrefix(err.Error(), "no run") {
			if last == "" {
				a.progress(fmt.Sprintf("waiting for run %s to start", id))
				last = "waiting"
			}
			if refused != nil {
				if err := refused(ctx); err != nil {
					return err
				}
			}
		} else if err != nil {
			if ctx.Err() != nil {
				return errDetached{id}
			}
			return err
		} else {
			if line := progressLine(st); line != last {
				a.progress(line)
				last = line
			}
			if st.Status != "Running" {
				break
			}
		}
		select {
		case <-ctx.Done():
			return errDetached{id}
		case <-time.After(a.pollEvery):
		}
	}
	if a.tty {
		fmt.Fprintln(a.stderr)
	}
	var result any
	if err := tc.GetWorkflow(ctx, id, "").Get(ctx, &result); err != nil {
		if ctx.Err() != nil {
			return errDetached{id}
		}
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return fmt.Errorf("run %s failed: %s", id, ae.Message())
		}
		return fmt.Errorf("run %s: %w", id, err)
	}
	for _, r := range resultRows(result) { // the new image ids for people; stdout stays JSON for scripts
		fmt.Fprintf(a.stderr, "%s: %s\n", r[0], r[1])
	}
	doc := map[string]any{"workflow_id": id, "result": result}
	if made, ok := a.bulkImages(ctx, id); ok {
		doc["images"] = made
	}
	return a.printJSON(doc)
}

// progress shows a line: rewritten in place on a terminal, one per change otherwise.
func (a *app) progress(line string) {
	if a.tty {
		fmt.Fprintf(a.stderr, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(a.stderr, line)
}

func progressLine(st runStatus) string {
	parts := []string{st.Type + " " + st.Status}
	if st.Step != nil {
		parts = append(parts, fmt.Sprint(stepText(st.Step)))
	}
	for _, k := range slices.Sorted(maps.Keys(st.Copies)) {
		c := st.Copies[k]
		parts = append(parts, strings.TrimSpace(c.Region+" "+copyText(c)))
	}
	for _, w := range st.Waiting {
		parts = append(parts, "waiting out a fault: "+w.text())
	}
	if st.NoWorker != "" {
		parts = append(parts, st.NoWorker)
	}
	return strings.Join(parts, "  ")
}

func stepText(step any) string {
	if b, ok := step.(workflows.BulkStatus); ok {
		return bulkText(b)
	}
	m, ok := step.(map[string]any)
	if !ok {
		return fmt.Sprint(step)
	}
	s := fmt.Sprint(m["step"])
	if w, ok := m["waiting"].(map[string]any); ok { // first: what fails, within what a glance reads
		what := str(w["step"])
		if r := str(w["reason"]); r != "" {
			what = r
		}
		since := ""
		if t, err := time.Parse(time.RFC3339, str(w["since"])); err == nil {
			since = " since " + t.UTC().Format("15:04:05") + " UTC"
		}
		s += " (waiting out a fault" + since + ": " + truncateText(what, 200) + ")"
	}
	if eta, ok := m["eta"].(string); ok {
		if t, err := time.Parse(time.RFC3339, eta); err == nil {
			s += " (ETA " + t.UTC().Format("15:04:05") + " UTC" + etaNote(t, m["waiting"] != nil) + ")"
		}
	}
	for _, field := range []string{"targets", "members"} { // per region or per member
		if each, ok := m[field].(map[string]any); ok {
			for _, k := range slices.Sorted(maps.Keys(each)) {
				s += fmt.Sprintf(" %s:%v", k, each[k])
			}
		}
	}
	return s
}

// bar draws [#####-----] 50%.
func bar(done, total int64) string {
	if total <= 0 {
		return ""
	}
	const width = 20
	n := int(done * width / total)
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + fmt.Sprintf("] %3d%%", done*100/total)
}

// plain is an error's message without Temporal's "(type: ..., retryable: ...)" suffix.
// plain is an error as a person should read it: an application error's message, "cancelled"
// or "terminated" for those ends, never the SDK's "workflow execution error (type: , ...)".
func plain(err error) string {
	var ae *temporal.ApplicationError
	var ce *temporal.CanceledError
	var te *temporal.TerminatedError
	var to *temporal.TimeoutError
	switch {
	case errors.As(err, &ae):
		return ae.Message()
	case errors.As(err, &ce):
		return "cancelled"
	case errors.As(err, &te):
		return "terminated"
	case errors.As(err, &to):
		return "timed out (" + to.TimeoutType().String() + ")"
	}
	var we *temporal.WorkflowExecutionError
	if errors.As(err, &we) && errors.Unwrap(we) != nil {
		return plain(errors.Unwrap(we))
	}
	return err.Error()
}

// left is a remaining time for people: whole seconds, or nothing when unknown.
func left(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.Round(time.Second).String()
}

// copyText is one copy's progress: bar, MiB, rate and time left.
func copyText(c copyStatus) string {
	line := bar(c.BytesDone, c.BytesTotal) + fmt.Sprintf(" %d/%d MiB", c.BytesDone>>20, c.BytesTotal>>20)
	if c.Rate > 0 {
		line += fmt.Sprintf(" %.1f MiB/s", c.Rate/(1<<20))
	}
	if c.Left != "" {
		line += " " + c.Left + " left"
	}
	if c.Reused > 0 {
		line += fmt.Sprintf(" (%d MiB reused in the target)", c.Reused>>20)
	}
	return strings.TrimSpace(line)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// copyProgressOf reads a pending copy's progress: a cross-region copy's, or an upload's staging
// copy (its bytes through the target's object store).
func copyProgressOf(pa *workflowpb.PendingActivityInfo) (cloud.CopyProgress, bool) {
	if pa.GetHeartbeatDetails() == nil {
		return cloud.CopyProgress{}, false
	}
	dc := converter.GetDefaultDataConverter()
	switch pa.GetActivityType().GetName() {
	case "CopyObjectAcrossRegions":
		var p cloud.CopyProgress
		return p, dc.FromPayloads(pa.GetHeartbeatDetails(), &p) == nil
	case "UploadImage":
		var up activities.UploadProgress
		if dc.FromPayloads(pa.GetHeartbeatDetails(), &up) != nil || up.Copy == nil {
			return cloud.CopyProgress{}, false
		}
		return *up.Copy, true
	}
	return cloud.CopyProgress{}, false
}

// etaNote qualifies an ETA for people: while the job waits out a fault the estimate is on hold,
// and one whose time has gone by is said to have passed rather than shown as if still ahead.
func etaNote(eta time.Time, waiting bool) string {
	switch {
	case waiting:
		return ", on hold: waiting out a fault"
	case eta.Before(time.Now()):
		return ", passed"
	}
	return ""
}
