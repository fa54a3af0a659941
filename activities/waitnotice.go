package activities

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/imageflow/imageflow/cloud"
)

// FactJobWaiting announces a step that has been waiting out a fault for longer than the
// worker's threshold: a region down, identity failing, a link that keeps stalling. Operators
// page on it; the job itself goes on waiting until its deadline or outage tolerance.
const FactJobWaiting = "job.waiting"

// DefaultWaitNoticeAfter is how long a step retries before the worker announces the wait.
const DefaultWaitNoticeAfter = 10 * time.Minute

// WaitingSignal tells a run that one of its steps is waiting out a fault, so its status, the
// UI's current details and its ImageflowJobStatus say so (the run itself cannot see its
// activities' retries). Its argument is a Waiting.
const WaitingSignal = "imageflow.waiting"

// Waiting is a step waiting out a fault: which, on which attempt, since when. A Waiting with
// no Step says the wait is over (a step that waits inside its attempt recovered in it).
type Waiting struct {
	Step    string    `json:"step"`
	Attempt int32     `json:"attempt"`
	Since   time.Time `json:"since"`
	// Reason, for a wait inside an attempt, is what keeps failing, the region and service first
	// (e.g. "LON images: task poll: 503 Unavailable").
	Reason string `json:"reason,omitempty"`
}

// Text is the wait for people: the failing side first.
func (w Waiting) Text() string {
	if w.Reason != "" {
		return w.Reason + " (" + w.Step + ")"
	}
	return w.Step
}

// Signaler is what the notice needs of a Temporal client.
type Signaler interface {
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
}

// WaitNotice is a worker interceptor that, when an activity attempt starts after its step has
// kept failing for longer than after since it was first scheduled, publishes FactJobWaiting and
// signals the run (WaitingSignal); again each time that wait doubles: at 10 minutes, 20, 40...,
// not at every retry. Either may be nil.
func WaitNotice(facts FactPublisher, runs Signaler, after time.Duration) interceptor.WorkerInterceptor {
	if after <= 0 {
		after = DefaultWaitNoticeAfter
	}
	return &waitNotice{facts: facts, runs: runs, after: after}
}

type waitNotice struct {
	interceptor.WorkerInterceptorBase
	facts FactPublisher
	runs  Signaler
	after time.Duration
}

func (w *waitNotice) InterceptActivity(
	_ context.Context, next interceptor.ActivityInboundInterceptor,
) interceptor.ActivityInboundInterceptor {
	return &waitNoticeInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next},
		w: w}
}

type waitNoticeInbound struct {
	interceptor.ActivityInboundInterceptorBase
	w *waitNotice
}

func (n *waitNoticeInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	if f, ok := waitingFact(info, n.w.after, time.Now()); ok && info.ActivityType.Name != "PublishFact" {
		n.announce(ctx, info, f, Waiting{Step: info.ActivityType.Name, Attempt: info.Attempt,
			Since: info.ScheduledTime.UTC()})
	}
	return n.Next.ExecuteActivity(context.WithValue(ctx, insideKey{}, &insideWait{n: n}), in)
}

// announce publishes the fact (when there is one) and tells the run; neither failing stops the
// step.
func (n *waitNoticeInbound) announce(ctx context.Context, info activity.Info, f Fact, w Waiting) {
	if n.w.facts != nil && f.Type != "" {
		if err := n.w.facts.PublishFact(ctx, f); err != nil {
			activity.GetLogger(ctx).Warn("could not announce a long wait", "error", err)
		}
	}
	if n.w.runs != nil {
		if err := n.w.runs.SignalWorkflow(ctx, info.WorkflowExecution.ID, info.WorkflowExecution.RunID,
			WaitingSignal, w); err != nil {
			activity.GetLogger(ctx).Warn("could not tell the run of a wait", "error", err)
		}
	}
}

type insideKey struct{}

// insideWait is an attempt's own wait: failures the activity retries within itself (a task poll
// the images service keeps refusing), which Temporal's retry state never shows.
type insideWait struct {
	n *waitNoticeInbound
	// mu guards the rest: the requests of one attempt (a copy's transfers) may wait at once.
	mu      sync.Mutex
	since   time.Time // first failure of the current wait; zero when none
	doubled int       // notices published for it (facts at after, 2x after, 4x ...)
	reason  string    // what the wait was last said to be
}

