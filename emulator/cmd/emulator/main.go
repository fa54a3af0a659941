// Command emulator serves the Rackspace cloud emulator: identity on --addr and one host per
// region on the next six ports (DFW, ORD, IAD, LON, SYD, HKG).
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/imageflow/imageflow/emulator"
)

type faultFlags []emulator.Fault

func (f *faultFlags) String() string { return fmt.Sprint(len(*f), " faults") }

func (f *faultFlags) Set(s string) error {
	fault, err := emulator.ParseFault(s)
	if err != nil {
		return err
	}
	*f = append(*f, fault)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "emulator:", err)
		os.Exit(1)
	}
}

func run() error {
	var faults faultFlags
	addr := flag.String(
		"addr",
		"127.0.0.1:8900",
		"identity listen address; regions take the next six ports (port 0: all free ports)",
	)
	host := flag.String(
		"public-host",
		"",
		"host written into catalog URLs (default: the listen host), e.g. emulator in docker-compose",
	)
	accounts := flag.String(
		"accounts",
		"",
		"JSON file of accounts [{username, api_key, password, tenant, default_region}] (default: demo and partner)",
	)
	dataDir := flag.String(
		"data-dir",
		"",
		"folder for object bytes and state; state survives restarts (default: a temporary folder removed on exit)",
	)
	taskDur := flag.Duration(
		"task-duration",
		time.Second,
		"fixed part of every export and import task's life (a quarter pending, the rest processing)",
	)
	taskRate := flag.Int64(
		"task-bytes-per-second",
		0,
		"when above 0, tasks process for a further size/rate (Rackspace: minutes to hours per image)",
	)
	segSize := flag.Int64("export-segment-size", 1_048_576_000, "size in bytes of export segments")
	maxImport := flag.Int64("max-import-size", 160_000_000_000, "largest image an import accepts, in bytes")
	tokenTTL := flag.Duration("token-ttl", 24*time.Hour, "lifetime of new tokens")
	noSeed := flag.Bool("no-seed", false, "start without the seed images")
	genObjects := flag.Bool("generated-objects", false,
		"keep objects whose bytes are a seeded image's as references, not files (for images too large to store)")
	verbose := flag.Bool("v", false, "log each request")
	flag.Var(
		&faults,
		"fault",
		"inject a fault, repeatable: kind=rate-limit|error|latency|bandwidth|task-failure[,region=DFW]"+
			"[,service=identity|images|files][,count=N][,retry_after=S][,status=503][,latency=40ms]"+
			"[,bytes_per_second=N][,task_type=export|import][,image=ID|NAME]",
	)
	flag.Parse()

	cfg := emulator.Config{PublicHost: *host, DataDir: *dataDir, TaskDuration: *taskDur, TaskBytesPerSecond: *taskRate,
		ExportSegmentSize: *segSize, MaxImportSize: *maxImport, TokenTTL: *tokenTTL, Faults: faults, NoSeed: *noSeed,
		GeneratedObjects: *genObjects}
	if *accounts != "" {
		a, err := emulator.LoadAccounts(*accounts)
		if err != nil {
			return err
		}
		cfg.Accounts = a
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		return err
	}
	if err := emu.Start(*addr); err != nil {
		_ = emu.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%w\n(devstack serves an emulator on 8900 to 8906 already: use that one, or give "+
				"this one other ports with --addr 127.0.0.1:9900)", err)
		}
		return err
	}
	fmt.Printf("identity %s\n", emu.IdentityURL())
	for _, r := range emulator.Regions {
		fmt.Printf("region %s %s\n", r, emu.RegionURL(r))
	}
	for _, a := range emu.Accounts() {
		fmt.Printf(
			"account %s tenant=%s region=%s api-key=%s password=%s\n",
			a.Username,
			a.Tenant,
			a.DefaultRegion,
			a.APIKey,
			a.Password,
		)
	}
	if len(faults) > 0 {
		var kinds []string
		for _, f := range faults {
			kinds = append(kinds, f.Kind)
		}
		fmt.Printf("faults %s\n", strings.Join(kinds, ","))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	fmt.Println("stopping")
	return emu.Close()
}
