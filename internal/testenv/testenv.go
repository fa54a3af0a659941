// Package testenv gives an integration test the whole system in one call: a real Temporal server
// (temporaltest, with imageflow's search attributes), a real NATS server with JetStream, and the
// cloud emulator, plus helpers that start imageflow workers for the emulator's accounts.
//
// With IMAGEFLOW_TEST_TEMPORAL_POSTGRES set to a PostgreSQL URL, Temporal stores everything in a
// fresh database on that server instead (internal/temporalpg/run.sh starts one).
package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/server/temporaltest"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/devserver"
	"github.com/imageflow/imageflow/internal/runner"
	"github.com/imageflow/imageflow/internal/searchattr"
	"github.com/imageflow/imageflow/workflows"
)

// Env is one test's world. Everything stops when the test ends.
type Env struct {
	// TemporalAddr is the frontend's host:port.
	TemporalAddr string
	Client       client.Client
	Namespace    string
	NATS         *natsserver.Server
	NATSURL      string
	// NATSAuth says NATS runs with imageflow's per-tenant accounts (Options.NATSAuth): workers
	// and JetStreamAs connect as their users, JetStream and Collect as the first account's admin.
	NATSAuth    bool
	natsTenants []string
	Emulator    *emulator.Emulator
	t           testing.TB
}

// Options adjust the world.
type Options struct {
	Emulator     func(*emulator.Config) // adjust the emulator before it starts
	EmulatorAddr string                 // identity address (regions on the next six ports); default free ports
	// NATSAuth runs NATS with events.AccountsConfig for these tenants, passwords from
	// NATSPassword.
	NATSAuth []string
}

