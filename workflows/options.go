package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
)

// a is a nil receiver used only to name activities in ExecuteActivity; the worker supplies the
// real one.
var a *activities.Activities

// withActivity is for quick calls: they retry with backoff; client mistakes (non-retryable
// errors) do not. They heartbeat too (the worker keeps every activity that does not heartbeat
// itself alive, see activities.KeepAlive), so a worker that dies in one is noticed within the
// heartbeat timeout, not the call's whole timeout.
func withActivity(ctx workflow.Context, summary string, timeout time.Duration) workflow.Context {
	p := patienceOf(ctx)
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    timeout,
		ScheduleToCloseTimeout: p.tolerance,
		HeartbeatTimeout:       min(timeout, quickHeartbeat(ctx)),
		Summary:                summary,
		RetryPolicy:            p.retryPolicy(),
	})
}

// Faults are waited out, never counted. An activity's retries stop only when its error cannot
// heal (the activities mark those non-retryable: bad request, not found, credentials refused by
// identity itself), when the job's deadline cancels the run, or when the outage tolerance has
// passed; never after a fixed number of attempts, which turned a four-minute regional outage
// into a failed migration. The retries live here, in Temporal, rather than in the client: each
// attempt shows in the UI with its error, survives a worker restart, and a client-side loop
// would hide an hour-long outage inside one attempt.
const (
	// DefaultOutageTolerance is how long a job without a deadline waits out a fault.
	DefaultOutageTolerance = 24 * time.Hour
	// DefaultMaxRetryInterval caps the backoff between attempts, so a job notices within a few
	// minutes that a region came back.
	DefaultMaxRetryInterval = 5 * time.Minute
)

// patience is how a run's activities wait out faults.
type patience struct {
	tolerance   time.Duration // how long one activity may keep failing transiently
	maxInterval time.Duration // the backoff's cap
}

type patienceKey struct{}

// withPatience sets the outage tolerance and backoff cap of the activities scheduled from ctx
// (zero values take the defaults).
func withPatience(ctx workflow.Context, tolerance, maxInterval time.Duration) workflow.Context {
	if tolerance <= 0 {
		tolerance = DefaultOutageTolerance
	}
	if maxInterval <= 0 {
		maxInterval = DefaultMaxRetryInterval
	}
	return workflow.WithValue(ctx, patienceKey{}, patience{tolerance: tolerance, maxInterval: maxInterval})
}

func patienceOf(ctx workflow.Context) patience {
	if p, ok := ctx.Value(patienceKey{}).(patience); ok {
		return p
	}
	return patience{tolerance: DefaultOutageTolerance, maxInterval: DefaultMaxRetryInterval}
}

// retryPolicy backs off to the cap without a count, from a 300th of the cap (a second for the
// default 5 minutes), at most a second: a run that lowers its cap keeps production's ladder, so
// a fault that outlasts three quick tries has reached a shared host gate just as soon.
func (p patience) retryPolicy() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:    max(min(time.Second, p.maxInterval/300), time.Millisecond),
		BackoffCoefficient: 2,
		MaximumInterval:    p.maxInterval,
	}
}

// maxQuickHeartbeat is the longest heartbeat timeout of a quick activity: a run's heartbeat
// timeout (2 minutes by default) suits long waits, but a dead worker should not hold a call
// that normally takes a second for that long.
const maxQuickHeartbeat = 30 * time.Second

type heartbeatKey struct{}

// withHeartbeat bounds the heartbeat timeout of the quick activities scheduled from ctx by d: a
// run whose input shortens its long activities' heartbeats shortens its quick ones' too.
func withHeartbeat(ctx workflow.Context, d time.Duration) workflow.Context {
	return workflow.WithValue(ctx, heartbeatKey{}, d)
}

func quickHeartbeat(ctx workflow.Context) time.Duration {
	if d, ok := ctx.Value(heartbeatKey{}).(time.Duration); ok && d > 0 {
		return min(d, maxQuickHeartbeat)
	}
	return maxQuickHeartbeat
}

// withLongActivity is for activities that heartbeat (task waits, copies): a dead worker is
// noticed within the heartbeat timeout and the work moves to another worker.
// Its tolerance counts from the end of one full attempt's time, so a long copy that fails near
// its end still gets the whole tolerance.
func withLongActivity(ctx workflow.Context, summary string, timeout, heartbeat time.Duration) workflow.Context {
	p := patienceOf(ctx)
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    timeout,
		ScheduleToCloseTimeout: timeout + p.tolerance,
		HeartbeatTimeout:       heartbeat,
		Summary:                summary,
		RetryPolicy:            p.retryPolicy(),
	})
}

// conclude is a job's last step (activities.Conclude): it starts the run then goes on with what
// the job leaves, when there is one, and publishes the job's fact, naming that run. It returns
// the run's workflow id, "" when none started (a failure is logged: the job's outcome stands).
func conclude(ctx workflow.Context, f activities.Fact, then *activities.RunStart) string {
	ctx = withActivity(ctx, "conclude: "+f.Type, 30*time.Second)
	var started string
	if err := workflow.ExecuteActivity(ctx, a.Conclude, activities.ConcludeInput{Fact: f, Then: then}).
		Get(ctx, &started); err != nil {
		workflow.GetLogger(ctx).Warn("could not conclude", "fact", f.Type, "error", err)
	}
	return started
}
