// Package devserver embeds the servers devstack runs in one process: a Temporal server persisted
// in a SQLite file (so workflows survive a restart) and the Temporal UI.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	tlog "go.temporal.io/sdk/log"

	"github.com/imageflow/imageflow/internal/searchattr"
	"github.com/imageflow/imageflow/workflows"
)

// TemporalOptions configure the embedded server.
type TemporalOptions struct {
	DBPath string // SQLite file; created with the schema when missing
	// PostgresURL, when set, stores everything in PostgreSQL instead of DBPath:
	// postgres://user:password@host:port/database (and <database>_visibility), each created with
	// Temporal's schema when missing.
	PostgresURL string
	Host        string // address to bind, default 127.0.0.1
	Port        int    // frontend gRPC port (7233 for the temporal CLI)
	Namespace   string // created when missing, default "default"
	// LogLevel of the server's own log on stderr; empty keeps it silent (it is chatty even at
	// error level when shutting down).
	LogLevel string
	// Keys, when set, keep tenants apart: a namespace per tenant, opened only by its API key
	// (see Keys). Namespace is then the admin's.
	Keys *Keys
	// InternalPort is the internal frontend's port with Keys (0: a free one).
	InternalPort int
}

// Temporal is a running embedded server.
type Temporal struct {
	srv     temporal.Server
	Address string // host:port of the frontend
	// InternalAddress is, with Keys, the internal frontend's host:port: no key asked, everything
	// allowed, for the server's own worker service and the operator's UI. Never expose it.
	InternalAddress string
	Namespace       string
	// Tenants' namespaces, with Keys.
	tenantNamespaces []string
	postgres         bool // the namespace is registered through the frontend after the start
}

// prepareStore makes the store ready: the SQLite file with its schema and the namespace, or
// the PostgreSQL databases with theirs.
func prepareStore(o TemporalOptions) (config.Persistence, error) {
	if o.PostgresURL != "" {
		return postgresPersistence(o.PostgresURL)
	}
	if err := os.MkdirAll(filepath.Dir(o.DBPath), 0o755); err != nil {
		return config.Persistence{}, fmt.Errorf("make folder for %s: %w", o.DBPath, err)
	}
	sqlCfg := &config.SQL{PluginName: sqliteplugin.PluginName, DatabaseName: o.DBPath,
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"}}
	if _, err := os.Stat(o.DBPath); errors.Is(err, os.ErrNotExist) {
		if err := sqlite.SetupSchema(sqlCfg); err != nil {
			return config.Persistence{}, fmt.Errorf("create Temporal schema in %s: %w", o.DBPath, err)
		}
	}
	attrs := map[string]enumspb.IndexedValueType{}
	for _, k := range workflows.SearchAttributeKeys {
		attrs[k.GetName()] = k.GetValueType()
	}
	for _, name := range namespaces(o) {
		ns, err := sqlite.NewNamespaceConfig("active", name, false, attrs)
		if err != nil {
			return config.Persistence{}, err
		}
		// Does nothing for a namespace that exists; its search attributes are added after start.
		if err := sqlite.CreateNamespaces(sqlCfg, ns); err != nil {
			return config.Persistence{}, fmt.Errorf("create namespace %s: %w", name, err)
		}
	}
	return config.Persistence{DefaultStore: "sqlite", VisibilityStore: "sqlite", NumHistoryShards: 1,
		DataStores: map[string]config.DataStore{"sqlite": {SQL: sqlCfg}}}, nil
}

// namespaces are the server's: the admin's and, with Keys, each tenant's.
func namespaces(o TemporalOptions) []string {
	ns := []string{o.Namespace}
	if o.Keys != nil {
		for _, t := range slices.Sorted(maps.Keys(o.Keys.Tenants)) {
			ns = append(ns, NamespaceOf(t))
		}
	}
	return ns
}

// PortFree reports a clear error when something already listens on addr.
func PortFree(what, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf(
			"%s cannot use %s: it is busy (another devstack or server?); choose another port with its flag: %w",
			what,
			addr,
			err,
		)
	}
	return ln.Close()
}

