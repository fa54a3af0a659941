package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestPrometheusOutput: SDK counters, gauges and timers appear under the names scraped before
// the metrics moved onto OpenTelemetry (counters without an added _total, timers as seconds), a
// family whose series carry different tags scrapes (a missing label is Prometheus's empty one),
// and func counters read live.
func TestPrometheusOutput(t *testing.T) {
	r := New()
	h := r.Handler()
	h.Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"operation": "StartWorkflowExecution"}).Counter("temporal_request").Inc(3)
	h.WithTags(map[string]string{"task_queue": "q"}).Gauge("temporal_worker_slots").Update(7)
	h.Timer("temporal_request_latency").Record(1500 * time.Millisecond)
	n := 0.0
	r.CounterFunc("imageflow_bridge_started_total", "started", func() float64 { n++; return n })
	rec := httptest.NewRecorder()
	r.HTTPHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	out := string(body)
	if rec.Code != 200 {
		t.Fatalf("scrape failed: %d %s", rec.Code, out)
	}
	for _, want := range []string{
		"temporal_request 2",
		`temporal_request{operation="StartWorkflowExecution"} 3`,
		`temporal_worker_slots{task_queue="q"} 7`,
		`temporal_request_latency_seconds_sum 1.5`,
		`temporal_request_latency_seconds_bucket{le="2.5"} 1`,
		`temporal_request_latency_seconds_count 1`,
		`imageflow_bridge_started_total 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}
