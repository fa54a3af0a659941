package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// DefaultIdleTimeout is how long a streamed body may move no byte before it is cut.
const DefaultIdleTimeout = time.Minute

// errStalled is the cause of a stream cut by its idle guard.
var errStalled = errors.New("stalled")

// idleGuard cuts a stream that stops moving. A live process, a heartbeat, an open connection
// prove nothing about a transfer: a link can hang with its socket open and the read waits
// forever. The guard watches the bytes themselves; after timeout without one, it cancels the
// stream's context, and the caller's retry resumes the transfer.
type idleGuard struct {
	timeout time.Duration
	last    atomic.Int64 // unix nanoseconds of the last byte moved
	cancel  context.CancelCauseFunc
	stop    chan struct{}
}

// guardIdle returns a context for one stream that is cancelled after timeout without progress
// (see moved), and the guard; release it when the stream is done. A timeout of 0 guards nothing.
func guardIdle(ctx context.Context, timeout time.Duration) (context.Context, *idleGuard) {
	g := &idleGuard{timeout: timeout, stop: make(chan struct{})}
	if timeout <= 0 {
		return ctx, g
	}
	gctx, cancel := context.WithCancelCause(ctx)
	g.cancel = cancel
	g.moved()
	go g.watch()
	return gctx, g
}

func (g *idleGuard) watch() {
	tick := time.NewTicker(max(g.timeout/8, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
			if time.Since(time.Unix(0, g.last.Load())) > g.timeout {
				g.cancel(fmt.Errorf("%w: no byte moved for %s", errStalled, g.timeout))
				return
			}
		}
	}
}

// moved records progress.
func (g *idleGuard) moved() { g.last.Store(time.Now().UnixNano()) }

// reader counts every byte read from r as progress.
func (g *idleGuard) reader(r io.Reader) io.Reader { return &guardedReader{r: r, g: g} }

// release stops the guard; it returns the stall as an Unavailable error when the guard cut the
// stream (so the caller retries it), and err otherwise.
func (g *idleGuard) release(ctx context.Context, op string, err error) error {
	if g.cancel == nil {
		return err
	}
	close(g.stop)
	cause := context.Cause(ctx)
	g.cancel(nil)
	if err != nil && errors.Is(cause, errStalled) {
		return &Error{Kind: Unavailable, Op: op, Message: cause.Error() + "; the transfer is cut and retried",
			Err: cause}
	}
	return err
}

type guardedReader struct {
	r io.Reader
	g *idleGuard
}

func (gr *guardedReader) Read(p []byte) (int, error) {
	n, err := gr.r.Read(p)
	if n > 0 {
		gr.g.moved()
	}
	return n, err
}
