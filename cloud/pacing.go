package cloud

import (
	"context"
	"io"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Pacing spaces requests per region host so a bulk job slows down instead of tripping limits.
type Pacing struct {
	// RequestsPerSecond per host (a region's images and files share one host); 0 means no limit.
	RequestsPerSecond float64
	// Burst is how many requests may go at once before spacing starts (default 10).
	Burst int
	// MaxRetryAfterWait bounds the total time one request waits on Retry-After before its
	// rate-limit error is returned to the caller (default 60s).
	MaxRetryAfterWait time.Duration
	// OnRateLimit, when set, is told of each rate-limit answer the pacer waits out itself (the
	// host and the wait), so a tool in front of a user can say why a call is slow.
	OnRateLimit func(host string, wait time.Duration)
}

// pacer is an http.RoundTripper: a token bucket per host, and when a host answers with a rate
// limit, every request to that host holds until its Retry-After has passed. Requests whose body
// can be replayed are retried after the wait; a streamed body cannot be, so its caller gets the
// rate-limit answer and restarts the stream itself.
//
// The bucket also learns the host's limit, which no cloud publishes: a refusal cuts the bucket's
// rate to just under what the host accepted over the last seconds (what it allows), and each
// second without one raises it a little, so a bulk settles at the limit instead of meeting it
// with every request in flight. A learnt rate the work no longer comes near is forgotten.
type pacer struct {
	next http.RoundTripper
	cfg  Pacing

	mu    sync.Mutex
	hosts map[string]*hostPace
}

// Learning's constants: a cut goes to cutTo of the accepted rate (a little under the limit, so the
// requests after it pass); after settle, a raise adds raiseBy per quiet second (the limit is
// probed again about six seconds after a cut, a limit 10% higher found in eight); a learnt rate
// four times what the work asks is dropped.
const (
	cutTo      = 0.95
	raiseBy    = 1.02
	minLearnt  = 0.2 // requests per second
	forgetAt   = 4
	acceptedOf = 4               // seconds of answers the accepted rate is measured over
	settle     = 3 * time.Second // after a cut, before the first raise: the cut rate's own answers
	// minAnswers is the answers a window must hold for its rate to be a limit: a refusal met at a
	// trickle (one migration's calls) says nothing of the host's rate, and a pace learnt from it
	// would strand the work far under any limit; such a refusal only holds the host.
	minAnswers = 10
	// forgetAfter without a refusal drops a learnt pace: the work may have outgrown it, and the
	// next refusal learns the limit again.
	forgetAfter = time.Minute
)

type hostPace struct {
	lim     *rate.Limiter
	ceiling rate.Limit // the configured rate (Inf: none): a learnt rate stays under it

	mu       sync.Mutex
	until    time.Time
	answers  [acceptedOf + 1]int // answers per second, by Unix second modulo the ring's length
	secs     [acceptedOf + 1]int64
	first    time.Time // the first answer
	cutAt    time.Time
	raisedAt time.Time
}

func newPacer(next http.RoundTripper, cfg Pacing) *pacer {
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	if cfg.MaxRetryAfterWait <= 0 {
		cfg.MaxRetryAfterWait = time.Minute
	}
	return &pacer{next: next, cfg: cfg, hosts: map[string]*hostPace{}}
}

func (p *pacer) host(h string) *hostPace {
	p.mu.Lock()
	defer p.mu.Unlock()
	hp := p.hosts[h]
	if hp == nil {
		limit := rate.Inf
		if p.cfg.RequestsPerSecond > 0 {
			limit = rate.Limit(p.cfg.RequestsPerSecond)
		}
		hp = &hostPace{lim: rate.NewLimiter(limit, p.cfg.Burst), ceiling: limit}
		p.hosts[h] = hp
	}
	return hp
}

func (hp *hostPace) wait(ctx context.Context) error {
	hp.mu.Lock()
	d := time.Until(hp.until)
	hp.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return hp.lim.Wait(ctx)
}

// accepted counts an answer that was not a refusal, and raises a learnt rate after a quiet second.
func (hp *hostPace) accepted(now time.Time) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	sec := now.Unix()
	i := sec % int64(len(hp.answers))
	if hp.secs[i] != sec {
		hp.secs[i], hp.answers[i] = sec, 0
	}
	hp.answers[i]++
	if hp.first.IsZero() {
		hp.first = now
	}
	lim := hp.lim.Limit()
	if lim >= hp.ceiling || now.Sub(hp.raisedAt) < time.Second || now.Sub(hp.cutAt) < settle {
		return
	}
	hp.raisedAt = now
	next := lim * raiseBy
	if next >= hp.ceiling || now.Sub(hp.cutAt) > forgetAfter || (now.Sub(hp.cutAt) > 2*acceptedOf*time.Second &&
		float64(next) > forgetAt*hp.rateOnly(now)) {
		next = hp.ceiling
	}
	hp.setLimit(next)
}