// WaitingInside says the activity is waiting out a fault inside its attempt: reason names what
// fails, the region and service first. The run is told at once (its status says Waiting, with the
// reason), the operators past the worker's notice threshold and each time the wait doubles, as
// for retried attempts. Outside a worker with the notice, it does nothing.
func WaitingInside(ctx context.Context, reason string) {
	iw, ok := ctx.Value(insideKey{}).(*insideWait)
	if !ok {
		return
	}
	iw.mu.Lock()
	defer iw.mu.Unlock()
	iw.waiting(ctx, reason)
}

// WaitingForHost is WaitingInside for a request the cloud client holds because its host is down
// (cloud.Health.OnWait): the activity's own words for the wait, when it said any, stay.
func WaitingForHost(ctx context.Context, w cloud.HostWait) {
	iw, ok := ctx.Value(insideKey{}).(*insideWait)
	if !ok {
		return
	}
	iw.mu.Lock()
	defer iw.mu.Unlock()
	reason := w.Text()
	if iw.reason != "" && !iw.since.IsZero() {
		reason = iw.reason
	}
	iw.waiting(ctx, reason)
}

// HostHealth is the cloud client's Health for a worker: every ProbeEvery one probe per down
// host, and the activities whose requests wait for it show the wait (WaitingForHost, WaitOver).
func HostHealth(probeEvery time.Duration) cloud.Health {
	return cloud.Health{Watch: true, ProbeEvery: probeEvery, OnWait: WaitingForHost, OnBack: WaitOver}
}

func (iw *insideWait) waiting(ctx context.Context, reason string) {
	iw.reason = reason
	info := activity.GetInfo(ctx)
	now := time.Now()
	first := iw.since.IsZero()
	if first {
		iw.since = now
	}
	w := Waiting{Step: info.ActivityType.Name, Attempt: info.Attempt, Since: iw.since.UTC(),
		Reason: truncate(reason, 200)}
	var f Fact
	if waited := now.Sub(iw.since); waited >= iw.n.w.after<<iw.doubled {
		f = Fact{Type: FactJobWaiting, ID: fmt.Sprintf("%s:%s:%s:%d:inside:%d", info.WorkflowExecution.ID,
			info.WorkflowExecution.RunID, info.ActivityID, info.Attempt, iw.doubled),
			Data: map[string]any{"workflow_id": info.WorkflowExecution.ID, "step": info.ActivityType.Name,
				"reason": w.Reason, "attempt": info.Attempt, "waiting_since": w.Since.Format(time.RFC3339),
				"waited_seconds": int(waited.Seconds())}}
		if info.WorkflowType != nil {
			f.Data["workflow_type"] = info.WorkflowType.Name
		}
		iw.doubled++
	}
	if first || f.Type != "" {
		iw.n.announce(ctx, info, f, w)
	}
}

// signalRun signals the activity's run through the worker's notice (nothing outside a worker
// with it).
func signalRun(ctx context.Context, name string, arg any) error {
	iw, ok := ctx.Value(insideKey{}).(*insideWait)
	if !ok || iw.n.w.runs == nil || !activity.IsActivity(ctx) {
		return nil
	}
	info := activity.GetInfo(ctx)
	return iw.n.w.runs.SignalWorkflow(ctx, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, name, arg)
}

// WaitOver ends a wait WaitingInside began: the run's status goes back to running.
func WaitOver(ctx context.Context) {
	iw, ok := ctx.Value(insideKey{}).(*insideWait)
	if !ok {
		return
	}
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if iw.since.IsZero() {
		return
	}
	iw.since, iw.doubled, iw.reason = time.Time{}, 0, ""
	iw.n.announce(ctx, activity.GetInfo(ctx), Fact{}, Waiting{})
}

// waitingFact is the fact for an attempt that starts waited past after (the doubling it reached
// names it, so the stream keeps one per doubling however many workers or attempts see it).
func waitingFact(info activity.Info, after time.Duration, now time.Time) (Fact, bool) {
	waited := now.Sub(info.ScheduledTime)
	if info.Attempt < 2 || info.ScheduledTime.IsZero() || waited < after {
		return Fact{}, false
	}
	step := int(math.Log2(float64(waited) / float64(after)))
	workflowType := ""
	if info.WorkflowType != nil {
		workflowType = info.WorkflowType.Name
	}
	return Fact{
		Type: FactJobWaiting,
		ID: fmt.Sprintf("%s:%s:%s:waiting:%d", info.WorkflowExecution.ID, info.WorkflowExecution.RunID,
			info.ActivityID, step),
		Data: map[string]any{"workflow_id": info.WorkflowExecution.ID, "workflow_type": workflowType,
			"step": info.ActivityType.Name, "attempt": info.Attempt,
			"waiting_since": info.ScheduledTime.UTC().Format(time.RFC3339), "waited_seconds": int(waited.Seconds())},
	}, true
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
