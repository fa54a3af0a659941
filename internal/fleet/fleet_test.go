// Package fleet tests how one worker's jobs meet a region's outage together (issue 40): they
// share the region's health, so one probe watches the down region while their requests wait,
// unsent, and all resume as soon as it answers.
package fleet

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// counter is the worker's transport, counting what it sends to one host, by time.
type counter struct {
	next http.RoundTripper
	host string
	mu   sync.Mutex
	sent []sent
}

type sent struct {
	at     time.Time
	method string
	ok     bool // answered 2xx
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if req.URL.Host == c.host {
		c.mu.Lock()
		c.sent = append(c.sent, sent{at: time.Now(), method: req.Method, ok: err == nil && resp.StatusCode < 300})
		c.mu.Unlock()
	}
	return resp, err
}

// between counts requests sent in [from, to): the probes (HEAD) and the jobs' own.
func (c *counter) between(from, to time.Time) (probes, own int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sent {
		if s.at.Before(from) || !s.at.Before(to) {
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

// firstOwnOK is when the first of the jobs' own requests answered 2xx after t.
func (c *counter) firstOwnOK(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sent {
		if s.at.After(t) && s.method != http.MethodHead && s.ok {
			return s.at
		}
	}
	return time.Time{}
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
	iad, err := demo.Images("IAD")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(iad.Endpoint)
	cnt := &counter{next: http.DefaultTransport, host: u.Host}
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
	time.Sleep(outage / 2)
	mid := time.Now()
	time.Sleep(outage / 2)
	recovered := time.Now()
	probes, own := cnt.between(mid, recovered)
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
	first := cnt.firstOwnOK(recovered)
	if first.IsZero() || first.Sub(recovered) > 3*probe {
		t.Errorf("the first write after IAD answered came %s after, want within a probe interval (%s)",
			first.Sub(recovered), probe)
	}
	_, before := cnt.between(began, mid)
	t.Logf("%d migrations: %d of their requests reached IAD before it was marked down, 0 after; %d probes in "+
		"the second %s; first write %s after recovery", n, before, probes, outage/2, first.Sub(recovered))
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