// acceptedRate is the answers per second over the last acceptedOf seconds and the current one
// (over at least a second: a host refusing in its first moments has not shown its rate yet).
func (hp *hostPace) acceptedRate(now time.Time) (float64, int) {
	n := 0
	for i, sec := range hp.secs {
		if age := now.Unix() - sec; age >= 0 && age <= acceptedOf {
			n += hp.answers[i]
		}
	}
	span := time.Duration(acceptedOf)*time.Second + time.Duration(now.Nanosecond())
	span = max(min(span, now.Sub(hp.first)), time.Second)
	return float64(n) / span.Seconds(), n
}

func (hp *hostPace) rateOnly(now time.Time) float64 {
	r, _ := hp.acceptedRate(now)
	return r
}

// refused cuts the rate to under what the host accepted, and says whether the whole host holds
// for the refusal's Retry-After: it does while its limit is unknown (the first refusal, or a
// storm the cuts have not caught up with); once a rate is learnt the cut is the slowing down, and
// only the refused request waits (a host held a second at each probe of the limit took 75% of
// it). Refusals within a second of a cut are the same overload's, in flight before it.
func (hp *hostPace) refused(now time.Time, d time.Duration) (held bool) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if hp.lim.Limit() >= hp.ceiling {
		hp.holdFor(now, d)
		held = true
	}
	if now.Sub(hp.cutAt) < time.Second {
		return held
	}
	accepted, n := hp.acceptedRate(now)
	if n < minAnswers {
		hp.holdFor(now, d)
		return true
	}
	hp.cutAt, hp.raisedAt = now, now
	next := rate.Limit(max(accepted*cutTo, minLearnt))
	hp.setLimit(min(next, hp.lim.Limit()*cutTo, hp.ceiling))
	return held
}

// holdFor keeps every request to the host waiting until d after now (a later hold stands).
func (hp *hostPace) holdFor(now time.Time, d time.Duration) {
	if u := now.Add(d); u.After(hp.until) {
		hp.until = u
	}
}

// setLimit sets the bucket's rate, and a burst of one second's requests at it: what the host's
// own bucket refilled while the pacer held, taken when the hold ends.
func (hp *hostPace) setLimit(r rate.Limit) {
	hp.lim.SetLimit(r)
	if r != rate.Inf {
		hp.lim.SetBurst(max(1, int(math.Ceil(float64(r)))))
	}
}

func (p *pacer) RoundTrip(req *http.Request) (*http.Response, error) {
	hp := p.host(req.URL.Host)
	var waited time.Duration
	for {
		if err := hp.wait(req.Context()); err != nil {
			return nil, err
		}
		resp, err := p.next.RoundTrip(req)
		if err != nil || !isRateLimit(resp.StatusCode, resp.Header) {
			if err == nil {
				hp.accepted(time.Now())
			}
			return resp, err
		}
		d := retryAfter(resp.Header)
		held := hp.refused(time.Now(), d)
		replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
		if !replayable || waited+d > p.cfg.MaxRetryAfterWait {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if p.cfg.OnRateLimit != nil {
			p.cfg.OnRateLimit(req.URL.Host, d)
		}
		if !held {
			if err := sleepCtx(req.Context(), d); err != nil {
				return nil, err
			}
		}
		waited += d
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}
