package cloud

import (
	"context"
	"sync"
	"time"
)

// streams bounds how many transfers run at once. The bound moves while a copy runs when the
// parallelism is tuned (see tune).
type streams struct {
	mu     sync.Mutex
	cond   *sync.Cond
	limit  int
	active int
	done   bool
	// tuning, while set, sizes pieces for up to reach transfers rather than limit: the first
	// transfers must not take every byte before tuning has added the others.
	tuning bool
	reach  int
}

func newStreams(ctx context.Context, limit int) *streams {
	s := &streams{limit: limit, reach: limit}
	s.cond = sync.NewCond(&s.mu)
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.done = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	return s
}

// acquire waits for a free transfer; false once the copy is over. It returns how many
// transfers the bytes left may be shared among, which sizes the piece this transfer takes.
func (s *streams) acquire() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.active >= s.limit && !s.done {
		s.cond.Wait()
	}
	if s.done {
		return 0, false
	}
	s.active++
	if s.tuning {
		return max(s.limit, s.reach), true
	}
	return s.limit, true
}

func (s *streams) release() {
	s.mu.Lock()
	s.active--
	s.cond.Broadcast()
	s.mu.Unlock()
}

// drain waits until at most n transfers run (a lowered bound takes hold as pieces finish);
// false once the copy is over.
func (s *streams) drain(ctx context.Context, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.active > n && !s.done {
		s.cond.Wait()
	}
	return !s.done && ctx.Err() == nil
}

func (s *streams) set(limit int) {
	s.mu.Lock()
	s.limit = limit
	s.cond.Broadcast()
	s.mu.Unlock()
}

// startTuning sizes pieces for as many as reach transfers until settled is called.
func (s *streams) startTuning(reach int) {
	s.mu.Lock()
	s.tuning, s.reach = true, reach
	s.mu.Unlock()
}

func (s *streams) settled() {
	s.mu.Lock()
	s.tuning = false
	s.mu.Unlock()
}

// Tuning: a copy with no fixed parallelism starts at its share of the ceiling (see
// startingStreams) and doubles its transfers while the link rewards it. Each step is judged over
// tuneWindow, after tuneSettle lets new transfers get past their first round trip.
const (
	// startStreams is the fewest transfers a copy starts with.
	startStreams = 4
	tuneSettle   = 100 * time.Millisecond
	tuneWindow   = 400 * time.Millisecond
	// tuneGain is the share of the proportional gain a step must bring to be kept: doubling
	// from 4 to 8 is kept when the rate grows by at least a tenth of 4 transfers' worth. Half,
	// as it was, turned down a doubling that brought 40% on a machine short of CPU, and that copy
	// ran at 0.7 of the best setting: a step is judged by what it moves, not by its efficiency.
	tuneGain = 0.1
	// tuneReach is how many times the running transfers pieces are sized for while tuning: enough
	// for the next doubling to find bytes, and no more, since a piece cut from a source segment
	// is hashed in the client (sized for four times, a loopback copy of 256 MiB segments cut and
	// hashed every one and ran at 0.86 of the same count fixed).
	tuneReach = 2
)

// startingStreams is how many transfers a copy with no link history starts with: the ceiling
// shared among the copies running (this one included), at least startStreams. A copy alone
// starts at the ceiling: a ramp from 4 cost a 512 MiB copy on row 2's link a quarter of its time
// (0.70 of the best setting on its first run), and more transfers than a link rewards cost little
// (row 1's loopback moves as much at 16 as at 4). Copies that run together start lower, so fifty
// of them do not open eight hundred connections before the first window.
func (c *Client) startingStreams(ceiling int) int {
	n := max(1, int(c.copying.Load()))
	return min(ceiling, max(startStreams, ceiling/n))
}

