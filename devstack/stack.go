package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	tlog "go.temporal.io/sdk/log"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/devserver"
	"github.com/imageflow/imageflow/internal/metrics"
	"github.com/imageflow/imageflow/internal/runner"
	"github.com/imageflow/imageflow/internal/tracing"
	"github.com/imageflow/imageflow/workflows"
)

// Task queues of the two workers: one account per queue.
const (
	producerQueue = "imageflow-demo"
	partnerQueue  = "imageflow-partner"
)

var subjects = events.Subjects{Prefix: "imageflow"}

type stack struct {
	out      io.Writer
	o        options
	started  time.Time // runs older than this are an earlier start's
	temporal *devserver.Temporal
	ui       *devserver.UI
	nats     *natsserver.Server
	conns    []*nats.Conn
	js       jetstream.JetStream
	emu      *emulator.Emulator
	client   client.Client
	workers  []*runner.Runner
	clients  []client.Client // the workers' own clients (their Temporal metrics)
	servers  []*http.Server  // the workers' /healthz and /metrics
	logs     []*os.File      // the workers' logs
	// With --tracing: Jaeger, its UI, this process's tracer provider, and the demo's trace.
	jaeger      *exec.Cmd
	jaegerUI    string
	stopTracing func(context.Context) error
	demoTrace   string
}

func (s *stack) step(what string, f func() (string, error)) error {
	fmt.Fprintf(s.out, "  %-28s ", what)
	t := time.Now()
	detail, err := f()
	if err != nil {
		fmt.Fprintln(s.out, "failed")
		return fmt.Errorf("%s: %w", what, err)
	}
	fmt.Fprintf(s.out, "%s (%.1fs)\n", detail, time.Since(t).Seconds())
	return nil
}

func start(ctx context.Context, o options, out io.Writer) (*stack, error) {
	s := &stack{out: out, o: o, started: time.Now()}
	if o.fresh {
		if err := os.RemoveAll(o.dir); err != nil {
			return nil, fmt.Errorf("remove %s: %w", o.dir, err)
		}
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, fmt.Errorf("make state folder %s: %w", o.dir, err)
	}
	fmt.Fprintf(out, "imageflow devstack (state in %s)\n", o.dir)
	if err := s.checkPorts(); err != nil {
		return nil, err
	}
	steps := []struct {
		name string
		f    func() (string, error)
	}{
		{"Jaeger (--tracing)", s.startJaeger},
		{"Temporal server", s.startTemporal},
		{"Temporal UI", s.startUI},
		{"NATS JetStream", s.startNATS},
		{"cloud emulator", s.startEmulator},
		{"producer worker (demo)", func() (string, error) { return s.startWorker(ctx, "demo", producerQueue, false) }},
		{
			"partner worker (partner)",
			func() (string, error) { return s.startWorker(ctx, "partner", partnerQueue, true) },
		},
	}
	if !o.tracing {
		steps = steps[1:]
	}
	for _, st := range steps {
		if err := s.step(st.name, st.f); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

func (s *stack) addr(port int) string { return net.JoinHostPort(s.o.host, strconv.Itoa(port)) }

// checkPorts names the first busy port before anything starts.
func (s *stack) checkPorts() error {
	check := []struct {
		what string
		port int
		flag string
	}{{"Temporal", s.o.temporalPort, "--temporal-port"}, {"Temporal UI", s.o.uiPort, "--ui-port"},
		{"NATS", s.o.natsPort, "--nats-port"}}
	for i := 0; i < 7; i++ {
		check = append(check, struct {
			what string
			port int
			flag string
		}{"the emulator", s.o.emulatorPort + i, "--emulator-port"})
	}
	for i := 0; i < 2; i++ {
		check = append(check, struct {
			what string
			port int
			flag string
		}{"a worker's /healthz", s.o.healthPort + i, "--health-port"})
	}
	for _, c := range check {
		if err := devserver.PortFree(c.what, s.addr(c.port)); err != nil {
			return fmt.Errorf("port %d for %s is busy; stop what holds it or pass %s", c.port, c.what, c.flag)
		}
	}
	return nil
}

func (s *stack) startTemporal() (string, error) {
	o := devserver.TemporalOptions{DBPath: filepath.Join(s.o.dir, "temporal.db"), PostgresURL: s.o.temporalPostgres,
		Host: s.o.host, Port: s.o.temporalPort}
	co := client.Options{Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))}
	if s.o.isolated {
		o.Keys = &devserver.Keys{Admin: demoTemporalKey("admin"), Tenants: map[string]string{}}
		for _, t := range devstackTenants {
			o.Keys.Tenants[t] = demoTemporalKey(t)
		}
		// devstack drives the demo as the operator: the admin's key, in the producer's namespace.
		co.Credentials = client.NewAPIKeyStaticCredentials(demoTemporalKey("admin"))
		co.ConnectionOptions.TLSDisabled = true
	}
	t, err := devserver.StartTemporal(o)
	if err != nil {
		return "", err
	}
	s.temporal = t
	co.HostPort, co.Namespace = t.Address, s.namespace("100001")
	if s.client, err = client.Dial(co); err != nil {
		return "", err
	}
	if s.o.isolated {
		return fmt.Sprintf("gRPC %s, a namespace per tenant (%s, %s), each opened by its key only", t.Address,
			s.namespace("100001"), s.namespace("100002")), nil
	}
	return "gRPC " + t.Address + ", namespace " + t.Namespace, nil
}

