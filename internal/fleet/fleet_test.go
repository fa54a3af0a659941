// Package fleet tests how one worker's jobs meet a region's outage together (issue 40): they
// share the region's health, so one probe watches the down region while their requests wait,
// unsent, and all resume as soon as it answers.
package fleet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// counter is the worker's transport, recording what it sends to each host, by time.
type counter struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent []sent
}

type sent struct {
	at     time.Time
	where  string // host and path
	method string
	ok     bool // answered 2xx
	// body, for a GET answered 2xx, says whether its body was read without breaking off (a
	// source that resets answers 200, then breaks).
	body *bodyState
}

func newCounter() *counter { return &counter{next: http.DefaultTransport} }

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	s := sent{at: time.Now(), where: req.URL.Host + req.URL.Path, method: req.Method,
		ok: err == nil && resp.StatusCode < 300}
	if s.ok && req.Method == http.MethodGet {
		s.body = &bodyState{}
		resp.Body = &watchedBody{ReadCloser: resp.Body, state: s.body}
	}
	c.mu.Lock()
	c.sent = append(c.sent, s)
	c.mu.Unlock()
	return resp, err
}

// bodyState is how a response body's reading went: closed, and broken off before its end.
type bodyState struct{ closed, broken atomic.Bool }

func (b *bodyState) whole() bool { return b == nil || (b.closed.Load() && !b.broken.Load()) }

type watchedBody struct {
	io.ReadCloser
	state *bodyState
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.state.broken.Store(true)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.state.closed.Store(true)
	return b.ReadCloser.Close()
}

// between counts requests to a service (see serviceOf) sent in [from, to): the probes (HEAD) and the jobs' own.
func (c *counter) between(service string, from, to time.Time) (probes, own int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sent {
		if !strings.HasPrefix(s.where, service) || s.at.Before(from) || !s.at.Before(to) {
			continue
		}
		if s.method == http.MethodHead {
			probes++
		} else {
			own++
		}
	}
	return probes, own
}

// firstOwnOK is when the first of the jobs' own requests to a service answered 2xx after t (a
// GET: and its body came whole).
func (c *counter) firstOwnOK(service string, t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sent {
		if strings.HasPrefix(s.where, service) && s.at.After(t) && s.method != http.MethodHead && s.ok &&
			s.body.whole() {
			return s.at
		}
	}
	return time.Time{}
}

// serviceOf is a region's service as the worker's client calls it: its endpoint's host and path
// (the emulator serves a region's images and files on one host).
func serviceOf(t *testing.T, c *cloud.Client, region, service string) string {
	t.Helper()
	sc, err := c.Images(region)
	if service == "files" {
		sc, err = c.Files(region)
	}
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(sc.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host + u.Path
}

// TestRegionOutageMetAsAFleet: eight migrations into IAD while IAD's Cloud Files answer 503.
// Once the first writes have failed, the worker sends IAD nothing but its one probe, each run
// says it waits and for whom ("IAD files: ..."), and within a probe interval of IAD answering
// every migration writes again; each ends with its image. Scaled: production probes every 5 s
// against outages of minutes; here every 100 ms against 6 s.
func TestRegionOutageMetAsAFleet(t *testing.T) {
	const n, probe, outage = 8, 100 * time.Millisecond, 6 * time.Second
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) { c.ExportSegmentSize = 16 << 20 }})
	demo := env.Cloud("demo")
	iad := serviceOf(t, demo, "IAD", "files")
	cnt := newCounter()
	env.StartWorker("demo", testenv.WorkerOptions{HostProbeEvery: probe, Transport: cnt})
	imgs, err := demo.ListImages(context.Background(), "DFW", cloud.ImageFilter{Name: "demo-web-01"})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("demo-web-01: %v %v", imgs, err)
	}
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "error", Region: "IAD", Service: "files",
		Status: 503}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var runs []client.WorkflowRun
	for i := range n {
		in := workflows.MigrateInput{ImageID: imgs[0].ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
			TargetName: fmt.Sprintf("fleet-%d", i)}
		run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: workflows.MigrateWorkflowID("100001", in), TaskQueue: testenv.TaskQueue("demo")},
			workflows.MigrateImageWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	began := time.Now()
	// The outage's second half counts from when IAD is down for the worker (a run says it waits for
	// it), not from the starts: on a loaded machine the exports ran long and the first writes, the
	// three failures that mark IAD down, came in what was meant to be the quiet half.
	for !waitingFor(t, env, runs, "IAD files:") {
		if time.Since(began) > time.Minute {
			t.Fatal("no run ever waited for IAD files")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(outage / 2)
	mid := time.Now()
	time.Sleep(outage / 2)
	recovered := time.Now()
	probes, own := cnt.between(iad, mid, recovered)
	status := statusOf(t, env, runs[0])
	env.Emulator.ClearFaults()
	if own != 0 {
		t.Errorf("%d of the jobs' own requests reached IAD in the outage's second half, want none", own)
	}
	if want := int(outage / 2 / probe); probes < want/2 || probes > want+2 {
		t.Errorf("%d probes of IAD in %s, want about %d (one per %s)", probes, outage/2, want, probe)
	}
	if status.Waiting == nil || !strings.HasPrefix(status.Waiting.Text(), "IAD files:") {
		t.Errorf("a run during the outage says %+v, want it waiting for IAD files", status.Waiting)
	}
	for _, run := range runs {
		var res workflows.MigrateResult
		if err := run.Get(ctx, &res); err != nil || len(res.Targets) != 1 || res.Targets[0].ImageID == "" {
			t.Fatalf("%s: %+v %v", run.GetID(), res, err)
		}
	}
	first := cnt.firstOwnOK(iad, recovered)
	if first.IsZero() || first.Sub(recovered) > 3*probe {
		t.Errorf("the first write after IAD answered came %s after, want within a probe interval (%s)",
			first.Sub(recovered), probe)
	}
	_, before := cnt.between(iad, began, mid)
	t.Logf("%d migrations: %d of their requests reached IAD before it was marked down, 0 after; %d probes in "+
		"the second %s; first write %s after recovery", n, before, probes, outage/2, first.Sub(recovered))
}

// waitingFor reports whether any of the runs says it waits, the wait's text starting with prefix.
func waitingFor(t *testing.T, env *testenv.Env, runs []client.WorkflowRun, prefix string) bool {
	for _, run := range runs {
		if st := statusOf(t, env, run); st.Waiting != nil && strings.HasPrefix(st.Waiting.Text(), prefix) {
			return true
		}
	}
	return false
}

func statusOf(t *testing.T, env *testenv.Env, run client.WorkflowRun) workflows.MigrateStatus {
	t.Helper()
	v, err := env.Client.QueryWorkflow(context.Background(), run.GetID(), run.GetRunID(), workflows.StatusQuery)
	var st workflows.MigrateStatus
	if err != nil || v.Get(&st) != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}