// tune finds the parallelism the link rewards, up to ceiling (see ramp), then keeps it fitted
// while the copy runs (see watch). A copy over a link an earlier copy tuned starts where that one
// settled (a 512 MiB copy on row 2's link spent half its time ramping up from 4) and ramps on
// from there, so one copy that settled low on a busy moment does not hold every later one there.
func (r *copyRun) tune(ctx context.Context, s *streams, q *queue, ceiling int) {
	limit, rate, ok := r.ramp(ctx, s, q, ceiling)
	s.settled()
	if ok {
		r.watch(ctx, s, q, ceiling, limit, rate)
	}
}

// ramp doubles the transfers while the measured rate grows by at least tuneGain of what the
// added transfers would bring at the current rate per transfer, and steps back to the best bound
// once a step does not pay (a per-connection cap rewards more transfers; a shared bottleneck,
// such as this machine's cores or one link's bandwidth, does not). It returns the bound and its
// rate; false when the copy ended first.
//
// While it ramps, pieces are sized as if four times the transfers ran (up to the ceiling), so
// transfers added later find bytes left to take.
func (r *copyRun) ramp(ctx context.Context, s *streams, q *queue, ceiling int) (int, float64, bool) {
	s.mu.Lock()
	limit := s.limit
	s.mu.Unlock()
	best, bestRate := limit, 0.0
	pays := func(rate float64) bool {
		return bestRate == 0 || rate >= bestRate*(1+tuneGain*float64(limit-best)/float64(best))
	}
	for {
		rate, ok := r.measure(ctx, q)
		if ok && !pays(rate) {
			// One window can mislead (a burst at the start of requests, a busy moment on the
			// machine): a step is given up only when a second window agrees.
			var again float64
			again, ok = r.measure(ctx, q)
			rate = max(rate, again)
		}
		if !ok {
			return 0, 0, false
		}
		if !pays(rate) {
			s.set(best)
			r.chose(best)
			return best, bestRate, true
		}
		best, bestRate = limit, rate
		if limit >= ceiling {
			return best, bestRate, true
		}
		limit = min(ceiling, limit*2)
		s.set(limit)
		s.startTuning(min(ceiling, tuneReach*limit))
		r.chose(limit)
	}
}

// After the ramp, the rate is measured over every tuneWatch; a change of tuneDrift either way
// from what the current bound reached tries another bound.
const (
	tuneWatch = 5 * tuneWindow
	tuneDrift = 0.25
	// tuneSpare is the share of the rate halving the transfers may give up: a link that degraded
	// to a shared bottleneck moves as much with half of them, and each costs a connection, its
	// buffers and CPU.
	tuneSpare = 0.10
	// tuneBackoff bounds how far apart (in tuneWatch) the halving is tried again on a link that
	// stays degraded after a try was turned down.
	tuneBackoff = 16
)

