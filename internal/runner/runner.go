// Package runner runs one imageflow worker for one account: the Temporal worker with every
// workflow and activity registered, and, when NATS is configured, the event bridge and the fact
// publisher. The worker command, devstack and the integration tests all start workers here.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/workflows"
)

// Options describe one worker.
type Options struct {
	Cloud     *cloud.Client // logged in as the worker's account
	Temporal  client.Client
	TaskQueue string
	// Namespace is TaskQueue's Temporal namespace (default "default"): the bridge reads the
	// queue's backlog there to pace itself.
	Namespace  string
	Activities activities.Config
	// ActivityConcurrency bounds activities at once (default 32).
	ActivityConcurrency int
	StopTimeout         time.Duration // default 30s
	// WaitNoticeAfter is how long a step waits out a fault before a job.waiting fact announces
	// it (default 10m; facts need JetStream).
	WaitNoticeAfter time.Duration

	// JetStream enables the bridge and fact publishing; nil runs without events.
	JetStream jetstream.JetStream
	// Events configures the bridge; the runner sets its tenant, task queue, validator and logger.
	Events events.BridgeConfig
	Logger *slog.Logger
}

// progressInterval is how often running activities' details (a copy's bytes, a task's status)
// reach Temporal, where the UI and the starter read them.
const progressInterval = 2 * time.Second

// Runner is a started worker.
type Runner struct {
	Worker worker.Worker
	Bridge *events.Bridge
	cancel context.CancelFunc
	done   sync.WaitGroup
	failed chan error
	log    *slog.Logger
}

// Start registers everything and starts polling; the bridge, if any, consumes in the background.
func Start(ctx context.Context, o Options) (*Runner, error) {
	if o.Cloud == nil || o.Temporal == nil || o.TaskQueue == "" {
		return nil, errors.New("runner needs a cloud client, a Temporal client and a task queue")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ActivityConcurrency <= 0 {
		o.ActivityConcurrency = 32
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 30 * time.Second
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	r := &Runner{log: o.Logger, failed: make(chan error, 1)}
	var facts activities.FactPublisher
	if o.JetStream != nil {
		facts = events.NewPublisher(o.JetStream, o.Events.Subjects, o.Cloud.Tenant())
	}
	if o.Activities.Runs == nil {
		o.Activities.Runs = o.Temporal
	}
	acts := activities.New(o.Cloud, o.Activities, facts)
	r.Worker = worker.New(o.Temporal, o.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: o.ActivityConcurrency,
		WorkerStopTimeout:                  o.StopTimeout,
		// The SDK sends an activity's heartbeat details to Temporal at most every 80% of its
		// heartbeat timeout, capped at a minute: a copy's bytes and rate reached the UI, status
		// and the starter's bar once a minute (0% for a minute, then 98%). Progress is what
		// heartbeat details are for here, so they go every few seconds.
		MaxHeartbeatThrottleInterval:     progressInterval,
		DefaultHeartbeatThrottleInterval: progressInterval,
		EnableSessionWorker:              false,
		Interceptors: []interceptor.WorkerInterceptor{activities.KeepAlive(),
			activities.WaitNotice(facts, o.Temporal, o.WaitNoticeAfter)},
	})
	workflows.Register(r.Worker)
	r.Worker.RegisterActivity(acts)
	if err := r.Worker.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal worker on %s: %w", o.TaskQueue, err)
	}
	if o.JetStream != nil {
		bc := o.Events
		bc.Tenant, bc.TaskQueue, bc.Validate, bc.Logger = o.Cloud.Tenant(), o.TaskQueue, events.CloudValidator(
			o.Cloud,
		), o.Logger
		if bc.MaxBacklog >= 0 {
			bc.Backlog = events.TaskQueueBacklog(o.Temporal.WorkflowService(), o.Namespace, o.TaskQueue)
		}
		b, err := events.NewBridge(ctx, o.JetStream, o.Temporal, bc)
		if err != nil {
			r.Worker.Stop()
			return nil, err
		}
		r.Bridge = b
		bctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		r.done.Add(1)
		go func() {
			defer r.done.Done()
			if err := b.Run(bctx); err != nil {
				o.Logger.Error("event bridge stopped", "error", err)
				r.failed <- err
			}
		}()
	}
	o.Logger.Info("worker started", "tenant", o.Cloud.Tenant(), "task_queue", o.TaskQueue, "events", o.JetStream != nil)
	return r, nil
}

// Failed yields the bridge's error if it stops on its own (its consumer lost for good): the
// worker must then exit non-zero, so that a supervisor restarts it, not run on deaf.
func (r *Runner) Failed() <-chan error { return r.failed }

// Stop stops taking events (those in hand are finished and acked), then stops the worker, which
// waits up to the stop timeout for running activities; unfinished ones are retried elsewhere
// after their heartbeat timeout.
func (r *Runner) Stop() {
	if r.cancel != nil {
		r.cancel()
		r.done.Wait()
	}
	r.Worker.Stop()
	r.log.Info("worker stopped")
}