// New starts Temporal, NATS and the emulator.
func New(t *testing.T, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	e := &Env{t: t}
	if os.Getenv(PostgresVar) != "" {
		e.startTemporalOnPostgres()
	} else {
		quiet := tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
		ts := temporaltest.NewServer(
			temporaltest.WithT(t),
			temporaltest.WithBaseClientOptions(client.Options{Logger: quiet}),
		)
		e.TemporalAddr, e.Client, e.Namespace = ts.GetFrontendHostPort(), ts.GetDefaultClient(), ts.GetDefaultNamespace()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := searchattr.Register(ctx, e.Client, e.Namespace); err != nil {
		t.Fatalf("register search attributes: %v", err)
	}
	if len(o.NATSAuth) > 0 {
		e.NATS, e.NATSURL = StartNATSWithAuth(t, t.TempDir(), o.NATSAuth)
		e.NATSAuth, e.natsTenants = true, o.NATSAuth
	} else {
		e.NATS, e.NATSURL = StartNATS(t, t.TempDir())
	}
	cfg := emulator.Config{TaskDuration: 50 * time.Millisecond}
	if o.Emulator != nil {
		o.Emulator(&cfg)
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := o.EmulatorAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := emu.Start(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	e.Emulator = emu
	return e
}

// PostgresVar names the variable that puts the tests' Temporal on PostgreSQL.
const PostgresVar = "IMAGEFLOW_TEST_TEMPORAL_POSTGRES"

// TemporalPostgres is a new database's URL on the PostgreSQL server PostgresVar names, for a
// test that starts Temporal itself; "" when the variable is unset (use SQLite).
func TemporalPostgres(t testing.TB) string {
	base := os.Getenv(PostgresVar)
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresVar, err)
	}
	u.Path = fmt.Sprintf("/imageflow_%d_%d", os.Getpid(), time.Now().UnixNano())
	return u.String()
}

// startTemporalOnPostgres runs the embedded Temporal server on a new database of the PostgreSQL
// server PostgresVar names.
func (e *Env) startTemporalOnPostgres() {
	t := e.t
	ts, err := devserver.StartTemporal(devserver.TemporalOptions{PostgresURL: TemporalPostgres(t), Port: FreePort(t)})
	if err != nil {
		t.Fatalf("Temporal on PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = ts.Stop() })
	c, err := client.Dial(client.Options{HostPort: ts.Address, Namespace: ts.Namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e.TemporalAddr, e.Client, e.Namespace = ts.Address, c, ts.Namespace
}

// StartNATS runs an embedded NATS server with JetStream storing under dir.
func StartNATS(t testing.TB, dir string) (*natsserver.Server, string) {
	t.Helper()
	return serveNATS(t,
		&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
}

// serveNATS starts a NATS server with opts, stopped when the test ends.
func serveNATS(t testing.TB, opts *natsserver.Options) (*natsserver.Server, string) {
	t.Helper()
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns, ns.ClientURL()
}

// StartNATSWithAuth runs NATS as StartNATS does, loading the accounts imageflow documents for
// tenants (events.AccountsConfig) from a file, as an operator's nats-server would, and sets each
// account's stream up as its admin (events.SetUpAccounts).
func StartNATSWithAuth(t *testing.T, dir string, tenants []string) (*natsserver.Server, string) {
	t.Helper()
	t.Setenv(events.AdminPasswordVar, NATSPassword("admin", ""))
	for _, tn := range tenants {
		for _, role := range []string{events.RoleWorker, events.RoleSender} {
			t.Setenv(events.PasswordVar(role, tn), NATSPassword(role, tn))
		}
	}
	conf := fmt.Sprintf("host: 127.0.0.1\nport: -1\njetstream: {store_dir: %q}\n", dir) +
		events.AccountsConfig(Subjects, "IMAGEFLOW", tenants)
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	opts.NoLog, opts.NoSigs = true, true
	ns, url := serveNATS(t, opts)
	if err := events.SetUpAccounts(context.Background(), url, Subjects, "IMAGEFLOW", 1, tenants,
		NATSPassword(events.RoleAdmin, "")); err != nil {
		t.Fatal(err)
	}
	return ns, url
}

// NATSPassword is the test password of a NATS user (the admins of every account share one, the
// operator's, whose tenant is "").
func NATSPassword(role, tenant string) string { return "test-" + role + "-" + tenant + "-pw" }

// JetStreamAs connects to the test's NATS as role's user of tenant (with NATSAuth), as the
// worker and the starter do.
func (e *Env) JetStreamAs(role, tenant string) (jetstream.JetStream, error) {
	c := config.NATS{URL: e.NATSURL}
	if e.NATSAuth {
		pw := NATSPassword(role, tenant)
		if role == events.RoleAdmin {
			pw = NATSPassword(role, "")
		}
		c.User, c.Password = events.UserName(role, tenant), config.Secret(pw)
	}
	nc, err := events.Connect(c, "test-"+role+"-"+tenant, tenant)
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(nc.Close)
	return jetstream.New(nc)
}

// Cloud logs in to the emulator as user ("demo" or "partner"; the API key is "<user>-api-key").
func (e *Env) Cloud(user string) *cloud.Client {
	e.t.Helper()
	return e.CloudWith(user, cloud.Options{})
}

// CloudWith is Cloud with the client's options.
func (e *Env) CloudWith(user string, o cloud.Options) *cloud.Client {
	e.t.Helper()
	c, err := cloud.New(
		context.Background(),
		cloud.Credentials{IdentityURL: e.Emulator.IdentityURL(), Username: user, APIKey: user + "-api-key"},
		o,
	)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TaskQueue is the queue a user's worker listens on: one account per queue, so a job always
// runs as the account that owns the queue.
func TaskQueue(user string) string { return "imageflow-" + user }

// ActivityConfig is fast polling for the emulator.
var ActivityConfig = activities.Config{
	TaskPollInterval:    50 * time.Millisecond,
	TaskPollMaxInterval: 200 * time.Millisecond,
	CopySegmentSize:     16 << 20,
	CopyVerify:          true,
	// Ranges scaled with the test images (256 MiB, not tens of GB): production's 32 MiB would
	// make a 5% change of one of them a quarter of its ranges.
	LineageRangeSize: 4 << 20,
}

// Subjects are the default subjects.
var Subjects = events.Subjects{Prefix: "imageflow"}

// WorkerOptions adjust a worker.
type WorkerOptions struct {
	Events       bool // run the bridge and publish facts over the test's NATS
	AutoAccept   bool
	AcceptPolicy workflows.AcceptPolicy
	// Cloud, when set, is the account the worker acts as instead of the emulator's user (a real
	// OpenStack, in the opt-in tests).
	Cloud *cloud.Client
	// Peers are other clouds or accounts the worker may migrate into, by name.
	Peers map[string]*cloud.Client
	// WaitNoticeAfter is the worker's job.waiting threshold (default: the runner's).
	WaitNoticeAfter time.Duration
	// MaxImportSize is the largest image the worker takes the cloud's import tasks to accept.
	MaxImportSize int64
	// NoCopyVerify leaves a copy's whole-object check to the import, as production's default does.
	NoCopyVerify bool
	// HostProbeEvery, when set, gives the worker's cloud client production's shared host health
	// (activities.HostHealth) with this probe interval; without it every request is sent, so a
	// test sees each job's own retries.
	HostProbeEvery time.Duration
	// Transport, with HostProbeEvery, is under the worker's client (a test counting requests).
	Transport http.RoundTripper
	// EtaShift is how far a copy's measured end moves before its run is told (default: the
	// activities' 30 s).
	EtaShift time.Duration
	// Tune, when set, adjusts the activities' configuration last (a test at production's ratios
	// polls tasks as production does, scaled).
	Tune func(*activities.Config)
	// Temporal, when set, is the worker's Temporal client instead of the test's (one with
	// interceptors: tracing).
	Temporal client.Client
}

// JetStream connects to the test's NATS (with NATSAuth, as the admin of the first account).
func (e *Env) JetStream() jetstream.JetStream {
	e.t.Helper()
	var opts []nats.Option
	if e.NATSAuth {
		opts = append(opts, nats.UserInfo(events.UserName(events.RoleAdmin, e.natsTenants[0]),
			NATSPassword(events.RoleAdmin, "")))
	}
	nc, err := nats.Connect(e.NATSURL, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return js
}

// StartWorker runs an imageflow worker for user on TaskQueue(user); it stops with the test.
func (e *Env) StartWorker(user string, opts ...WorkerOptions) *runner.Runner {
	e.t.Helper()
	var o WorkerOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	cc := o.Cloud
	switch {
	case cc == nil && o.HostProbeEvery > 0:
		cc = e.CloudWith(user, cloud.Options{Health: activities.HostHealth(o.HostProbeEvery), Transport: o.Transport})
	case cc == nil:
		cc = e.Cloud(user)
	}
	acts := ActivityConfig
	acts.Peers, acts.MaxImportSize = o.Peers, o.MaxImportSize
	acts.CopyVerify = !o.NoCopyVerify
	acts.EtaShift = o.EtaShift
	if o.Tune != nil {
		o.Tune(&acts)
	}
	tc := e.Client
	if o.Temporal != nil {
		tc = o.Temporal
	}
	ro := runner.Options{
		Cloud:           cc,
		Temporal:        tc,
		TaskQueue:       TaskQueue(user),
		Activities:      acts,
		StopTimeout:     5 * time.Second,
		WaitNoticeAfter: o.WaitNoticeAfter,
		Events: events.BridgeConfig{Subjects: Subjects, Stream: "IMAGEFLOW", MaxDeliver: 5,
			AckWait: 10 * time.Second, SearchAttributes: true, AutoAccept: o.AutoAccept, AcceptPolicy: o.AcceptPolicy},
	}
	if o.Events {
		js, err := e.JetStreamAs(events.RoleWorker, cc.Tenant())
		if err != nil {
			e.t.Fatal(err)
		}
		ro.JetStream = js
	}
	r, err := runner.Start(context.Background(), ro)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(r.Stop)
	return r
}

// Runs counts the runs, open or closed, of workflow id.
func (e *Env) Runs(id string) int {
	e.t.Helper()
	resp, err := e.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: e.Namespace, Query: fmt.Sprintf("WorkflowId = %q", id)})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(resp.Executions)
}

// AwaitCleanup waits for a migration's cleanup run (MigrateResult.Cleanup, which outlives the
// migration) to end, and returns what it deleted; an empty id waits for nothing.
func (e *Env) AwaitCleanup(id string) workflows.CleanupResult {
	e.t.Helper()
	var res workflows.CleanupResult
	if id == "" {
		return res
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := e.Client.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		e.t.Fatalf("cleanup run %s: %v", id, err)
	}
	return res
}

// Leftovers counts the objects left in every imageflow container of region: what a migration's
// cleanup must have deleted.
func Leftovers(t testing.TB, c *cloud.Client, region string) int64 {
	t.Helper()
	cs, err := c.ListContainers(context.Background(), region)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, ct := range cs {
		if strings.HasPrefix(ct.Name, "imageflow-") {
			n += ct.Count
		}
	}
	return n
}

// Collector gathers what a core NATS subscription sees on a subject (a publish the stream then
// drops as a duplicate included).
type Collector struct {
	mu   sync.Mutex
	msgs [][]byte
}

// All is what the subscription saw so far.
func (c *Collector) All() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.msgs...)
}

// Collect subscribes to subject on the test's NATS until the test ends (with NATSAuth, as the
// first account's admin).
func (e *Env) Collect(subject string) *Collector {
	e.t.Helper()
	var opts []nats.Option
	if e.NATSAuth {
		opts = append(opts, nats.UserInfo(events.UserName(events.RoleAdmin, e.natsTenants[0]),
			NATSPassword(events.RoleAdmin, "")))
	}
	nc, err := nats.Connect(e.NATSURL, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	c := &Collector{}
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		c.mu.Lock()
		c.msgs = append(c.msgs, m.Data)
		c.mu.Unlock()
	}); err != nil {
		e.t.Fatal(err)
	}
	return c
}
