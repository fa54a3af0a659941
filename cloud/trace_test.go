package cloud

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
)

// answered is a transport that answers at once, so that a benchmark sees only the layers above.
type answered struct{}

func (answered) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

// BenchmarkCloudCallTracing: what the traced layer adds to one cloud call, against the call
// without it: off (no provider installed, a worker's default) and on (every call sampled,
// batched to an exporter that drops). Bench row 14 measures tracing on against off end to end;
// this says what off costs, which no end-to-end run can separate from noise (bench/README.md).
func BenchmarkCloudCallTracing(b *testing.B) {
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8901/v2/images/x", nil)
	run := func(rt http.RoundTripper) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	name := func(*url.URL) string { return "DFW images" }
	b.Run("bare", run(answered{}))
	b.Run("off", run(&traced{next: answered{}, name: name}))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	b.Run("on", run(&traced{next: answered{}, name: name}))
	_ = tp.Shutdown(b.Context())
}