// watch keeps the bound fitted while the copy runs: a link that degrades (its rate falls by
// tuneDrift) is tried with half the transfers, kept when they move nearly as much; a link that
// improves is tried with double, kept by the ramp's rule, or, at the ceiling, becomes the rate to
// compare with.
//
// Every look and every try spans a whole tuneWatch, not one tuning window: a window's count is
// coarse once a link is slow (whole pieces sit in socket buffers, then the transfers wait their
// turn), and a try turned down by one unlucky window would keep every transfer busy for the rest
// of a copy that may last hours. For the same reason a halving turned down is tried again while
// the link stays degraded, at doubling intervals (up to tuneBackoff looks apart), since a
// per-connection cap that really fell pays for each try with half its rate for one look.
func (r *copyRun) watch(ctx context.Context, s *streams, q *queue, ceiling, limit int, ref float64) {
	skip, backoff := 0, 1
	for {
		rate, ok := r.look(ctx, q, ref)
		if !ok {
			return
		}
		try := limit
		switch {
		case rate < ref*(1-tuneDrift) && limit > 1:
			try = max(1, limit/2)
		case rate > ref*(1+tuneDrift) && limit < ceiling:
			try = min(ceiling, limit*2)
		case drifted(rate, ref):
			ref = rate
			continue
		default:
			skip, backoff = 0, 1
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		got, kept, ok := r.try(ctx, s, q, limit, try, rate)
		switch {
		case !ok:
			return
		case kept:
			limit, ref = try, got
			skip, backoff = 0, 1
			r.chose(try)
		case try < limit:
			s.set(limit)
			skip, backoff = backoff, min(tuneBackoff, backoff*2)
		default:
			s.set(limit)
			ref = rate
		}
	}
}

// look is the rate over the next tuneWatch; when it drifted from ref, a second look must agree
// (a loaded machine's moment, a disk flush or a collection, is not a link that changed), and the
// rate is the mean of the two. False when the copy ended or every piece is handed out.
func (r *copyRun) look(ctx context.Context, q *queue, ref float64) (float64, bool) {
	rate, ok := r.over(ctx, q, r.scaled(tuneWatch))
	if !ok || !drifted(rate, ref) {
		return rate, ok
	}
	again, ok := r.over(ctx, q, r.scaled(tuneWatch))
	if !drifted(again, ref) {
		return again, ok
	}
	return (rate + again) / 2, ok
}

// try runs the copy at bound try and reports its rate over a tuneWatch, whether it beats the
// current bound's rate by the ramp's rule (more transfers) or keeps within tuneSpare of it (fewer),
// and false when the copy ended. As elsewhere, a try is given up only when a second look agrees.
func (r *copyRun) try(ctx context.Context, s *streams, q *queue, limit, try int, rate float64) (float64, bool, bool) {
	s.set(try)
	if try < limit && !s.drain(ctx, try) {
		return 0, false, false
	}
	want := rate * (1 + tuneGain*float64(try-limit)/float64(limit))
	if try < limit {
		want = rate * (1 - tuneSpare)
	}
	if sleepCtx(ctx, r.scaled(tuneSettle)) != nil {
		return 0, false, false
	}
	got, ok := r.over(ctx, q, r.scaled(tuneWatch))
	if ok && got < want {
		var again float64
		again, ok = r.over(ctx, q, r.scaled(tuneWatch))
		got = max(got, again)
	}
	return got, got >= want, ok
}

// drifted reports a rate a quarter or more away from ref, either way.
func drifted(rate, ref float64) bool { return rate < ref*(1-tuneDrift) || rate > ref*(1+tuneDrift) }

// scaled is d at the copy's tuning scale (a test's shorter window).
func (r *copyRun) scaled(d time.Duration) time.Duration {
	if w := r.opts.tuneWindow; w > 0 {
		return d * w / tuneWindow
	}
	return d
}

// measure is the link's rate over one tuning window, after the settling time; false when the
// copy ended or every piece is handed out, so the count no longer matters.
func (r *copyRun) measure(ctx context.Context, q *queue) (float64, bool) {
	if sleepCtx(ctx, r.scaled(tuneSettle)) != nil {
		return 0, false
	}
	return r.over(ctx, q, r.scaled(tuneWindow))
}

// over is the link's rate over the next d; false as for measure.
func (r *copyRun) over(ctx context.Context, q *queue, d time.Duration) (float64, bool) {
	before, t0 := r.moved(), time.Now()
	if sleepCtx(ctx, d) != nil || q.empty() {
		return 0, false
	}
	return float64(r.moved()-before) / time.Since(t0).Seconds(), true
}

// moved is the bytes this attempt has put on the link so far, finished or not. Bytes count when
// they are written to the connection, so a new connection's first moments overstate its rate
// by what its socket buffers take in: the settling time and the window's length absorb that.
func (r *copyRun) moved() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prog.BytesSent + r.prog.BytesInFlight
}

func (r *copyRun) chose(n int) {
	r.mu.Lock()
	r.prog.Parallelism = n
	r.mu.Unlock()
}
