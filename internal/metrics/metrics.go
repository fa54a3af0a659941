// Package metrics serves the Temporal SDK's metrics and imageflow's own in Prometheus format on
// OpenTelemetry: the SDK records through its contrib/opentelemetry handler on an OpenTelemetry
// meter, imageflow's counters are observable instruments on the same provider, and the
// OpenTelemetry Prometheus exporter serves them beside Go's runtime and process metrics. Names
// stay as they were scraped before: counters keep their names (no _total added), timers are
// histograms in seconds (<name>_seconds_bucket, _sum and _count).
//
// A process's first registry is also the global meter provider (see New).
package metrics

import (
	"context"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// Registry is one process's metrics: an OpenTelemetry meter provider read by Prometheus.
type Registry struct {
	prom     *prometheus.Registry
	provider *sdkmetric.MeterProvider
	meter    metric.Meter
}

// New returns a registry that also reports Go runtime and process metrics.
func New() *Registry {
	r := &Registry{prom: prometheus.NewRegistry()}
	r.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(r.prom), otelprom.WithoutScopeInfo(),
		otelprom.WithoutTargetInfo(), otelprom.WithoutCounterSuffixes())
	if err != nil {
		panic("metrics: the Prometheus exporter: " + err.Error()) // only a second exporter on r.prom fails
	}
	// OpenTelemetry's default buckets are for milliseconds; the SDK's timers are in seconds.
	seconds := sdkmetric.NewView(sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
			Boundaries: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}})
	r.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithView(seconds))
	r.meter = r.provider.Meter("github.com/imageflow/imageflow")
	// The cloud client's series (copies in flight, bytes by region pair, hosts down) are made on
	// the global provider: a process's first registry (devstack's demo worker; a worker has one).
	globalOnce.Do(func() { otel.SetMeterProvider(r.provider) })
	return r
}

var globalOnce sync.Once

// HTTPHandler serves /metrics.
func (r *Registry) HTTPHandler() http.Handler {
	return promhttp.HandlerFor(r.prom, promhttp.HandlerOpts{})
}

// CounterFunc reports a counter read from fn at each scrape (the bridge's stats).
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	_, err := r.meter.Float64ObservableCounter(name, metric.WithDescription(help),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(fn())
			return nil
		}))
	if err != nil {
		panic("metrics: counter " + name + ": " + err.Error()) // a name OpenTelemetry refuses: a typo here
	}
}

// Handler is the Temporal SDK's metrics handler on this registry.
func (r *Registry) Handler() client.MetricsHandler {
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: r.provider.Meter("temporal-sdk-go"), UseMonotonicCounters: true,
		OnError: func(error) {}, // an instrument the meter refuses is the SDK's no-op: metrics never stop work
	})
}
