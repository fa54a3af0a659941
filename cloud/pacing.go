package cloud

import (
	"context"
	"io"
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
type pacer struct {
	next http.RoundTripper
	cfg  Pacing

	mu    sync.Mutex
	hosts map[string]*hostPace
}

type hostPace struct {
	lim   *rate.Limiter
	mu    sync.Mutex
	until time.Time
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
		hp = &hostPace{lim: rate.NewLimiter(limit, p.cfg.Burst)}
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

func (hp *hostPace) block(d time.Duration) {
	hp.mu.Lock()
	if u := time.Now().Add(d); u.After(hp.until) {
		hp.until = u
	}
	hp.mu.Unlock()
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
			return resp, err
		}
		d := retryAfter(resp.Header)
		hp.block(d)
		replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
		if !replayable || waited+d > p.cfg.MaxRetryAfterWait {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if p.cfg.OnRateLimit != nil {
			p.cfg.OnRateLimit(req.URL.Host, d)
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
