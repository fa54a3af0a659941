package cloud

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// reuseParallelism bounds the hashing and server-side copies of an incremental copy. They cost
// a round trip each but no link bandwidth, so more of them run at once than transfers do.
const reuseParallelism = 16

// transfer sends the pieces through the transfers; the first hard failure stops the rest.
// With a kept generation, pieces it has a range for first go through the reuse workers, which
// pass on to the transfers only the ranges that changed.
func (r *copyRun) transfer(ctx context.Context, todo []piece) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	q := newQueue(ctx, r.opts.Lineage == nil)
	ceiling := r.opts.Parallelism
	if ceiling <= 0 {
		ceiling = r.opts.MaxParallelism
	}
	s := newStreams(ctx, r.prog.Parallelism)
	if r.opts.Parallelism <= 0 {
		s.startTuning(min(ceiling, tuneReach*r.prog.Parallelism)) // before the first piece goes
	}
	var wg sync.WaitGroup
	for range ceiling {
		wg.Go(func() {
			if err := r.sender(ctx, s, q); err != nil {
				fail(err)
			}
		})
	}
	if r.opts.Parallelism <= 0 {
		tuned, stopTune := context.WithCancel(ctx)
		tuning := make(chan struct{})
		go func() {
			defer close(tuning)
			r.tune(tuned, s, q, ceiling)
		}()
		// The tuner ends before the result is read: it writes the chosen parallelism.
		defer func() { stopTune(); <-tuning }()
	}
	r.reuseAll(ctx, todo, q, fail)
	q.close()
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// sender is one transfer: it takes pieces from the queue while the streams bound allows.
func (r *copyRun) sender(ctx context.Context, s *streams, q *queue) error {
	for {
		bound, ok := s.acquire()
		if !ok {
			return nil
		}
		p, cut, ok := q.next(bound)
		if !ok {
			s.release()
			return nil
		}
		if cut {
			r.cut()
		}
		err := r.copyPiece(ctx, p)
		s.release()
		if err != nil {
			return err
		}
	}
}

// reuseAll queues the pieces: those the kept generation has a range for go through
// reuseParallelism workers first, which queue only the ranges that changed.
func (r *copyRun) reuseAll(ctx context.Context, todo []piece, q *queue, fail func(error)) {
	candidates := make(chan piece)
	var wg sync.WaitGroup
	for range reuseParallelism {
		wg.Go(func() {
			for p := range candidates {
				ok, err := r.reuse(ctx, &p)
				if err != nil {
					fail(err)
					continue
				}
				if !ok {
					q.add(p)
				}
			}
		})
	}
	for _, p := range todo {
		if kept, ok := r.base.lookup(p); !ok || kept.Size != p.size {
			q.add(p)
			continue
		}
		select {
		case candidates <- p:
		case <-ctx.Done():
		}
	}
	close(candidates)
	wg.Wait()
}

// copyPiece pipes one source range into one target segment, restarting it on transient failures
// (SegmentRetries times, or for as long as ctx lasts when the caller waits faults out: OnWait).
func (r *copyRun) copyPiece(ctx context.Context, p piece) error {
	name := r.segName(p.off)
	var lastErr error
	waiting := false
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := sleepCtx(ctx, retryDelay(lastErr, attempt, r.c.retryCap)); err != nil {
				return err
			}
		}
		etag, sent, err := r.pipe(ctx, p, name)
		r.addSent(sent)
		if err == nil {
			if waiting && r.opts.OnBack != nil {
				r.opts.OnBack()
			}
			r.finish(p, etag, name)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch KindOf(err) {
		case NotFound, Forbidden, Invalid, Conflict:
			return err
		}
		lastErr = err
		if attempt < r.opts.SegmentRetries {
			continue
		}
		if r.opts.OnWait == nil || !transient(err) {
			return fmt.Errorf("segment at byte %d of %s after %d attempts: %w", p.off, r.src, attempt+1, err)
		}
		if !waiting {
			waiting = true
			r.opts.OnWait(sideOf(err, r.dst.Region) + " files: " + err.Error())
		}
	}
}

// transient reports a fault worth waiting out: the cloud busy or away.
func transient(err error) bool {
	k := KindOf(err)
	return k == Unavailable || k == RateLimited
}

// sideError is a piece's failure with the region whose object store failed: the source's for a
// read, the target's for a write.
type sideError struct {
	region string
	err    error
}

