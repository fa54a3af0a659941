package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// KeepAlive is a worker interceptor that heartbeats for every activity that does not heartbeat
// itself. Only heartbeats tell Temporal a worker is alive: without them, an activity whose
// worker died (SIGKILL, OOM, a lost machine) holds its run until its start-to-close timeout,
// minutes for a quick call. With them, another worker retries it within the heartbeat timeout.
//
// An activity that heartbeats itself (a copy, a task wait) owns its liveness and its details
// from its first heartbeat on; the keep-alive stops then. It never starts for an attempt that
// has an earlier attempt's details, so it cannot overwrite them with empty ones.
func KeepAlive() interceptor.WorkerInterceptor { return &keepAlive{} }

type keepAlive struct {
	interceptor.WorkerInterceptorBase
}

func (*keepAlive) InterceptActivity(
	_ context.Context, next interceptor.ActivityInboundInterceptor,
) interceptor.ActivityInboundInterceptor {
	return &keepAliveInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}}
}

type keepAliveInbound struct {
	interceptor.ActivityInboundInterceptorBase
}

func (k *keepAliveInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	return k.Next.Init(&keepAliveOutbound{ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{
		Next: outbound,
	}})
}

func (k *keepAliveInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if activity.GetInfo(ctx).HeartbeatTimeout <= 0 || activity.HasHeartbeatDetails(ctx) {
		return k.Next.ExecuteActivity(ctx, in)
	}
	// The keep-alive's beat runs on a context without itself in it, so its own heartbeats do not
	// count as the activity's.
	b := startBeat(ctx, nil)
	defer b.stop()
	return k.Next.ExecuteActivity(context.WithValue(ctx, keepAliveKey{}, b), in)
}

type keepAliveKey struct{}

type keepAliveOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
}

// RecordHeartbeat stops the keep-alive at the activity's own first heartbeat and passes the
// heartbeat on.
func (k *keepAliveOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	if b, ok := ctx.Value(keepAliveKey{}).(*beat); ok {
		b.stop()
	}
	k.Next.RecordHeartbeat(ctx, details...)
}
