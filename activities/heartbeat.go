package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// beat keeps an activity's latest heartbeat details and re-sends them on a cadence of its own.
// Long activities (task waits, copies) spend minutes inside one call: a poll backing off, a
// segment stalled on a slow link, a pacing wait after a 413. Heartbeating only between calls
// ties liveness to those calls; the beat makes it depend on the process alone.
type beat struct {
	ctx     context.Context
	mu      sync.Mutex
	details any
	done    chan struct{}
	stopped sync.Once
}

// startBeat starts heartbeating details (nil: none yet) until stop is called or ctx ends.
func startBeat(ctx context.Context, details any) *beat {
	b := &beat{ctx: ctx, details: details, done: make(chan struct{})}
	go b.loop(heartbeatEvery(activity.GetInfo(ctx).HeartbeatTimeout))
	return b
}

// heartbeatEvery is a third of the heartbeat timeout, so two beats can be lost before the
// server gives up on the worker; within [200ms, 10s].
func heartbeatEvery(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return 10 * time.Second
	}
	return min(max(timeout/3, 200*time.Millisecond), 10*time.Second)
}

func (b *beat) loop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-b.ctx.Done():
			return
		case <-t.C:
			b.mu.Lock()
			d := b.details
			b.mu.Unlock()
			if d == nil {
				activity.RecordHeartbeat(b.ctx)
			} else {
				activity.RecordHeartbeat(b.ctx, d)
			}
		}
	}
}

// set replaces the details and heartbeats them at once: the server keeps only the last
// heartbeat's details, and a retry reads them back.
func (b *beat) set(details any) {
	b.mu.Lock()
	b.details = details
	b.mu.Unlock()
	activity.RecordHeartbeat(b.ctx, details)
}

// stop ends the keep-alive; safe to call more than once.
func (b *beat) stop() { b.stopped.Do(func() { close(b.done) }) }
