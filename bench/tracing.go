package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/tracing"
)

// Row 14: what tracing costs. Row 1's tuned copy and row 4's bridged starts, each in rounds with
// tracing off (no provider: the default), on, on, off. On is the worker's own setup
// (internal/tracing from OTEL_EXPORTER_OTLP_ENDPOINT): every span sampled and batched over
// OTLP/HTTP to a collector stand-in in this process that reads and drops each export.

// traceSink is an OTLP/HTTP endpoint that takes every export and counts its bytes.
type traceSink struct {
	srv   *httptest.Server
	bytes atomic.Int64
}

func newTraceSink() *traceSink {
	s := &traceSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	return s
}

// traceOn installs tracing as a worker with OTEL_EXPORTER_OTLP_ENDPOINT set does; the returned
// function flushes it and puts the default back.
func (s *traceSink) traceOn(ctx context.Context) (func(), error) {
	os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", s.srv.URL)
	stop, err := tracing.Start(ctx, "bench")
	os.Unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if err != nil {
		return nil, err
	}
	return func() {
		_ = stop(ctx)
		otel.SetTracerProvider(noop.NewTracerProvider())
	}, nil
}

func (e *env) tracingCost(ctx context.Context) ([]row, error) {
	if _, err := events.EnsureStream(ctx, e.js, "IMAGEFLOW", subjects, 1); err != nil {
		return nil, err
	}
	sink := newTraceSink()
	defer sink.srv.Close()
	img, err := e.image("bench-loopback")
	if err != nil {
		return nil, err
	}
	src, err := e.export(ctx, img)
	if err != nil {
		return nil, err
	}
	dst := cloud.ObjectRef{Region: "IAD", Container: "bench-traced", Object: "loopback.vhd"}
	var copyOff, copyOn, startsOff, startsOn time.Duration
	var copies, starts int
	per := e.sz.events / 4
	for round, on := range []bool{false, true, true, false} {
		stop := func() {}
		tc := e.tc
		if on {
			if stop, err = sink.traceOn(ctx); err != nil {
				return nil, err
			}
			if tc, err = tracedClient(e.tc); err != nil {
				return nil, err
			}
		}
		var chose []int
		d, err := e.flowCopy(ctx, src, dst, 0, &chose)
		e.clean(ctx, dst)
		if err != nil {
			stop()
			return nil, err
		}
		s, _, err := e.bridgeStartsWith(ctx, tc, 200000+round*per, per, 16)
		stop()
		if err != nil {
			return nil, err
		}
		if on {
			copyOn, startsOn = copyOn+d, startsOn+s
		} else {
			copyOff, startsOff = copyOff+d, startsOff+s
		}
		copies, starts = copies+1, starts+per
	}
	copyRate := func(d time.Duration) float64 { return mibps(img.Size*int64(copies/2), d) }
	startRate := func(d time.Duration) float64 { return float64(starts/2) / d.Seconds() }
	note := fmt.Sprintf("rounds off, on, on, off; on exported %.1f MiB of spans over OTLP/HTTP",
		float64(sink.bytes.Load())/(1<<20))
	return []row{
		{n: 14, name: fmt.Sprintf("tracing on: row 1's tuned copy (%d MiB, loopback)", img.Size>>20),
			measured: fmt.Sprintf("%.1f MiB/s traced", copyRate(copyOn)),
			baseline: fmt.Sprintf("%.1f MiB/s off", copyRate(copyOff)),
			ratio:    fmt.Sprintf("%.3f", copyRate(copyOn)/copyRate(copyOff)), goal: ">= 0.97",
			met: copyRate(copyOn) >= 0.97*copyRate(copyOff), note: note},
		{n: 14, name: fmt.Sprintf("tracing on: row 4's bridged starts (%d)", starts),
			measured: fmt.Sprintf("%.0f starts/s traced", startRate(startsOn)),
			baseline: fmt.Sprintf("%.0f starts/s off", startRate(startsOff)),
			ratio:    fmt.Sprintf("%.3f", startRate(startsOn)/startRate(startsOff)), goal: ">= 0.97",
			met: startRate(startsOn) >= 0.97*startRate(startsOff)},
	}, nil
}

// tracedClient is c with Temporal's tracing interceptor, as a worker's client gets when tracing
// is on.
func tracedClient(c client.Client) (client.Client, error) {
	ti, err := tracing.Interceptor()
	if err != nil {
		return nil, err
	}
	return client.NewClientFromExisting(c, client.Options{Interceptors: []interceptor.ClientInterceptor{ti},
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
}