// freePort finds a port nothing listens on, below Linux's ephemeral range (32768 and up): a port
// ":0" handed out there can be taken, between this check and the server's bind, by any process's
// outgoing connection, and Temporal's matching service then panics serving on no listener (seen
// once in a full test run on 2026-11-30).
func freePort(host string) (int, error) {
	const low, high = 20000, 32000
	for try := 0; try < 200; try++ {
		p := low + rand.IntN(high-low)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			_ = ln.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port between %d and %d on %s", low, high, host)
}

// StartTemporal starts frontend, history, matching and worker services in this process.
func StartTemporal(o TemporalOptions) (*Temporal, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	frontend := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	if err := PortFree("Temporal", frontend); err != nil {
		return nil, err
	}
	persistence, err := prepareStore(o)
	if err != nil {
		return nil, err
	}
	cfg, hosts, err := serverConfig(o, persistence)
	if err != nil {
		return nil, err
	}
	var logger log.Logger = log.NewNoopLogger()
	if o.LogLevel != "" {
		logger = log.NewZapLogger(log.BuildZapLogger(log.Config{Level: o.LogLevel}))
	}
	services := temporal.DefaultServices
	opts := []temporal.ServerOption{}
	if o.Keys != nil {
		services = append(slices.Clone(services), string(primitives.InternalFrontendService))
		keys := keyClaims{*o.Keys}
		opts = append(opts, temporal.WithAuthorizer(authorization.NewDefaultAuthorizer()),
			temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return keys }))
	}
	srv, err := temporal.NewServer(append(opts,
		temporal.WithConfig(cfg),
		temporal.ForServices(services),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{
				{Value: true},
			},
		}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("create Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal server: %w", err)
	}
	t := &Temporal{srv: srv, Address: frontend, Namespace: o.Namespace, postgres: o.PostgresURL != "",
		tenantNamespaces: namespaces(o)[1:]}
	if o.Keys != nil {
		t.InternalAddress = net.JoinHostPort(o.Host, strconv.Itoa(cfg.Services["internal-frontend"].RPC.GRPCPort))
	}
	if err := t.registerSearchAttributes(); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	return t, nil
}

func (t *Temporal) registerSearchAttributes() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := t.Address
	if t.InternalAddress != "" {
		addr = t.InternalAddress
	}
	c, err := sdkclient.DialContext(
		ctx,
		sdkclient.Options{
			HostPort:  addr,
			Namespace: t.Namespace,
			Logger:    tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		},
	)
	if err != nil {
		return fmt.Errorf("connect to the embedded Temporal: %w", err)
	}
	defer c.Close()
	for _, ns := range append([]string{t.Namespace}, t.tenantNamespaces...) {
		if t.postgres {
			if err := registerNamespace(ctx, c.WorkflowService(), ns); err != nil {
				return err
			}
		}
		if err := searchattr.Register(ctx, c, ns); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops every service.
func (t *Temporal) Stop() error { return t.srv.Stop() }

func serverConfig(
	o TemporalOptions,
	persistence config.Persistence,
) (*config.Config, map[primitives.ServiceName]static.Hosts, error) {
	ports := map[string]int{"frontend": o.Port, "internal-frontend": o.InternalPort}
	for _, s := range []string{"history", "matching", "worker", "frontend-http", "internal-frontend"} {
		if ports[s] != 0 {
			continue
		}
		p, err := freePort(o.Host)
		if err != nil {
			return nil, nil, fmt.Errorf("find a free port for %s: %w", s, err)
		}
		ports[s] = p
	}
	addr := func(s string) string { return net.JoinHostPort(o.Host, strconv.Itoa(ports[s])) }
	svc := func(s string) config.Service {
		rpc := config.RPC{GRPCPort: ports[s], BindOnIP: o.Host}
		if s == "frontend" {
			rpc.HTTPPort = ports["frontend-http"]
		}
		return config.Service{RPC: rpc}
	}
	cfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: o.Host},
		},
		Persistence: persistence,
		ClusterMetadata: &cluster.Config{EnableGlobalNamespace: false, FailoverVersionIncrement: 10,
			MasterClusterName: "active", CurrentClusterName: "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: addr("frontend")},
			}},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{"frontend": svc("frontend"), "history": svc("history"),
			"matching": svc("matching"), "worker": svc("worker")},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		PublicClient: config.PublicClient{HostPort: addr("frontend")},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History: config.HistoryArchivalNamespaceDefaults{
				State: "disabled",
			}, Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"}}},
	}
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(addr("frontend")),
		primitives.HistoryService:  static.SingleLocalHost(addr("history")),
		primitives.MatchingService: static.SingleLocalHost(addr("matching")),
		primitives.WorkerService:   static.SingleLocalHost(addr("worker")),
	}
	if o.Keys != nil {
		// The server's worker service (schedules, system workflows) calls the frontend without a
		// key: it gets its own, internal one, which Temporal serves without the authorizer.
		cfg.Services["internal-frontend"] = svc("internal-frontend")
		cfg.PublicClient = config.PublicClient{}
		hosts[primitives.InternalFrontendService] = static.SingleLocalHost(addr("internal-frontend"))
	}
	return cfg, hosts, nil
}
