package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/imageflow/imageflow/events"
)

// errNoWorker is a job that nothing would run: no worker polls its task queue.
type errNoWorker struct{ queue, namespace string }

func (e errNoWorker) Error() string {
	return fmt.Sprintf("no worker polls task queue %q in namespace %s, so nothing would run this job: start "+
		"the account's worker, or name the queue it serves with --task-queue or IMAGEFLOW_TEMPORAL_TASK_QUEUE "+
		"(devstack's workers serve imageflow-demo and imageflow-partner; its summary prints the variables); "+
		"--start-without-worker starts it anyway, to wait for one", e.queue, e.namespace)
}

// workerPolls reports whether any worker polled queue lately, as Temporal tells it. Before a
// start, a worker that has just started may not have polled yet, so a "none" is asked again
// for a few seconds (tries); a status asks once, as it is asked again at every poll anyway.
// When Temporal cannot say, it answers yes: the check must never be why a job does not start.
func (a *app) workerPolls(ctx context.Context, queue string, tries int) bool {
	tc, err := a.temporal(ctx)
	if err != nil {
		return true
	}
	for try := 0; ; try++ {
		resp, err := tc.DescribeTaskQueue(ctx, queue, enums.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil || len(resp.GetPollers()) > 0 {
			return true
		}
		if try+1 >= tries {
			return false
		}
		select {
		case <-ctx.Done():
			return true
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// startupTries spaces a few seconds of asking over a worker's start-up.
const startupTries = 13

// noWorkerNote is the warning for a run whose queue no worker polls ("" when one does).
func (a *app) noWorkerNote(ctx context.Context, queue string) string {
	if queue == "" || a.workerPolls(ctx, queue, 1) {
		return ""
	}
	return fmt.Sprintf("no worker polls task queue %q: this run waits until one does (start the account's "+
		"worker for that queue)", queue)
}

// unread lists commands in the stream that no worker reads: an account with no consumer (a
// mistyped tenant in a raw `nats pub`, or a worker never started). It is the operator's view: it
// reads every account's command subjects, which a tenant's NATS user may not.
func (a *app) unread(ctx context.Context, args []string) error {
	fs := a.flags("unread", "[--json]")
	var o out
	o.flag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	js, err := a.jetstream("admin")
	if err != nil {
		return err
	}
	st, err := js.Stream(ctx, a.cfg.NATS.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", a.cfg.NATS.Stream, err)
	}
	list, err := events.Unread(ctx, st, events.Subjects{Prefix: a.cfg.NATS.SubjectPrefix})
	if err != nil {
		return fmt.Errorf("%w (this is the operator's view: run it as NATS's admin user)", err)
	}
	if list == nil {
		list = []events.UnreadCommands{}
	}
	return a.print(o, list, func() [][]string {
		rows := [][]string{{"TENANT", "SUBJECT", "MESSAGES"}}
		for _, u := range list {
			for _, s := range slices.Sorted(maps.Keys(u.Subjects)) {
				rows = append(rows, []string{u.Tenant, s, fmt.Sprint(u.Subjects[s])})
			}
		}
		if len(list) == 0 {
			fmt.Fprintln(a.stderr, "every account with commands in the stream has a worker's consumer")
		}
		return rows
	})
}

// setupStream is the operator's step for an account: with the account's admin credentials
// (IMAGEFLOW_NATS_USER=admin-<tenant>) it makes the account's stream with imageflow's settings,
// or brings an existing one to them. Workers and senders may not; a worker that finds the stream
// missing or wrong says so and names this command.
func (a *app) setupStream(ctx context.Context, args []string) error {
	fs := a.flags("setup-stream", "(as the account's NATS admin)")
	if err := parse(fs, args); err != nil {
		return err
	}
	js, err := a.jetstream("admin")
	if err != nil {
		return err
	}
	st, err := events.EnsureStream(ctx, js, a.cfg.NATS.Stream, events.Subjects{Prefix: a.cfg.NATS.SubjectPrefix},
		a.cfg.NATS.StreamReplicas)
	if err != nil {
		return err
	}
	c := st.CachedInfo().Config
	fmt.Fprintf(a.stdout, "stream %s ready: subjects %s, %d replica(s), kept %s\n", c.Name,
		strings.Join(c.Subjects, " "), c.Replicas, c.MaxAge)
	return nil
}
