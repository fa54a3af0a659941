// Command starter runs imageflow jobs, follows and cancels runs, and does every quickstart
// operation on the cloud directly:
//
//	go run ./starter migrate      --image ID --from DFW --to IAD,LON [--share-with T] [--deadline 6h] [--wait]
//	go run ./starter bulk-migrate --from DFW --to IAD [--tag web] [--name-pattern 'web-*'] [--dry-run] [--wait]
//	go run ./starter share        --image ID --region DFW --members 100002 [--deadline 72h] [--wait]
//	go run ./starter distribute   --image ID --from DFW --family web-base --version 42 --to IAD,LON [--accounts T]
//	go run ./starter prune        --family web-base --keep 3 --regions IAD,LON [--dry-run]
//	go run ./starter accept       --image ID --region DFW [--producer 100001] [--wait]
//	go run ./starter reject       --image ID --region DFW [--producer 100001] [--wait]
//	go run ./starter status       ID|UI-URL [--follow]
//	go run ./starter wait         ID|UI-URL
//	go run ./starter unread       [--json]
//	go run ./starter setup-stream
//	go run ./starter runs         [--kind migrate] [--status running] [--image ID] [--region IAD] [--since 24h]
//	go run ./starter cancel       ID|UI-URL [--wait]
//	go run ./starter schedule     create --id ID --cron '0 2 * * *' bulk-migrate --from DFW --to IAD ...
//	go run ./starter list         --region DFW [--name N] [--name-pattern P] [--tag T] [--visibility shared]
//	go run ./starter get          --image ID --region DFW
//	go run ./starter update       --image ID --region DFW [--set k=v ...] [--remove k ...] [--tag t ...]
//	go run ./starter tags         --image ID --region DFW [--add t,...] [--remove t,...]
//	go run ./starter members      --image ID --region DFW [--member TENANT]
//	go run ./starter unshare      --image ID --region DFW --members TENANT[,...]
//	go run ./starter delete       --image ID --region DFW [--yes]
//	go run ./starter export       --image ID --region DFW [--container exports]
//	go run ./starter import       --region DFW --container C --object web.vhd --name web-copy
//
// Jobs start in Temporal directly (--via temporal, the default) or as command events (--via
// nats). --wait follows the run and prints its result as JSON; the exit code is 0 only on
// success. The cloud commands print tables; --json prints JSON for scripts. Configuration comes
// from the same IMAGEFLOW_* variables as the worker.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"
	"golang.org/x/term"

	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/internal/tracing"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the job or the call failed
	exitUsage  = 2 // the command line or configuration is wrong
	// exitDetached: the starter stopped following (Ctrl-C on --wait) while the job goes on.
	exitDetached = 3
)

// errDetached is a wait given up by the user; the run it followed goes on.
type errDetached struct{ id string }

func (e errDetached) Error() string {
	return fmt.Sprintf("stopped following run %s; the job goes on. Follow it again with "+
		"`starter wait %s`, or stop it with `starter cancel %s`", e.id, e.id, e.id)
}

func main() {
	cfg, err := config.LoadWithoutAccount()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starter: configuration:", err)
		os.Exit(exitUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := newApp(cfg, os.Stdout, os.Stderr, isTerminal(os.Stdout))
	if isTerminal(os.Stdin) {
		a.stdin = os.Stdin
	}
	os.Exit(traced(ctx, "imageflow-starter", os.Args[1:], a.run))
}

// traced runs the command as the root span of a trace when the OTEL_* environment asks for
// traces: a job it starts (through Temporal or an event) continues that trace.
func traced(ctx context.Context, service string, args []string, run func(context.Context, []string) int) int {
	stop, err := tracing.Start(ctx, service)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starter:", err)
		return exitUsage
	}
	name := "starter"
	if len(args) > 0 {
		name += " " + args[0]
	}
	sctx, span := otel.Tracer("github.com/imageflow/imageflow/starter").Start(ctx, name)
	code := run(sctx, args)
	span.End()
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = stop(fctx)
	return code
}

// isTerminal asks the terminal itself: a character device is not enough (/dev/null is one).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

const usage = `usage: starter <command> [flags]

jobs (Temporal workflows):
  migrate       copy an image to other regions (MigrateImage)
  bulk-migrate  migrate every image that matches a filter; --dry-run prints the plan (BulkMigrate)
  share         share an image with other accounts and wait for them (ShareImage)
  distribute    one version of an image family to regions and accounts, marked latest, old ones pruned
                (DistributeImage)
  prune         keep a family's newest versions or a lineage's newest copies per region; --dry-run
                prints the plan (PruneImages)
  accept        accept an image shared with this account (AcceptShare)
  reject        reject an image shared with this account (AcceptShare)

standing policies (Temporal Schedules):
  schedule      create, list, describe, pause, unpause, trigger or delete a schedule that runs a job
                (migrate, bulk-migrate, share, distribute) by cron or interval

runs:
  status        show a run's step, progress, rate and ETA; a finished one's new image ids
  wait          follow a run, however it was started, to its end and print its result
  runs          list runs by kind, status, image, region and start time
  cancel        cancel a run; a migration cleans up per its cleanup policy
  unread        commands in the stream that no worker reads (a mistyped tenant); the operator's view
  setup-stream  make the account's stream (as its NATS admin: the operator's step before its workers)

the cloud, directly:
  list          list images in a region
  get           show one image
  update        set or remove properties and tags, rename
  tags          add or remove tags
  members       list an image's members, or show one
  unshare       remove members from an image
  delete        delete an image (refuses protected ones; asks, or --yes)
  export        export an image to a Cloud Files container and wait
  import        import a VHD from a Cloud Files container as a new image and wait

"starter <command> -h" lists a command's flags. Configuration: IMAGEFLOW_* variables
("go run ./worker -h" lists them).
`

// errUsage marks a command-line mistake (exit 2).
var errUsage = errors.New("usage")

func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(a.stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmds := map[string]func(context.Context, []string) error{
		"migrate": a.migrate, "share": a.share, "accept": a.accept("accepted"), "reject": a.accept("rejected"),
		"bulk-migrate": a.bulkMigrate, "status": a.status, "wait": a.wait, "runs": a.runs, "cancel": a.cancel,
		"unread": a.unread, "setup-stream": a.setupStream,
		"list": a.list, "get": a.get, "update": a.update, "tags": a.tags, "members": a.members,
		"unshare": a.unshare, "delete": a.remove, "export": a.export, "import": a.importVHD,
		"schedule": a.schedule, "distribute": a.distribute, "prune": a.prune,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(a.stderr, "starter: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	err := cmd(ctx, args[1:])
	defer a.close()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(errDetached)):
		fmt.Fprintf(a.stderr, "\nstarter %s: %v\n", args[0], err)
		return exitDetached
	case errors.Is(err, errUsage):
		fmt.Fprintf(a.stderr, "starter %s: %v\n", args[0], strings.TrimPrefix(err.Error(), "usage: "))
		return exitUsage
	}
	fmt.Fprintf(a.stderr, "starter %s: %v\n", args[0], err)
	return exitFailed
}

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// parseLeading parses the flags before the first argument and leaves the rest in fs.Args().
func parseLeading(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	return nil
}

// flags makes a command's flag set whose errors are usage errors.
func (a *app) flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "usage: starter %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := parseLeading(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// list is a repeatable or comma-separated flag.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
