package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Health makes the hosts a client talks to (a region's images or files, identity) a shared
// concern of every job using the client, rather than each job's own: once a host keeps failing,
// one probe watches it and every request for it waits, sending nothing, until the probe hears it
// answer. N jobs waiting on a down region then cost one request per ProbeEvery instead of N
// streams of retries, and all of them resume within ProbeEvery of its recovery instead of at
// their next backoff step, minutes later.
type Health struct {
	// DownAfter is how many failures in a row (a 500, 502, 503 or 504, or no answer) mark a host
	// down (default 3).
	DownAfter int
	// ProbeEvery is how often the one probe of a down host asks whether it answers (default 5s).
	ProbeEvery time.Duration
	// OnWait, when set, is told that the request of ctx waits for a down host: when it starts
	// waiting and again every ProbeEvery (so a job can show and announce its wait).
	OnWait func(ctx context.Context, w HostWait)
	// OnBack, when set, is told that the request of ctx waited and now goes.
	OnBack func(ctx context.Context)
	// Watch turns it on; the zero Health sends every request whatever its host's state (a
	// starter's one call, tests that count retries).
	Watch bool
}

// HostWait is a down host as a waiting request sees it.
type HostWait struct {
	// Host is the host:port; Name says what it is ("IAD files", "identity"), when known.
	Host, Name string
	// Since is when it was marked down; Failure is the last failure that marked it.
	Since   time.Time
	Failure string
	// ProbeEvery is how often it is asked whether it answers again.
	ProbeEvery time.Duration
}

// Text is the wait for people, the region and service first.
func (w HostWait) Text() string {
	name := w.Name
	if name == "" {
		name = w.Host
	}
	return fmt.Sprintf("%s: not answering since %s UTC (%s); one probe every %s watches it", name,
		w.Since.UTC().Format(time.TimeOnly), w.Failure, w.ProbeEvery)
}

// HostDownError is a request not sent because its host stayed down until the request's deadline
// was near. It is Unavailable: the job's next attempt waits again, a second later.
type HostDownError struct{ HostWait }

func (e *HostDownError) Error() string { return e.Text() }

// gate is the RoundTripper that keeps Health: it counts each host's failures, holds requests
// for a down host, and runs that host's one probe.
type gate struct {
	next http.RoundTripper
	cfg  Health
	mu   sync.Mutex
	// name says what a URL's service is, once the client knows its catalog (nil before).
	name  func(u *url.URL) string
	hosts map[string]*hostState
}

type hostState struct {
	failures int
	down     *downState // nil while the host answers
}

type downState struct {
	since   time.Time
	failure string
	probe   *http.Request // the last failed request, to ask again with HEAD
	up      chan struct{} // closed when the probe hears the host
	service string        // the host's service, "DFW images", for the worker's metrics
}

func newGate(next http.RoundTripper, cfg Health) *gate {
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = 3
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = 5 * time.Second
	}
	return &gate{next: next, cfg: cfg, hosts: map[string]*hostState{}}
}

// retryCap is how long a retry loop outside the gate (a copy's waiting piece) may sleep: as long
// as a probe's interval when hosts are watched, else maxRetryDelay.
func (g *gate) retryCap() time.Duration {
	if g.cfg.Watch {
		return min(g.cfg.ProbeEvery, maxRetryDelay)
	}
	return maxRetryDelay
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	if !g.cfg.Watch {
		return g.next.RoundTrip(req)
	}
	if err := g.waitUp(req); err != nil {
		return nil, err
	}
	var body *bodyWatch
	if req.Body != nil && req.Body != http.NoBody {
		body = &bodyWatch{ReadCloser: req.Body}
		shallow := *req
		shallow.Body = body
		req = &shallow
	}
	resp, err := g.next.RoundTrip(req)
	if err != nil && body.broke() {
		// The request's own body broke off (a copy's source): not this host's failure.
		return resp, err
	}
	g.record(req, resp, err)
	return resp, err
}

