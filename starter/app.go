package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"

	tlog "go.temporal.io/sdk/log"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/searchattr"
	"github.com/imageflow/imageflow/workflows"
)

// app holds the command's configuration and the connections it opened (lazily: list needs no
// Temporal, migrate --via temporal needs no NATS).
type app struct {
	cfg            config.Config
	stdin          io.Reader // for confirmations; nil where nobody can answer
	stdout, stderr io.Writer
	tty            bool
	pollEvery      time.Duration

	tc client.Client
	nc *nats.Conn
	cc *cloud.Client
	// scheduling, when set, makes the job command create this schedule instead of a run.
	scheduling *schedulePlan
}

func newApp(cfg config.Config, stdout, stderr io.Writer, tty bool) *app {
	return &app{cfg: cfg, stdout: stdout, stderr: stderr, tty: tty, pollEvery: time.Second}
}

func (a *app) close() {
	if a.tc != nil {
		a.tc.Close()
	}
	if a.nc != nil {
		a.nc.Close()
	}
}

func (a *app) temporal(ctx context.Context) (client.Client, error) {
	if a.tc != nil {
		return a.tc, nil
	}
	opts, err := a.cfg.Temporal.ClientOptions()
	if err != nil {
		return nil, err
	}
	opts.Logger = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", a.cfg.Temporal.Address, err)
	}
	a.tc = tc
	return tc, nil
}

func (a *app) jetstream(tenant string) (jetstream.JetStream, error) {
	if a.nc == nil {
		nc, err := events.Connect(a.cfg.NATS, "imageflow-starter", tenant)
		if err != nil {
			return nil, err
		}
		a.nc = nc
	}
	return jetstream.New(a.nc)
}

func (a *app) cloud(ctx context.Context) (*cloud.Client, error) {
	if a.cc != nil {
		return a.cc, nil
	}
	creds, err := a.cfg.Cloud.Credentials()
	if err != nil {
		return nil, usageErr("reading the cloud needs an account: %v", err)
	}
	// Rate limits are waited out inside the client; say so, or a slow call looks hung.
	said := func(host string, wait time.Duration) {
		a.progress(fmt.Sprintf("the cloud (%s) is rate-limiting this account; waiting %s as it asked", host,
			wait.Round(time.Second)))
	}
	cc, err := cloud.New(ctx, creds, cloud.Options{Pacing: cloud.Pacing{OnRateLimit: said}})
	if err != nil {
		return nil, err
	}
	a.cc = cc
	return cc, nil
}

// accountCloud is the configured account's cloud for a check the starter may make before a job
// starts: nil and no error without an account (only --tenant; the worker decides then), nil and
// the error when the account is configured but cannot be used.
func (a *app) accountCloud(ctx context.Context) (*cloud.Client, error) {
	if _, err := a.cfg.Cloud.Credentials(); err != nil {
		return nil, nil
	}
	return a.cloud(ctx)
}

// jobFlags are shared by the commands that start workflows.
type jobFlags struct {
	via, taskQueue, tenant, eventID string
	wait, json, withoutWorker       bool
}

type flagAdder interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}

// addJobFlags adds the flags of a job that starts in Temporal or as a command event.
func (a *app) addJobFlags(fs flagAdder, j *jobFlags) {
	fs.StringVar(&j.via, "via", "temporal", "temporal: start the workflow directly; nats: publish the command event")
	fs.StringVar(&j.eventID, "event-id", "", "command event id with --via nats (default: random); the same id is "+
		"never run twice")
	a.addTemporalJobFlags(fs, j)
}

// addTemporalJobFlags adds the flags of a job that only starts in Temporal (it has no event).
func (a *app) addTemporalJobFlags(fs flagAdder, j *jobFlags) {
	j.via = "temporal"
	fs.BoolVar(&j.wait, "wait", false, "follow the run, show progress, print the result as JSON")
	fs.BoolVar(&j.json, "json", false, "print JSON (jobs print their ids or result as JSON either way; "+
		"bulk-migrate --dry-run prints its plan as JSON instead of a table)")
	fs.StringVar(&j.taskQueue, "task-queue", a.cfg.Temporal.TaskQueue, "task queue of the account's worker")
	fs.BoolVar(&j.withoutWorker, "start-without-worker", false,
		"start even when no worker polls the task queue (the job waits for one)")
	fs.StringVar(&j.tenant, "tenant", "", "account (tenant id) whose worker runs the job (default: the configured "+
		"account's)")
}