// namespace is where tenant's runs live: its own with --isolated, else the one namespace.
func (s *stack) namespace(tenant string) string {
	if s.o.isolated {
		return config.TenantNamespace(tenant)
	}
	return s.temporal.Namespace
}

// clientOf is a client of tenant's namespace with devstack's (the operator's) key.
func (s *stack) clientOf(tenant string) (client.Client, error) {
	if s.namespace(tenant) == s.namespace("100001") {
		return s.client, nil
	}
	c, err := client.NewClientFromExisting(s.client, client.Options{Namespace: s.namespace(tenant)})
	if err == nil {
		s.clients = append(s.clients, c)
	}
	return c, err
}

// demoTemporalKey is the API key of a devstack tenant (or "admin") with --isolated: a demo
// credential, like the emulator's demo-api-key, never one to use elsewhere.
func demoTemporalKey(tenant string) string { return "temporal-" + tenant + "-demo-key" }

func (s *stack) startUI() (string, error) {
	addr := s.temporal.Address
	if s.temporal.InternalAddress != "" {
		addr = s.temporal.InternalAddress // the operator's console sees every tenant's namespace
	}
	u, err := devserver.StartUI(addr, s.namespace("100001"), s.o.host, s.o.uiPort)
	if err != nil {
		return "", err
	}
	s.ui = u
	return u.URL, nil
}

func (s *stack) startNATS() (string, error) {
	opts := &natsserver.Options{}
	if s.o.natsAuth {
		var err error
		if opts, err = authOptions(s.o.dir); err != nil {
			return "", err
		}
	}
	opts.Host, opts.Port, opts.JetStream = s.o.host, s.o.natsPort, true
	opts.StoreDir, opts.NoLog, opts.NoSigs = filepath.Join(s.o.dir, "nats"), true, true
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return "", err
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		return "", fmt.Errorf("NATS did not start on %s", s.addr(s.o.natsPort))
	}
	s.nats = ns
	if s.o.natsAuth {
		// The operator's step: each account's stream, made by its admin (workers may not).
		if err := events.SetUpAccounts(context.Background(), ns.ClientURL(), subjects, "IMAGEFLOW", 1, devstackTenants,
			os.Getenv(events.AdminPasswordVar)); err != nil {
			return "", err
		}
	}
	// The demo sends as the demo account's sender, as the starter would.
	if s.js, err = s.natsAs(events.RoleSender, "100001"); err != nil {
		return "", err
	}
	if s.o.natsAuth {
		return ns.ClientURL() + " (an account per tenant: " + filepath.Join(s.o.dir, authFile) + ")", nil
	}
	return ns.ClientURL(), nil
}

// natsAs connects as role's user of tenant (with --nats-auth), as the worker and starter do.
func (s *stack) natsAs(role, tenant string) (jetstream.JetStream, error) {
	c := config.NATS{URL: s.nats.ClientURL()}
	if s.o.natsAuth {
		c.User, c.Password = events.UserName(role, tenant), config.Secret(os.Getenv(events.PasswordVar(role, tenant)))
	}
	nc, err := events.Connect(c, "devstack-"+role+"-"+tenant, tenant)
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, nc)
	return jetstream.New(nc)
}

func (s *stack) startEmulator() (string, error) {
	e, err := emulator.New(emulator.Config{DataDir: filepath.Join(s.o.dir, "emulator"), ExportSegmentSize: 16 << 20,
		TaskBytesPerSecond: s.o.taskRate})
	if err != nil {
		return "", err
	}
	if err := e.Start(s.addr(s.o.emulatorPort)); err != nil {
		_ = e.Close()
		return "", err
	}
	s.emu = e
	return "identity " + e.IdentityURL(), nil
}

