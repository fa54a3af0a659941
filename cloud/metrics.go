package cloud

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The client's own series, on the global OpenTelemetry meter provider (a worker's
// internal/metrics installs one and serves it to Prometheus; elsewhere they cost a no-op):
//
//	imageflow_copies_in_flight{source_region, target_region}   copies under way
//	imageflow_copy_bytes_total{source_region, target_region}   bytes uploaded by copies (rate(): bytes/s)
//	imageflow_hosts_down{service}                              hosts marked down now ("DFW images")
//	imageflow_host_down_total{service}                         times a host was marked down
type instruments struct {
	inFlight  metric.Int64UpDownCounter
	bytes     metric.Int64Counter
	down      metric.Int64UpDownCounter
	downTotal metric.Int64Counter
}

var (
	instOnce sync.Once
	inst     instruments
)

// meters are the instruments, made once on the global provider (a no-op one until a program
// installs its own: the global provider hands instruments made before to the one installed).
func meters() *instruments {
	instOnce.Do(func() {
		m := otel.GetMeterProvider().Meter("github.com/imageflow/imageflow/cloud")
		inst.inFlight, _ = m.Int64UpDownCounter("imageflow_copies_in_flight",
			metric.WithDescription("cross-region copies under way"))
		inst.bytes, _ = m.Int64Counter("imageflow_copy_bytes_total",
			metric.WithDescription("bytes uploaded by cross-region copies"))
		inst.down, _ = m.Int64UpDownCounter("imageflow_hosts_down",
			metric.WithDescription("cloud hosts marked down, waited on by the worker's requests"))
		inst.downTotal, _ = m.Int64Counter("imageflow_host_down_total",
			metric.WithDescription("times a cloud host was marked down"))
	})
	return &inst
}

func pairOf(src, dst ObjectRef) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("source_region", src.Region),
		attribute.String("target_region", dst.Region))
}

func serviceOf(name string) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("service", name))
}

// countCopy counts a copy under way until the returned function is called.
func countCopy(src, dst ObjectRef) func() {
	m, pair := meters(), pairOf(src, dst)
	if m.inFlight == nil {
		return func() {}
	}
	m.inFlight.Add(context.Background(), 1, pair)
	return func() { m.inFlight.Add(context.Background(), -1, pair) }
}

// countBytes adds a copy's uploaded bytes.
func countBytes(src, dst ObjectRef, n int64) {
	if m := meters(); m.bytes != nil && n > 0 {
		m.bytes.Add(context.Background(), n, pairOf(src, dst))
	}
}

// countDown counts a host marked down (+1) or up again (-1) under its service's name.
func countDown(service string, delta int64) {
	m := meters()
	if m.down == nil {
		return
	}
	m.down.Add(context.Background(), delta, serviceOf(service))
	if delta > 0 {
		m.downTotal.Add(context.Background(), 1, serviceOf(service))
	}
}
