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
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    min(timeout, quickHeartbeat(ctx)),
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    20,
		},
	})
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

// publish sends a lifecycle fact through the PublishFact activity; a failure to publish is
// logged, never fatal to the job.
func publish(ctx workflow.Context, typ, id string, data map[string]any) {
	ctx = withActivity(ctx, "publish "+typ, 30*time.Second)
	err := workflow.ExecuteActivity(ctx, a.PublishFact, activities.Fact{Type: typ, ID: id, Data: data}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("could not publish fact", "type", typ, "error", err)
	}
}