// startWorker starts one account's worker: its log in the state folder, its /healthz and
// /metrics on the next health port.
func (s *stack) startWorker(ctx context.Context, user, queue string, autoAccept bool) (string, error) {
	var acct emulator.Account
	for _, a := range s.emu.Accounts() {
		if a.Username == user {
			acct = a
		}
	}
	cc, err := cloud.New(
		ctx,
		cloud.Credentials{IdentityURL: s.emu.IdentityURL(), Username: acct.Username, APIKey: acct.APIKey},
		cloud.Options{Health: activities.HostHealth(5 * time.Second)},
	)
	if err != nil {
		return "", err
	}
	js, err := s.natsAs(events.RoleWorker, cc.Tenant())
	if err != nil {
		return "", err
	}
	logPath := filepath.Join(s.o.dir, "worker-"+user+".log")
	logger, err := s.workerLog(logPath)
	if err != nil {
		return "", err
	}
	reg := metrics.New()
	tc, err := s.workerClient(cc.Tenant(), reg, logger)
	if err != nil {
		return "", err
	}
	s.clients = append(s.clients, tc)
	r, err := runner.Start(ctx, runner.Options{
		Cloud: cc, Temporal: tc, TaskQueue: queue,
		Activities: activities.Config{TaskPollInterval: 500 * time.Millisecond, TaskPollMaxInterval: 2 * time.Second,
			CopyParallelism: 4, CopySegmentSize: 16 << 20, TaskRate: float64(s.o.taskRate),
			MaxImportSize: 160_000_000_000},
		JetStream: js,
		Events: events.BridgeConfig{Subjects: subjects, Stream: "IMAGEFLOW", MaxDeliver: 5, AckWait: 30 * time.Second,
			SearchAttributes: true, AutoAccept: autoAccept,
			AcceptPolicy: workflows.AcceptPolicy{TrustedProducers: []string{"100001"}}},
		StopTimeout: 5 * time.Second, Logger: logger,
	})
	if err != nil {
		return "", err
	}
	s.workers = append(s.workers, r)
	runner.RegisterBridgeMetrics(reg, r.Bridge)
	addr := s.addr(s.o.healthPort + len(s.servers))
	srv, err := runner.ServeHTTP(addr, reg, runner.Checks(tc, nil, r.Bridge, nil), false, logger)
	if err != nil {
		return "", err
	}
	s.servers = append(s.servers, srv)
	return fmt.Sprintf("tenant %s on task queue %s\n%31slog %s, http://%s/healthz and /metrics", cc.Tenant(), queue,
		"", logPath, addr), nil
}

// workerClient is a worker's Temporal client: with --isolated its own tenant's key and namespace,
// as a worker elsewhere would have, else the stack's connection.
func (s *stack) workerClient(tenant string, reg *metrics.Registry, logger *slog.Logger) (client.Client, error) {
	o := client.Options{Namespace: s.namespace(tenant), MetricsHandler: reg.Handler(),
		Logger: tlog.NewStructuredLogger(logger)}
	if tracing.Enabled() {
		ti, err := tracing.Interceptor()
		if err != nil {
			return nil, err
		}
		o.Interceptors = []interceptor.ClientInterceptor{ti}
	}
	if !s.o.isolated {
		return client.NewClientFromExisting(s.client, o)
	}
	o.HostPort = s.temporal.Address
	o.Credentials = client.NewAPIKeyStaticCredentials(demoTemporalKey(tenant))
	o.ConnectionOptions.TLSDisabled = true
	return client.Dial(o)
}

// workerLog opens a worker's log file (appended to across restarts) at the stack's log level.
func (s *stack) workerLog(path string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q is not debug, info, warn or error", s.o.logLevel)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the worker's log: %w", err)
	}
	s.logs = append(s.logs, f)
	return slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: level})), nil
}

// stop takes everything down in reverse order.
func (s *stack) stop() {
	for i := len(s.workers) - 1; i >= 0; i-- {
		s.workers[i].Stop()
	}
	defer s.stopJaeger()
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	for _, c := range s.clients {
		c.Close()
	}
	for _, f := range s.logs {
		_ = f.Close()
	}
	if s.client != nil {
		s.client.Close()
	}
	for _, nc := range s.conns {
		nc.Close()
	}
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
	}
	if s.emu != nil {
		_ = s.emu.Close()
	}
	if s.ui != nil {
		s.ui.Stop()
	}
	if s.temporal != nil {
		_ = s.temporal.Stop()
	}
}