// regionsKnown refuses a request naming a region the configured account's catalog lacks, at
// once and with the catalog's list. Without a configured account it leaves that to the worker.
func (a *app) regionsKnown(ctx context.Context, input any) error {
	cc, err := a.cloud(ctx)
	if err != nil {
		return nil
	}
	if err := cc.CheckRegions(workflows.RegionsOf(input)...); err != nil {
		var ce *cloud.Error
		if errors.As(err, &ce) {
			return usageErr("%s", ce.Message)
		}
		return err
	}
	return nil
}

// tenantFor resolves the account the job belongs to: the flag, else the configured account.
//
// A --tenant is proven, not taken on its word: it must be the account of every credential that
// names one (the Temporal namespace a tenant's key opens, the NATS user) and of the cloud account
// when one is configured; a job for another account is refused before anything is sent.
func (a *app) tenantFor(ctx context.Context, j *jobFlags) (string, error) {
	tenant := j.tenant
	if tenant == "" {
		for _, t := range a.cfg.CredentialTenants() {
			tenant = t
		}
	}
	if tenant != "" {
		if err := a.cfg.CheckTenant(tenant); err != nil {
			return "", usageErr("--tenant %s: %v", tenant, err)
		}
	}
	if _, err := a.cfg.Cloud.Credentials(); err != nil {
		if tenant != "" {
			return tenant, nil
		}
		return "", usageErr("set --tenant, or configure the cloud account so the starter can look it up: %v", err)
	}
	cc, err := a.cloud(ctx)
	if err != nil {
		return "", err // the account is configured: say why it could not be used (credentials refused, ...)
	}
	if tenant != "" && tenant != cc.Tenant() {
		return "", usageErr("--tenant %s: the configured cloud account is %s's; credentials act only for their own "+
			"account", tenant, cc.Tenant())
	}
	return cc.Tenant(), nil
}

// job is one workflow to start.
type job struct {
	workflow, id, command string
	input                 any
	event                 any             // the command event's payload, when not input
	attrs                 func() []string // imageID, region, for search attributes
	targets, members      []string
}

// checkJob refuses what the job's flags and regions get wrong, before the cloud is asked anything
// else and before anything starts.
func (a *app) checkJob(ctx context.Context, j *jobFlags, input any) error {
	if j.via != "temporal" && j.via != "nats" {
		return usageErr("--via must be temporal or nats, not %q", j.via)
	}
	if j.eventID != "" {
		if err := events.CheckEventID(j.eventID); err != nil {
			return usageErr("--event-id: %v", err)
		}
	}
	return a.regionsKnown(ctx, input)
}

