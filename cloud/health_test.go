package cloud

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHealthWaitsAsOne: twenty requests for a host answering 503. Once three have failed in a row
// the host is down: the requests wait, unsent, and only its probe asks it (a HEAD per ProbeEvery);
// when it answers again every waiting request goes within a probe interval, each told it waited
// and when it went on. Scaled: a probe every 100 ms against a 2 s outage (production: 5 s against
// minutes or hours).
func TestHealthWaitsAsOne(t *testing.T) {
	var down atomic.Bool
	var gets, heads atomic.Int64
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
		} else {
			gets.Add(1)
		}
		if down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var waits, backs atomic.Int64
	var lastWait atomic.Value
	probe := 100 * time.Millisecond
	g := newGate(http.DefaultTransport, Health{Watch: true, ProbeEvery: probe,
		OnWait: func(_ context.Context, w HostWait) { waits.Add(1); lastWait.Store(w) },
		OnBack: func(context.Context) { backs.Add(1) }})
	client := &http.Client{Transport: g}
	// Three failures mark it down.
	for range 3 {
		if resp, err := client.Get(srv.URL + "/v1/x"); err != nil || resp.StatusCode != 503 {
			t.Fatalf("before the host is down: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
	}
	const n = 20
	var wg sync.WaitGroup
	wentAt := make([]time.Time, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(srv.URL + "/v1/x")
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("request %d after the outage: %v %v", i, resp, err)
				return
			}
			resp.Body.Close()
			wentAt[i] = time.Now()
		}()
	}
	time.Sleep(2 * time.Second)
	if g := gets.Load(); g != 3 {
		t.Errorf("%d GETs reached the down host, want only the 3 that marked it down", g)
	}
	if h := heads.Load(); h < 10 || h > 21 {
		t.Errorf("%d probes in a 2 s outage probed every 100 ms, want about 20", h)
	}
	w, _ := lastWait.Load().(HostWait)
	if w.Failure != "503 Service Unavailable" || w.ProbeEvery != probe {
		t.Errorf("the wait as told: %+v", w)
	}
	recovered := time.Now()
	down.Store(false)
	wg.Wait()
	for i, at := range wentAt {
		if d := at.Sub(recovered); d > 3*probe {
			t.Errorf("request %d went %s after the host answered, want within a probe interval", i, d)
		}
	}
	if backs.Load() != n || waits.Load() < n {
		t.Errorf("%d requests waited, told %d waits and %d returns", n, waits.Load(), backs.Load())
	}
}

// TestHealthEndsAWaitBeforeItsDeadline: a request whose deadline comes while its host is down
// ends a little before it with a HostDownError (Unavailable, to be tried again in a second), so
// the attempt ends on its own terms rather than by a timeout; it was never sent.
func TestHealthEndsAWaitBeforeItsDeadline(t *testing.T) {
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			gets.Add(1)
		}
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	g := newGate(http.DefaultTransport, Health{Watch: true, ProbeEvery: time.Second, DownAfter: 1})
	client := &http.Client{Transport: g}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	_, err = client.Do(req)
	var hd *HostDownError
	if !errors.As(err, &hd) || ctx.Err() != nil {
		t.Fatalf("want a HostDownError before the deadline, got %v (context: %v)", err, ctx.Err())
	}
	if ce := classify("get x", err); !errors.As(ce, new(*Error)) || ce.(*Error).Kind != Unavailable ||
		ce.(*Error).RetryAfter != time.Second/5 { // a fifth of the probe's interval: the next try waits again
		t.Errorf("classified as %v", ce)
	}
	if gets.Load() != 1 {
		t.Errorf("%d GETs reached the down host, want 1", gets.Load())
	}
}
