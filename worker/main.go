// Command worker runs imageflow for one cloud account: the Temporal worker (every workflow and
// activity), the NATS event bridge, /healthz and Prometheus /metrics. Configuration comes from
// IMAGEFLOW_* environment variables; `go run ./worker -h` lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/metrics"
	"github.com/imageflow/imageflow/internal/runner"
	"github.com/imageflow/imageflow/internal/searchattr"
	"github.com/imageflow/imageflow/workflows"
)

func main() {
	for _, a := range os.Args[1:] {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Println("Usage: worker (configured by environment variables)")
			config.Usage(os.Stdout)
			return
		}
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker: configuration:", err)
		os.Exit(2)
	}
	logger := newLogger(cfg.Worker.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger, nil); err != nil {
		logger.Error("worker failed", "error", err.Error())
		os.Exit(1)
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// run starts everything, serves until ctx ends, then stops in order: events first (no event is
// acked that was not handled), then the worker (running activities get the stop timeout), then
// the connections. ready, if not nil, receives the runner once it is up.
func run(ctx context.Context, cfg config.Config, logger *slog.Logger, ready chan<- *runner.Runner) error {
	creds, err := cfg.Cloud.Credentials()
	if err != nil {
		return err
	}
	cc, err := cloud.New(
		ctx,
		creds,
		cloud.Options{Pacing: cloud.Pacing{RequestsPerSecond: cfg.Cloud.RequestsPerSecond},
			IdleTimeout: cfg.Cloud.IdleTimeout},
	)
	if err != nil {
		return err
	}
	logger.Info("cloud account ready", "tenant", cc.Tenant(), "default_region", cc.DefaultRegion(),
		"regions", strings.Join(cc.Regions(), ","))
	peers, err := connectPeers(ctx, cfg.Cloud, logger)
	if err != nil {
		return err
	}
	reg := metrics.New()
	opts, err := cfg.Temporal.ClientOptions()
	if err != nil {
		return err
	}
	opts.Logger, opts.MetricsHandler = tlog.NewStructuredLogger(logger), reg.Handler()
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf(
			"connect to Temporal at %s (namespace %s): %w",
			cfg.Temporal.Address,
			cfg.Temporal.Namespace,
			err,
		)
	}
	defer tc.Close()
	sa := true
	if err := searchattr.Register(ctx, tc, cfg.Temporal.Namespace); err != nil {
		logger.Warn("search attributes not registered; runs will not carry them", "error", err.Error())
		sa = searchattr.Present(ctx, tc, cfg.Temporal.Namespace)
	}
	w := cfg.Worker
	ro := runner.Options{Cloud: cc, Temporal: tc, TaskQueue: cfg.Temporal.TaskQueue, Namespace: cfg.Temporal.Namespace,
		Logger:              logger,
		ActivityConcurrency: w.ActivityConcurrency, StopTimeout: w.StopTimeout, WaitNoticeAfter: w.WaitNoticeAfter,
		Activities: activities.Config{TaskPollInterval: w.TaskPollInterval, TaskPollMaxInterval: w.TaskPollMaxInterval,
			CopyParallelism: w.CopyParallelism, CopyMaxParallelism: w.CopyMaxParallelism,
			CopySegmentSize: w.CopySegmentSize, CopyVerify: w.CopyVerify,
			CopyRate: w.EstimateCopyRate, TaskRate: w.EstimateTaskRate, LineageRangeSize: w.LineageRangeSize,
			StageMinSize: w.StageMinSize,
			Peers:        peers, MaxImportSize: cfg.Cloud.MaxImportSize},
		Events: events.BridgeConfig{Subjects: events.Subjects{Prefix: cfg.NATS.SubjectPrefix}, Stream: cfg.NATS.Stream,
			Replicas:   cfg.NATS.StreamReplicas,
			MaxDeliver: cfg.NATS.MaxDeliver, AckWait: cfg.NATS.AckWait, MaxBacklog: backlogLimit(cfg.NATS.MaxBacklog),
			SearchAttributes: sa, AutoAccept: w.AutoAccept,
			AcceptPolicy: workflows.AcceptPolicy{
				TrustedProducers: w.TrustedProducers,
				NamePattern:      w.AcceptNamePattern,
			}}}
	var nc *nats.Conn
	if !cfg.NATS.Disabled {
		if nc, err = events.Connect(cfg.NATS, "imageflow-worker-"+cc.Tenant(), cc.Tenant()); err != nil {
			return err
		}
		defer nc.Close()
		if ro.JetStream, err = jetstream.New(nc); err != nil {
			return fmt.Errorf("JetStream: %w", err)
		}
	}
	// One cache for the process's runs, sized before the worker starts (the SDK's rule).
	worker.SetStickyWorkflowCacheSize(w.WorkflowCacheSize)
	r, err := runner.Start(ctx, ro)
	if err != nil {
		return err
	}
	if r.Bridge != nil {
		registerBridgeMetrics(reg, r.Bridge)
	}
	srv, err := serveHTTP(cfg.Worker.HTTPAddr, reg, tc, nc, r.Bridge, logger)
	if err != nil {
		r.Stop()
		return err
	}
	if ready != nil {
		ready <- r
	}
	var failed error
	select {
	case <-ctx.Done():
		logger.Info("stopping: finishing events in hand, then running activities")
	case failed = <-r.Failed():
		logger.Error("stopping: the event bridge cannot read events", "error", failed.Error())
	}
	r.Stop()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	if nc != nil {
		_ = nc.Drain()
	}
	logger.Info("stopped")
	return failed
}

func registerBridgeMetrics(reg *metrics.Registry, b *events.Bridge) {
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

// serveHTTP serves /healthz (Temporal reachable and, with events, NATS connected and the bridge
// reading its consumer) and /metrics.
func serveHTTP(
	addr string,
	reg *metrics.Registry,
	tc client.Client,
	nc *nats.Conn,
	bridge *events.Bridge,
	logger *slog.Logger,
) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve /healthz and /metrics on %s (IMAGEFLOW_WORKER_HTTP_ADDR): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg.HTTPHandler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if _, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			http.Error(w, "temporal: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if nc != nil && !nc.IsConnected() {
			http.Error(w, "nats: not connected", http.StatusServiceUnavailable)
			return
		}
		if bridge != nil {
			if err := bridge.Healthy(); err != nil {
				http.Error(w, "event bridge: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
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

// connectPeers signs in to every peer cloud the worker may migrate into.
func connectPeers(ctx context.Context, c config.Cloud, logger *slog.Logger) (map[string]*cloud.Client, error) {
	creds, err := c.PeerCredentials()
	if err != nil {
		return nil, err
	}
	peers := map[string]*cloud.Client{}
	for name, cr := range creds {
		pc, err := cloud.New(ctx, cr, cloud.Options{Pacing: cloud.Pacing{RequestsPerSecond: c.RequestsPerSecond},
			IdleTimeout: c.IdleTimeout})
		if err != nil {
			return nil, fmt.Errorf("peer cloud %s: %w", name, err)
		}
		logger.Info("peer cloud ready", "name", name, "tenant", pc.Tenant(), "regions", strings.Join(pc.Regions(), ","))
		peers[name] = pc
	}
	return peers, nil
}

// backlogLimit is the bridge's backlog limit for the configured one: the configuration's 0 never
// holds events, which the bridge spells as a negative limit (its 0 takes the default).
func backlogLimit(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}