// submit starts or publishes the job, then follows it when asked.
func (a *app) submit(ctx context.Context, j *jobFlags, jb job) error {
	if err := a.checkJob(ctx, j, jb.input); err != nil {
		return err
	}
	if a.scheduling != nil {
		return a.createSchedule(ctx, j, jb)
	}
	switch j.via {
	case "temporal":
		tc, err := a.temporal(ctx)
		if err != nil {
			return err
		}
		if !j.withoutWorker && !a.workerPolls(ctx, j.taskQueue, startupTries) {
			return fmt.Errorf("%w: %v", errUsage, errNoWorker{j.taskQueue, a.cfg.Temporal.Namespace})
		}
		opts := workflows.StartOptions(jb.id, j.taskQueue)
		opts.StaticSummary, opts.StaticDetails = workflows.Describe(jb.input, "the starter, as "+requester())
		if searchattr.Present(ctx, tc, a.cfg.Temporal.Namespace) {
			at := jb.attrs()
			opts.TypedSearchAttributes = workflows.StartAttributes(at[0], at[1], jb.targets, jb.members)
		}
		asked := time.Now()
		run, err := tc.ExecuteWorkflow(ctx, opts, jb.workflow, jb.input)
		if err != nil {
			return fmt.Errorf("start %s: %w", jb.workflow, err)
		}
		a.sayIfEarlier(ctx, tc, run.GetID(), run.GetRunID(), asked)
		if !j.wait {
			return a.printJSON(
				map[string]string{"workflow_id": run.GetID(), "run_id": run.GetRunID(), "task_queue": j.taskQueue},
			)
		}
	case "nats":
		tenant, err := a.tenantFor(ctx, j)
		if err != nil {
			return err
		}
		js, err := a.jetstream(tenant)
		if err != nil {
			return err
		}
		id := j.eventID
		if id == "" {
			id = randomID()
		}
		if err := events.CheckEventID(id); err != nil {
			return usageErr("--event-id: %v", err)
		}
		payload := jb.event
		if payload == nil {
			payload = jb.input
		}
		if !j.withoutWorker && !a.tenantServed(ctx, js, tenant) {
			return fmt.Errorf("%w: no worker reads account %s's commands: the stream %s has no consumer for it, so "+
				"the event would wait unread; start a worker for the account (or pass --start-without-worker to "+
				"leave the event for one that comes later)", errUsage, tenant, a.cfg.NATS.Stream)
		}
		subjects := events.Subjects{Prefix: a.cfg.NATS.SubjectPrefix}
		sent, err := events.NewPublisher(js, subjects, "starter").Send(ctx, jb.command, id, tenant, payload)
		if err != nil {
			return err
		}
		if sent.Duplicate {
			fmt.Fprintf(a.stderr, "event %s was sent before (the stream keeps ids for its duplicate window); "+
				"nothing new was published: use a new --event-id for a new request\n", id)
		}
		if !j.wait {
			return a.printJSON(map[string]any{"event_id": id, "workflow_id": jb.id, "stream_seq": sent.Seq,
				"duplicate": sent.Duplicate})
		}
		return a.follow(ctx, jb.id, a.refusedBy(js, subjects, tenant, id, sent.Seq))
	default:
		return usageErr("--via must be temporal or nats, not %q", j.via)
	}
	return a.follow(ctx, jb.id, nil)
}

// tenantServed says whether a worker's consumer reads tenant's commands; when the stream or its
// consumers cannot be read, it answers yes rather than refuse on a guess.
func (a *app) tenantServed(ctx context.Context, js jetstream.JetStream, tenant string) bool {
	st, err := js.Stream(ctx, a.cfg.NATS.Stream)
	if err != nil {
		return true
	}
	served, err := events.Served(ctx, st, tenant)
	return served || err != nil
}

// refusedBy checks, while a run is awaited, whether the bridge dead-lettered the command at
// stream sequence seq: then no run will ever start, and the reason is the answer.
func (a *app) refusedBy(js jetstream.JetStream, s events.Subjects, tenant, id string,
	seq uint64) func(context.Context) error {
	return func(ctx context.Context) error {
		st, err := js.Stream(ctx, a.cfg.NATS.Stream)
		if err != nil {
			return nil // the run may still start; the wait goes on
		}
		dl, err := events.FindDeadLetter(ctx, st, s, tenant, seq)
		if err != nil || dl == nil {
			return nil
		}
		return fmt.Errorf("event %s was refused and dead-lettered (%s): %s", id, s.DeadLetter(tenant, seq), dl.Reason)
	}
}

// sayIfEarlier tells the user when the start joined a run that was already going: the same
// request while its job runs is that job, not a second one.
func (a *app) sayIfEarlier(ctx context.Context, tc client.Client, id, runID string, asked time.Time) {
	d, err := tc.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return
	}
	info := d.GetWorkflowExecutionInfo()
	if started := info.GetStartTime().AsTime(); started.Before(asked.Add(-time.Second)) {
		fmt.Fprintf(a.stderr, "joined run %s, running since %s (the same request); nothing new was started\n",
			id, started.UTC().Format(time.RFC3339))
	}
}

func (a *app) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, string(b))
	return err
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "starter-" + hex.EncodeToString(b[:])
}

func regionFlag(fs interface {
	StringVar(*string, string, string, string)
}, p *string, def string) {
	fs.StringVar(p, "region", def, "region, as the account's catalog names it (DFW, IAD, ... or RegionOne)")
}

// requester names who runs the starter, for the run's details in the UI.
func requester() string {
	name := "someone"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}
