package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.temporal.io/sdk/client"

	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/metrics"
)

// RegisterBridgeMetrics serves the bridge's counters as imageflow_bridge_*_total.
func RegisterBridgeMetrics(reg *metrics.Registry, b *events.Bridge) {
	s := &b.Stats
	for name, c := range map[string]interface{ Load() int64 }{
		"imageflow_bridge_received_total": &s.Received, "imageflow_bridge_started_total": &s.Started,
		"imageflow_bridge_signalled_total": &s.Signalled, "imageflow_bridge_duplicates_total": &s.Duplicates,
		"imageflow_bridge_skipped_total": &s.Skipped, "imageflow_bridge_dead_lettered_total": &s.DeadLettered,
		"imageflow_bridge_retried_total": &s.Retried, "imageflow_bridge_held_total": &s.Held,
	} {
		reg.CounterFunc(
			name,
			"event bridge: "+strings.TrimSuffix(strings.TrimPrefix(name, "imageflow_bridge_"), "_total"),
			func() float64 { return float64(c.Load()) },
		)
	}
}

// Health says whether the worker is ready; its error is why not, as /healthz answers it.
type Health func(ctx context.Context) error

// refusalShown is how long a permission NATS refused keeps the worker unhealthy: long enough for
// a probe or an operator to see it, after which a right restored by the operator clears it.
const refusalShown = 10 * time.Minute

// Checks is a running worker's health: Temporal reachable and, with events, NATS connected, no
// permission refused lately and the bridge reading its consumer. nc, bridge and refusals may be
// nil.
func Checks(tc client.Client, nc *nats.Conn, bridge *events.Bridge, refusals *events.Refusals) Health {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return fmt.Errorf("temporal: %w", err)
		}
		if nc != nil && !nc.IsConnected() {
			return errors.New("nats: not connected")
		}
		if refusals != nil {
			if err := refusals.Since(refusalShown); err != nil {
				return fmt.Errorf("nats: %w", err)
			}
		}
		if bridge != nil {
			if err := bridge.Healthy(); err != nil {
				return fmt.Errorf("event bridge: %w", err)
			}
		}
		return nil
	}
}

// ServeHTTP serves /healthz (503 with health's reason while it fails) and /metrics on addr, and
// with profiles Go's profiles under /debug/pprof/; an empty addr serves nothing.
func ServeHTTP(addr string, reg *metrics.Registry, health Health, profiles bool,
	logger *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve /healthz and /metrics on %s (IMAGEFLOW_WORKER_HTTP_ADDR): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg.HTTPHandler())
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // Index serves heap, goroutine, allocs... by name
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := health(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("health and metrics server failed", "addr", addr, "error", err.Error())
		}
	}()
	return srv, nil
}
