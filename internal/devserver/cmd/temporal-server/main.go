// Command temporal-server runs Temporal with tenants apart, as devstack --isolated does, for
// docker-compose and any deployment without an authorizer of its own: a namespace per tenant
// ("imageflow-<tenant>"), each opened only by its API key, the operator's key opening all, and an
// internal frontend (no key asked) for the server's own scheduler and the operator's UI, which
// must stay on a private network. State is in PostgreSQL (--postgres) or a SQLite file (--db).
//
// Keys come from the environment, never flags: TEMPORAL_API_KEY_ADMIN and
// TEMPORAL_API_KEY_<TENANT> for each tenant of --tenants.
package main

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/imageflow/imageflow/internal/devserver"
	"github.com/imageflow/imageflow/workflows"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "temporal-server:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("temporal-server", flag.ContinueOnError)
	var o devserver.TemporalOptions
	var tenants string
	fs.StringVar(&o.PostgresURL, "postgres", os.Getenv("TEMPORAL_POSTGRES_URL"), "postgres://user:password@host:"+
		"port/database (and <database>_visibility; created with Temporal's schema when missing); "+
		"default $TEMPORAL_POSTGRES_URL")
	fs.StringVar(&o.DBPath, "db", "temporal.db", "SQLite file, without --postgres")
	fs.StringVar(&o.Host, "host", "0.0.0.0", "address to bind")
	fs.IntVar(&o.Port, "port", 7233, "frontend gRPC port: tenants' workers and starters, each with its key")
	fs.IntVar(&o.InternalPort, "internal-port", 7236, "internal frontend port: no key asked, for the operator's "+
		"UI; keep it off any network tenants reach")
	fs.StringVar(&tenants, "tenants", "", "tenants, comma-separated (required)")
	fs.StringVar(&o.LogLevel, "log-level", "warn", "the server's log level on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys, err := keysFromEnv(tenants, os.Getenv)
	if err != nil {
		return err
	}
	o.Keys = keys
	t, err := devserver.StartTemporal(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "temporal-server: frontend %s (a namespace per tenant: %s), internal frontend %s\n",
		t.Address, strings.Join(namespaces(keys), ", "), t.InternalAddress)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return t.Stop()
}

// keysFromEnv reads each tenant's key and the admin's from getenv, naming the first missing one.
func keysFromEnv(tenants string, getenv func(string) string) (*devserver.Keys, error) {
	if tenants == "" {
		return nil, errors.New("--tenants is required (comma-separated tenant ids)")
	}
	k := &devserver.Keys{Admin: getenv("TEMPORAL_API_KEY_ADMIN"), Tenants: map[string]string{}}
	if k.Admin == "" {
		return nil, errors.New("TEMPORAL_API_KEY_ADMIN is not set: the operator's key")
	}
	seen := map[string]bool{k.Admin: true}
	for _, t := range strings.Split(tenants, ",") {
		t = strings.TrimSpace(t)
		if err := workflows.CheckTenant(t); err != nil {
			return nil, fmt.Errorf("--tenants: %w", err)
		}
		key := getenv("TEMPORAL_API_KEY_" + t)
		switch {
		case key == "":
			return nil, fmt.Errorf("TEMPORAL_API_KEY_%s is not set: tenant %s's key", t, t)
		case seen[key]:
			return nil, fmt.Errorf("TEMPORAL_API_KEY_%s is another's key too: each key must open one tenant only", t)
		}
		seen[key] = true
		k.Tenants[t] = key
	}
	return k, nil
}

func namespaces(k *devserver.Keys) []string {
	var ns []string
	for _, t := range slices.Sorted(maps.Keys(k.Tenants)) {
		ns = append(ns, devserver.NamespaceOf(t))
	}
	return ns
}
