// Command worker runs imageflow for one cloud account: the Temporal worker (every workflow and
// activity), the NATS event bridge, /healthz and Prometheus /metrics. Configuration comes from
// IMAGEFLOW_* environment variables; `go run ./worker -h` lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
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
	"github.com/imageflow/imageflow/internal/tracing"
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
	// /healthz answers from the start: not ready, and why, until the worker runs.
	reg := metrics.New()
	health := &readiness{}
	health.notReady(errors.New("starting"))
	srv, err := runner.ServeHTTP(cfg.Worker.HTTPAddr, reg, health.check, cfg.Worker.Profiles, logger)
	if err != nil {
		return err
	}
	if srv != nil {
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
		}()
	}
	stopTracing, err := tracing.Start(ctx, "imageflow-worker")
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = stopTracing(sctx) // the last spans, flushed
		cancel()
	}()
	// Temporal first: a worker that waits for the cloud tells its runs why nothing moves.
	tc, sa, err := connectTemporal(ctx, cfg.Temporal, logger, reg)
	if err != nil {
		return err
	}
	defer tc.Close()
	// One cache for the process's runs, sized before any worker starts (the SDK's rule).
	worker.SetStickyWorkflowCacheSize(cfg.Worker.WorkflowCacheSize)
	told := newRunsTold(tc, cfg.Temporal.Namespace, cfg.Temporal.TaskQueue, logger)
	defer told.stop()
	copts := cloud.Options{Pacing: cloud.Pacing{RequestsPerSecond: cfg.Cloud.RequestsPerSecond},
		Health:      activities.HostHealth(cfg.Worker.HostProbeEvery),
		IdleTimeout: cfg.Cloud.IdleTimeout}
	cc, err := connectCloud(ctx, "the cloud's identity service", creds, copts, logger, health, told)
	if err != nil {
		return err
	}
	logger.Info("cloud account ready", "tenant", cc.Tenant(), "default_region", cc.DefaultRegion(),
		"regions", strings.Join(cc.Regions(), ","))
	if err := cfg.CheckTenant(cc.Tenant()); err != nil {
		return fmt.Errorf("the cloud account is %s's: %w", cc.Tenant(), err)
	}
	peers, err := connectPeers(ctx, cfg.Cloud, cfg.Worker.HostProbeEvery, logger, health, told)
	if err != nil {
		return err
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
	refusals := &events.Refusals{}
	if !cfg.NATS.Disabled {
		if nc, err = connectNATS(ctx, cfg, cc.Tenant(), refusals, logger); err != nil {
			return err
		}
		defer nc.Close()
		if ro.JetStream, err = jetstream.New(nc); err != nil {
			return fmt.Errorf("JetStream: %w", err)
		}
	}
	r, err := runner.Start(ctx, ro)
	if err != nil {
		return err
	}
	if r.Bridge != nil {
		runner.RegisterBridgeMetrics(reg, r.Bridge)
	}
	health.running(runner.Checks(tc, nc, r.Bridge, refusals))
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
	if nc != nil {
		_ = nc.Drain()
	}
	logger.Info("stopped")
	return failed
}

// connectTemporal dials Temporal, proves the worker's key opens its namespace, and registers
// the search attributes; sa says whether runs may carry them.
func connectTemporal(ctx context.Context, c config.Temporal, logger *slog.Logger,
	reg *metrics.Registry) (tc client.Client, sa bool, err error) {
	opts, err := c.ClientOptions()
	if err != nil {
		return nil, false, err
	}
	opts.Logger, opts.MetricsHandler = tlog.NewStructuredLogger(logger), reg.Handler()
	if tc, err = client.DialContext(ctx, opts); err != nil {
		return nil, false, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", c.Address, c.Namespace, err)
	}
	if err := proveNamespace(ctx, tc, c.Namespace); err != nil {
		tc.Close()
		return nil, false, err
	}
	sa = true
	if err := searchattr.Register(ctx, tc, c.Namespace); err != nil {
		logger.Warn("search attributes not registered; runs will not carry them", "error", err.Error())
		sa = searchattr.Present(ctx, tc, c.Namespace)
	}
	return tc, sa, nil
}

// proveNamespace checks the worker's key opens its namespace before it polls: on a server that
// keeps tenants apart a worker given another tenant's namespace would otherwise only log refused
// polls.
func proveNamespace(ctx context.Context, tc client.Client, ns string) error {
	_, err := tc.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	var denied *serviceerror.PermissionDenied
	switch {
	case errors.As(err, &denied):
		return fmt.Errorf("the Temporal server refused namespace %s to this worker's key "+
			"(IMAGEFLOW_TEMPORAL_API_KEY opens only its tenant's namespace, %s): %w", ns,
			config.TenantNamespace("<tenant>"), err)
	case err != nil:
		return fmt.Errorf("read namespace %s from the Temporal server: %w", ns, err)
	}
	return nil
}

// connectNATS connects as the configured user and, when the server asks for one (a user or a
// credentials file is set), proves the user may publish what the worker must before it takes any
// event: a missing right ends the start with the permission and subject named.
func connectNATS(ctx context.Context, cfg config.Config, tenant string, refusals *events.Refusals,
	logger *slog.Logger) (*nats.Conn, error) {
	nc, err := events.Connect(cfg.NATS, "imageflow-worker-"+tenant, tenant,
		nats.ErrorHandler(refusals.Handler(logger, cfg.NATS.User)))
	if err != nil {
		return nil, err
	}
	if cfg.NATS.User == "" && cfg.NATS.CredsFile == "" {
		return nc, nil
	}
	if err := events.ProveWorker(ctx, nc, events.Subjects{Prefix: cfg.NATS.SubjectPrefix}, tenant); err != nil {
		nc.Close()
		return nil, fmt.Errorf("NATS user %s cannot serve account %s: %w", cfg.NATS.User, tenant, err)
	}
	return nc, nil
}

// connectPeers signs in to every peer cloud the worker may migrate into.
func connectPeers(ctx context.Context, c config.Cloud, probeEvery time.Duration, logger *slog.Logger,
	ready *readiness, runs *runsTold) (map[string]*cloud.Client, error) {
	creds, err := c.PeerCredentials()
	if err != nil {
		return nil, err
	}
	peers := map[string]*cloud.Client{}
	for name, cr := range creds {
		pc, err := connectCloud(ctx, "peer cloud "+name+"'s identity service", cr,
			cloud.Options{Pacing: cloud.Pacing{RequestsPerSecond: c.RequestsPerSecond}, IdleTimeout: c.IdleTimeout,
				Health: activities.HostHealth(probeEvery)},
			logger, ready, runs)
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