// bodyWatch remembers whether a request body's reader failed.
type bodyWatch struct {
	io.ReadCloser
	failed atomic.Bool
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

func (b *bodyWatch) broke() bool { return b != nil && b.failed.Load() }

// waitUp holds a request while its host is down, until the probe hears it or the request's
// deadline is near (then a HostDownError, so the attempt ends in time to be retried).
func (g *gate) waitUp(req *http.Request) error {
	ctx := req.Context()
	waited := false
	for {
		g.mu.Lock()
		hs := g.hosts[req.URL.Host]
		var d *downState
		if hs != nil {
			d = hs.down
		}
		g.mu.Unlock()
		if d == nil {
			if waited && g.cfg.OnBack != nil {
				g.cfg.OnBack(ctx)
			}
			return nil
		}
		w := g.waitOf(req.URL.Host, d)
		if g.cfg.OnWait != nil {
			g.cfg.OnWait(ctx, w)
		}
		waited = true
		tick := g.cfg.ProbeEvery
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl) - max(time.Second, time.Until(dl)/20)
			if left <= 0 {
				return &HostDownError{w}
			}
			tick = min(tick, left)
		}
		t := time.NewTimer(tick)
		select {
		case <-d.up:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

func (g *gate) waitOf(host string, d *downState) HostWait {
	return HostWait{Host: host, Since: d.since, Failure: d.failure, ProbeEvery: g.cfg.ProbeEvery,
		Name: g.serviceName(d.probe.URL)}
}

// serviceName names u's service ("DFW images"), or its host before the client knows its catalog.
func (g *gate) serviceName(u *url.URL) string {
	g.mu.Lock()
	name := g.name
	g.mu.Unlock()
	if name == nil {
		return u.Host
	}
	if n := name(u); n != "" {
		return n
	}
	return u.Host
}

// setName tells the gate how to name a URL's service (the client's catalog).
func (g *gate) setName(name func(u *url.URL) string) {
	g.mu.Lock()
	g.name = name
	g.mu.Unlock()
}

// record counts a failure of the request's host (marking it down at DownAfter in a row, and
// starting its probe) or clears its count on any answer that is not a server error.
func (g *gate) record(req *http.Request, resp *http.Response, err error) {
	failure := ""
	switch {
	case err != nil && req.Context().Err() == nil && !errors.Is(err, context.Canceled):
		failure = err.Error()
	case err == nil && serverError(resp.StatusCode):
		failure = resp.Status
	}
	service := ""
	if failure != "" {
		service = g.serviceName(req.URL)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	hs := g.hosts[req.URL.Host]
	if hs == nil {
		hs = &hostState{}
		g.hosts[req.URL.Host] = hs
	}
	if failure == "" {
		if err == nil {
			hs.failures = 0
		}
		return
	}
	hs.failures++
	if hs.failures < g.cfg.DownAfter || hs.down != nil {
		return
	}
	d := &downState{since: time.Now(), failure: truncateText(failure, 120), probe: probeOf(req),
		up: make(chan struct{})}
	hs.down, d.service = d, service
	countDown(service, 1)
	go g.probe(req.URL.Host, d)
}

// probe asks a down host every ProbeEvery, with HEAD on the request that failed last, whether it
// answers; any answer but a server error is one, and the host is up again for everyone.
func (g *gate) probe(host string, d *downState) {
	for {
		time.Sleep(g.cfg.ProbeEvery)
		ctx, cancel := context.WithTimeout(context.Background(), max(g.cfg.ProbeEvery, 10*time.Second))
		resp, err := g.next.RoundTrip(d.probe.Clone(ctx))
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		if err == nil && !serverError(resp.StatusCode) {
			g.mu.Lock()
			hs := g.hosts[host]
			hs.down, hs.failures = nil, 0
			g.mu.Unlock()
			countDown(d.service, -1)
			close(d.up)
			return
		}
	}
}

// probeOf is a HEAD of the same URL with the same headers (the token among them) and no body.
func probeOf(req *http.Request) *http.Request {
	p := req.Clone(context.Background())
	p.Method, p.Body, p.GetBody, p.ContentLength = http.MethodHead, http.NoBody, nil, 0
	p.Header.Del("Content-Length")
	p.Header.Del("Transfer-Encoding")
	return p
}

// serverError is an answer that says the host cannot serve now: one that marks it down.
func serverError(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout:
		return true
	}
	return false
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
