package activities

import (
	"context"
	"sync"
	"time"

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
	timeout := activity.GetInfo(ctx).HeartbeatTimeout
	if timeout <= 0 || activity.HasHeartbeatDetails(ctx) {
		return k.Next.ExecuteActivity(ctx, in)
	}
	ka := &owned{}
	ctx = context.WithValue(ctx, ownedKey{}, ka)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { ka.loop(ctx, heartbeatEvery(timeout), stop) })
	defer wg.Wait()
	defer close(stop)
	return k.Next.ExecuteActivity(ctx, in)
}

// owned records whether the activity has heartbeated itself.
type owned struct {
	mu  sync.Mutex
	own bool
}

func (o *owned) set() {
	o.mu.Lock()
	o.own = true
	o.mu.Unlock()
}

func (o *owned) mine() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.own
}

// loop heartbeats without details until stop, the context's end or the activity's own first
// heartbeat.
func (o *owned) loop(ctx context.Context, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if o.mine() {
				return
			}
			activity.RecordHeartbeat(context.WithValue(ctx, ownedKey{}, nil))
		}
	}
}

type ownedKey struct{}

type keepAliveOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
}

// RecordHeartbeat notes that the activity heartbeats itself (the keep-alive's own beats carry
// no owner in their context) and passes the heartbeat on.
func (k *keepAliveOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	if o, ok := ctx.Value(ownedKey{}).(*owned); ok && o != nil {
		o.set()
	}
	k.Next.RecordHeartbeat(ctx, details...)
}
