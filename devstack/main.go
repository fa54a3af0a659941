// Command devstack runs all of imageflow on one machine with nothing but Go: an embedded Temporal
// server (SQLite under ./.imageflow, so runs survive a restart) with the Temporal UI, an embedded
// NATS server with JetStream, the cloud emulator, a producer worker (account demo) and a partner
// worker (account partner) that accepts offers from demo. Then it runs a demo you can watch in
// the UI, and serves until Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	o := defaultOptions()
	flag.StringVar(&o.dir, "dir", o.dir, "state folder: Temporal's SQLite file, NATS streams, emulator objects")
	flag.StringVar(&o.host, "host", o.host, "address every server binds to")
	flag.IntVar(&o.temporalPort, "temporal-port", o.temporalPort, "Temporal gRPC port (the temporal CLI's default)")
	flag.IntVar(&o.uiPort, "ui-port", o.uiPort, "Temporal UI port")
	flag.IntVar(&o.natsPort, "nats-port", o.natsPort, "NATS port")
	flag.IntVar(&o.emulatorPort, "emulator-port", o.emulatorPort, "emulator identity port; regions take the next six")
	flag.BoolVar(
		&o.demo,
		"demo",
		o.demo,
		"run the demo: migrate demo-web-01 DFW -> IAD, LON and share it with the partner",
	)
	flag.BoolVar(
		&o.exitAfterDemo,
		"exit-after-demo",
		false,
		"exit after the demo: 0 when every demo job succeeded (for scripts and CI)",
	)
	flag.BoolVar(&o.fresh, "fresh", false, "delete the state folder first")
	flag.Int64Var(&o.taskRate, "task-bytes-per-second", 0, "make the emulator's export and import tasks take "+
		"size/rate, as the cloud's do (0: a fixed short time); the workers estimate with this rate too")
	flag.StringVar(&o.temporalPostgres, "temporal-postgres", "", "store Temporal in PostgreSQL instead of "+
		"SQLite: postgres://user:password@host:port/database (created with Temporal's schema when missing)")
	flag.BoolVar(&o.natsAuth, "nats-auth", false, "run NATS with an account per tenant "+
		"(nats-auth.conf in the state folder: each tenant's users see only its own subjects and stream)")
	flag.BoolVar(&o.isolated, "isolated", false, "keep tenants apart everywhere: --nats-auth, and in Temporal a "+
		"namespace per tenant opened only by its API key (the UI is the operator's, on this host only)")
	flag.StringVar(&o.logLevel, "log-level", o.logLevel, "the workers' log level (debug, info, warn, error); "+
		"their logs are worker-demo.log and worker-partner.log in the state folder")
	flag.IntVar(&o.healthPort, "health-port", o.healthPort, "the demo worker's /healthz and /metrics port; the "+
		"partner's is the next")
	flag.BoolVar(&o.tracing, "tracing", false, "start Jaeger v2 (built from tools/jaeger: minutes the first time) "+
		"on :16686 and trace the workers into it; the summary links the demo migration's trace")
	flag.Parse()
	o.natsAuth = o.natsAuth || o.isolated
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, o, os.Stdout, nil))
}

type options struct {
	dir                                          string
	host                                         string
	temporalPort, uiPort, natsPort, emulatorPort int
	healthPort                                   int           // the first worker's /healthz and /metrics
	progressEvery                                time.Duration // how often a demo run says its step
	logLevel                                     string
	demo, exitAfterDemo, fresh, natsAuth         bool
	isolated                                     bool  // tenants apart in Temporal too (implies natsAuth)
	tracing                                      bool  // Jaeger, and the workers traced into it
	taskRate                                     int64 // emulator task bytes per second; 0 for quick tasks
	temporalPostgres                             string
}

func defaultOptions() options {
	return options{
		dir:           ".imageflow",
		host:          "127.0.0.1",
		temporalPort:  7233,
		uiPort:        8233,
		natsPort:      4222,
		emulatorPort:  8900,
		healthPort:    9090,
		progressEvery: 15 * time.Second,
		logLevel:      "info",
		demo:          true,
	}
}

// run starts the stack, runs the demo, and serves until ctx ends (or right after the demo with
// exitAfterDemo). ready, if set, is called with the stack once the demo is done.
func run(ctx context.Context, o options, out io.Writer, ready func(*stack)) int {
	st, err := start(ctx, o, out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		return 1
	}
	defer st.stop()
	ok := true
	if o.demo {
		ok = st.runDemo(ctx)
	}
	if ready != nil {
		ready(st)
	}
	if o.exitAfterDemo {
		if !ok {
			return 1
		}
		return 0
	}
	fmt.Fprintf(out, "\nServing. Temporal UI: %s   Ctrl-C stops everything.\n", st.ui.URL)
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping...")
	return 0
}