func (e *sideError) Error() string { return e.err.Error() }
func (e *sideError) Unwrap() error { return e.err }

// sideOf is the region a piece's failure names (otherwise the target's, which the PUT was going to).
func sideOf(err error, otherwise string) string {
	var se *sideError
	if errors.As(err, &se) {
		return se.region
	}
	return otherwise
}

func (r *copyRun) pipe(ctx context.Context, p piece, name string) (etag string, sent int64, err error) {
	// One guard over both legs: the PUT's body is the GET's bytes, so either side hanging stops
	// them moving.
	gctx, guard := guardIdle(ctx, r.c.idleTimeout)
	defer func() { err = guard.release(gctx, "copy "+name, err) }()
	return r.pipeGuarded(gctx, guard, p, name)
}

func (r *copyRun) pipeGuarded(ctx context.Context, guard *idleGuard, p piece, name string) (string, int64, error) {
	rc, err := r.c.OpenSource(ctx, r.src, p.off, p.size)
	if err != nil {
		return "", 0, &sideError{region: r.src.Region, err: err}
	}
	defer rc.Close()
	// A whole source segment's MD5 is known (its ETag) and goes with the PUT: the target checks
	// the bytes against it (422 on a mismatch) and answers it as its ETag, so hashing here again
	// would only burn CPU. A range that cuts a source segment has no known MD5: it is hashed here
	// unless the caller proves the whole copy at its end (ProvenAtEnd).
	var h hash.Hash
	read := &sourceReader{r: guard.reader(rc)}
	var src io.Reader = read
	if p.wantETag == "" && !r.opts.ProvenAtEnd {
		h = md5.New()
		src = io.TeeReader(src, h)
	}
	body := &countingReader{r: src, add: r.streamed}
	etag, err := r.dc.PutStream(ctx, r.dst.Region, r.segContainer, name, body, p.size, p.wantETag)
	sent := body.stop()
	r.streamed(-sent) // finished or failed, the segment's bytes are no longer in flight
	if srcErr := read.failed(); err != nil && srcErr != nil {
		// The PUT failed because its body, the source's bytes, broke off: name the source.
		op := fmt.Sprintf("read source %s bytes %d-%d", r.src, p.off, p.end()-1)
		if ctx.Err() != nil {
			return "", sent, classify(op, srcErr)
		}
		return "", sent, &sideError{region: r.src.Region, err: &Error{Kind: Unavailable, Op: op,
			Message: "the source broke off mid-piece", Err: srcErr}}
	}
	var ce *Error
	if p.wantETag != "" && errors.As(err, &ce) && ce.Status == http.StatusUnprocessableEntity {
		// The target's MD5 of what arrived is not the source's: the bytes changed on the way.
		// Send the segment again, as a client-side mismatch would.
		return "", sent, &Error{Kind: Unavailable, Op: "write " + name, Message: "the target refused the bytes: " +
			"their MD5 is not the source segment's " + p.wantETag, Status: ce.Status}
	}
	if err != nil {
		return "", sent, err
	}
	got := p.wantETag
	if h != nil {
		got = hex.EncodeToString(h.Sum(nil))
	}
	if got != "" && !strings.EqualFold(got, etag) {
		_ = r.dc.DeleteObject(ctx, r.dst.Region, r.segContainer, name)
		return "", sent, &Error{
			Kind:    Unavailable,
			Op:      "write " + name,
			Message: fmt.Sprintf("target ETag %s does not match the MD5 %s of the bytes sent", etag, got),
		}
	}
	return etag, sent, nil
}

// maxRetryDelay caps retryDelay's backoff.
const maxRetryDelay = 10 * time.Second

// retryDelay waits what a rate limit asked for, else backs off exponentially from 200ms up to
// limit (maxRetryDelay when unset).
func retryDelay(err error, attempt int, limit time.Duration) time.Duration {
	var ce *Error
	if errors.As(err, &ce) && ce.Kind == RateLimited && ce.RetryAfter > 0 {
		return ce.RetryAfter
	}
	if limit <= 0 {
		limit = maxRetryDelay
	}
	d := 200 * time.Millisecond << min(attempt-1, 10)
	return min(d, limit)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sourceReader keeps the first error reading the source gave. When the source breaks off
// mid-piece the PUT carrying its bytes fails with it, and the error must name the source's
// region, not the target's. The HTTP client reads the body on its own goroutine.
type sourceReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

func (s *sourceReader) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
