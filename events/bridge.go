package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/imageflow/imageflow/workflows"
)

// Temporal is what the bridge needs of a Temporal client.
type Temporal interface {
	ExecuteWorkflow(
		ctx context.Context,
		options client.StartWorkflowOptions,
		workflow any,
		args ...any,
	) (client.WorkflowRun, error)
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
	DescribeWorkflowExecution(
		ctx context.Context,
		workflowID, runID string,
	) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	QueryWorkflow(ctx context.Context, workflowID, runID, queryType string, args ...any) (converter.EncodedValue, error)
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (
		*workflowservice.ListWorkflowExecutionsResponse, error)
}

// Validator checks a command against the cloud before its workflow starts (say, that the image
// exists and may be exported), so a doomed request is dead-lettered with the reason instead of
// starting a run that can only fail. Return ErrRejected (wrapped) for a permanent refusal.
type Validator func(ctx context.Context, workflow string, input any) error

// ErrRejected marks a validation failure that no retry can fix.
var ErrRejected = errors.New("rejected")

// BridgeConfig sets up a bridge for one worker: one account, one task queue, one durable consumer.
type BridgeConfig struct {
	Subjects Subjects
	Stream   string
	// Replicas is the stream's replication in a NATS cluster (default 1; 3 in production, so a
	// node lost loses no event). The durable consumer follows the stream's.
	Replicas  int
	Tenant    string // the worker's account: its consumers read this account's subjects only
	TaskQueue string
	// Consumer is the name of the durable consumer of the tenant's commands (default
	// "imageflow-<tenant>"); offers, with AutoAccept, have their own, named Consumer + "-offers".
	Consumer   string
	MaxDeliver int           // default 5
	AckWait    time.Duration // default 30s
	NakDelay   time.Duration // redelivery delay while Temporal is unreachable (default 5s)
	// AutoAccept runs AcceptShare with AcceptPolicy for share.offered facts addressed to Tenant.
	AutoAccept   bool
	AcceptPolicy workflows.AcceptPolicy
	// SearchAttributes says the namespace has imageflow's search attributes, so starts set them.
	SearchAttributes bool
	Validate         Validator
	Concurrency      int // events handled at once (default 16)
	// CheckEvery is how often the bridge looks for its consumer (default 5s): a deleted stream
	// takes the consumer with it, and a waiting pull is not always told.
	CheckEvery time.Duration
	// RecoverFor is how long the bridge tries to re-create a lost stream and consumer before
	// Run returns the error (default 2m).
	RecoverFor time.Duration
	// Backlog, when set, paces the bridge by Temporal (see pacing.go): while MaxBacklog or more
	// workflow tasks wait on TaskQueue, events stay in the stream.
	Backlog BacklogReader
	// MaxBacklog is that limit (default 1000: tens of seconds of a worker's workflow tasks). The
	// runner sets no Backlog when it is negative, so events are never held.
	MaxBacklog int64
	// BacklogEvery is how often the backlog is read (default 2s).
	BacklogEvery time.Duration
	Logger       *slog.Logger
}

// Stats count what the bridge did; safe to read at any time.
type Stats struct {
	Received, Started, Signalled, Duplicates, Skipped, DeadLettered, Retried atomic.Int64
	// Held counts events that waited in hand for Temporal's backlog to fall.
	Held atomic.Int64
}

// Bridge turns command events into workflow starts and signals. It acks an event only after
// Temporal accepted it (or said the run exists), naks it while Temporal is unreachable, and
// dead-letters what can never be handled.
type Bridge struct {
	js     jetstream.JetStream
	t      Temporal
	cfg    BridgeConfig
	cons   []jetstream.Consumer
	stream jetstream.Stream
	log    *slog.Logger
	Stats  Stats
	// signals spaces decision signals per share and member (see signalSpacing).
	signals spacer
	// pace holds events while Temporal is behind; nil without a BacklogReader.
	pace *pacer
	// mu guards stream and cons, which ensure replaces when they were lost.
	mu     sync.Mutex
	health atomic.Pointer[error]
}

// EnsureStream makes sure the stream holding commands, facts and dead letters exists with the
// settings imageflow needs: a two-minute duplicate window for publishers' message ids, direct
// gets (a sender reads its dead letter by subject), replicas nodes of a cluster (at least 1). A
// stream that has them is only read. One that lacks them is created or updated, which in a
// tenant's NATS account only its admin may do (SetUpStream, devstack): a worker or sender is
// refused, and the error then says what is missing and who makes it.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string, s Subjects,
	replicas int) (jetstream.Stream, error) {
	want := StreamConfig(name, s, replicas)
	st, err := js.Stream(ctx, name)
	switch {
	case err == nil && streamServes(st.CachedInfo().Config, want):
		return st, nil
	case err == nil:
		if st, err = js.UpdateStream(ctx, want); err != nil {
			err = Refused(js.Conn(), "$JS.API.STREAM.UPDATE."+name, "update the stream's settings", err)
			return nil, notSetUp(name, "its settings are not imageflow's", err)
		}
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if st, err = js.CreateStream(ctx, want); err != nil {
			err = Refused(js.Conn(), "$JS.API.STREAM.CREATE."+name, "create the stream", err)
			return nil, notSetUp(name, "it does not exist in this NATS account", err)
		}
	default:
		err = Refused(js.Conn(), "$JS.API.STREAM.INFO."+name, "read the stream's settings", err)
		return nil, fmt.Errorf("read stream %s: %w", name, err)
	}
	return st, nil
}

// StreamConfig is the stream imageflow needs.
func StreamConfig(name string, s Subjects, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Subjects:    []string{s.Prefix + ".cmd.>", s.Prefix + ".evt.>", s.DLQ()},
		Storage:     jetstream.FileStorage,
		Duplicates:  2 * time.Minute,
		MaxAge:      7 * 24 * time.Hour,
		Replicas:    max(replicas, 1),
		AllowDirect: true,
	}
}

// notSetUp explains a stream this user could not make right: a refusal means an operator's step
// is missing, anything else is said as it is.
func notSetUp(name, what string, err error) error {
	var pe *PermissionError
	if errors.As(err, &pe) {
		return fmt.Errorf("stream %s: %s, and %w; the account's admin sets it up (go run ./starter setup-stream, "+
			"or devstack does it)", name, what, err)
	}
	return fmt.Errorf("stream %s: %s, and making it so failed: %w", name, what, err)
}

// streamServes says an existing stream's settings are those imageflow needs.
func streamServes(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Duplicates == want.Duplicates &&
		have.MaxAge == want.MaxAge && have.Replicas == want.Replicas && have.AllowDirect
}

// NewBridge creates or updates the stream and the worker's durable consumer.
func NewBridge(ctx context.Context, js jetstream.JetStream, t Temporal, cfg BridgeConfig) (*Bridge, error) {
	if cfg.Tenant == "" || cfg.TaskQueue == "" {
		return nil, errors.New("bridge needs the worker's tenant and task queue")
	}
	if err := workflows.CheckTenant(cfg.Tenant); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	if cfg.Consumer == "" {
		cfg.Consumer = "imageflow-" + cfg.Tenant
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 5
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.NakDelay <= 0 {
		cfg.NakDelay = 5 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 5 * time.Second
	}
	if cfg.RecoverFor <= 0 {
		cfg.RecoverFor = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBacklog <= 0 {
		cfg.MaxBacklog = 1000
	}
	if cfg.BacklogEvery <= 0 {
		cfg.BacklogEvery = 2 * time.Second
	}
	b := &Bridge{js: js, t: t, cfg: cfg, log: cfg.Logger}
	if cfg.Backlog != nil {
		b.pace = &pacer{read: cfg.Backlog, limit: cfg.MaxBacklog, every: cfg.BacklogEvery, log: cfg.Logger}
	}
	if err := b.ensure(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// ensure creates or updates the stream and this worker's durable consumers: one of its
// commands, and with AutoAccept one of the offers addressed to it. Each has one filter subject,
// which NATS then sees in the request's own subject, so permissions can allow a worker's user to
// create exactly these consumers and no consumer of another account's subjects.
func (b *Bridge) ensure(ctx context.Context) error {
	cfg := b.cfg
	st, err := EnsureStream(ctx, b.js, cfg.Stream, cfg.Subjects, cfg.Replicas)
	if err != nil {
		return err
	}
	filters := map[string]string{cfg.Consumer: cfg.Subjects.Commands(cfg.Tenant)}
	names := []string{cfg.Consumer}
	if cfg.AutoAccept {
		filters[cfg.Consumer+"-offers"] = cfg.Subjects.OffersTo(cfg.Tenant)
		names = append(names, cfg.Consumer+"-offers")
	}
	var cons []jetstream.Consumer
	for _, name := range names {
		c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       name,
			FilterSubject: filters[name],
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    cfg.MaxDeliver,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			MaxAckPending: cfg.Concurrency * 4,
			// A sender reads this to know the tenant has a worker (see Served).
			Metadata: map[string]string{consumerTenantKey: cfg.Tenant},
		})
		if err != nil {
			err = Refused(b.js.Conn(), "$JS.API.CONSUMER.CREATE."+cfg.Stream+"."+name+"."+filters[name],
				"create the worker's consumer", err)
			return fmt.Errorf("create or update consumer %s on %s: %w", name, cfg.Stream, err)
		}
		cons = append(cons, c)
	}
	b.mu.Lock()
	b.stream, b.cons = st, cons
	b.mu.Unlock()
	return nil
}

// Run handles events until ctx ends. Then it stops taking new ones, lets the ones in hand finish
// (each is acked, nakked or dead-lettered) and returns; events it never took stay unacked and are
// redelivered to the next worker. When the consumer disappears under it (the consumer or the
// whole stream deleted, by hand or by a restore), it re-creates both as at start and goes on;
// when it cannot for RecoverFor, it returns the error, so the worker exits and its supervisor
// restarts it rather than keep a worker that hears nothing.
func (b *Bridge) Run(ctx context.Context) error {
	stopWatch, err := b.watchMaxDeliveries()
	if err != nil {
		return err
	}
	defer stopWatch()
	if b.pace != nil {
		pctx, stopPacing := context.WithCancel(ctx)
		defer stopPacing()
		go b.pace.run(pctx)
	}
	sem := make(chan struct{}, b.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		lost := b.consume(ctx, sem, &wg)
		if ctx.Err() != nil {
			return nil
		}
		b.setHealth(fmt.Errorf("event consumer %s lost: %w", b.cfg.Consumer, lost))
		b.log.Error("event consumer lost; re-creating the stream and the consumer", "error", lost)
		if err := b.recover(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			b.setHealth(err)
			return err
		}
		b.setHealth(nil)
		b.log.Info("event consumer re-created; reading events again", "consumer", b.cfg.Consumer)
	}
}

// consume reads every consumer's events and hands each to a handler until ctx ends (nil) or a
// consumer is lost (the reason).
func (b *Bridge) consume(ctx context.Context, sem chan struct{}, wg *sync.WaitGroup) error {
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	cons := b.consumers()
	done := make(chan error, len(cons))
	for _, c := range cons {
		go func() { done <- b.read(rctx, c, sem, wg) }()
	}
	first := <-done
	stop()
	for range len(cons) - 1 {
		<-done
	}
	if ctx.Err() != nil {
		return nil
	}
	return first
}

// read hands one consumer's events to handlers until ctx ends (nil) or the consumer is lost.
func (b *Bridge) read(ctx context.Context, c jetstream.Consumer, sem chan struct{}, wg *sync.WaitGroup) error {
	name := c.CachedInfo().Name
	it, err := c.Messages(jetstream.PullMaxMessages(b.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("consume %s: %w", name, err)
	}
	lost := make(chan error, 1)
	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go func() {
		// A deleted stream takes its consumer along without a word to a waiting pull, so the
		// iterator alone may never notice: look for the consumer itself now and then.
		if err := b.watchConsumer(wctx, c); err != nil {
			lost <- err
		}
		it.Stop()
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
				errors.Is(err, jetstream.ErrConsumerNotFound) {
				select {
				case why := <-lost:
					return why
				default:
					return err
				}
			}
			b.log.Warn("reading events failed; retrying", "error", err)
			time.Sleep(time.Second)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, settled := b.judge(msg)
			if settled != nil {
				// Wrong in itself: said at once, not after waiting out Temporal's backlog.
				b.finish(msg, func(context.Context) outcome { return *settled })
				return
			}
			if !b.admit(ctx, sem, msg) {
				_ = msg.Nak() // stopping: the event goes back to the stream for the next worker
				return
			}
			defer func() { <-sem }()
			b.finish(msg, func(hctx context.Context) outcome {
				hctx, span := v.receive(hctx, msg.Subject())
				defer span.End()
				o := b.decide(hctx, v)
				span.SetAttributes(attribute.String("imageflow.outcome", o.name()))
				return o
			})
		}()
	}
}

// admit waits until msg may be handled: a handler is free and Temporal's backlog is under its
// limit. Meanwhile it tells JetStream the event is in progress, or its ack wait would run out and
// the redelivery count toward MaxDeliver: a wait of a few ack waits would dead-letter an event
// with nothing wrong with it. How many wait at once is bounded by the consumer's MaxAckPending.
// False when ctx ends first.
func (b *Bridge) admit(ctx context.Context, sem chan struct{}, msg jetstream.Msg) bool {
	tick := time.NewTicker(min(b.cfg.BacklogEvery, b.cfg.AckWait/3))
	defer tick.Stop()
	counted, touched := false, time.Now()
	for {
		free := sem
		if b.pace.holding() {
			free = nil // a nil channel is never ready: only the tick or ctx ends this wait
			if !counted {
				counted = true
				b.Stats.Held.Add(1)
			}
		}
		select {
		case free <- struct{}{}:
			return true
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if time.Since(touched) >= b.cfg.AckWait/3 {
			_ = msg.InProgress()
			touched = time.Now()
		}
	}
}

// watchConsumer returns when ctx ends (nil) or c is found missing (why).
func (b *Bridge) watchConsumer(ctx context.Context, c jetstream.Consumer) error {
	tick := time.NewTicker(b.cfg.CheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, b.cfg.CheckEvery)
		_, err := c.Info(cctx)
		cancel()
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
			errors.Is(err, jetstream.ErrConsumerDeleted) {
			return err
		}
	}
}

// recover re-creates the stream and the consumer, trying again with backoff for RecoverFor. It
// waits a second first: a stream made again at once, while the server still removes the deleted
// one's files, was seen to take the name and then answer no publish (embedded nats-server 2.15).
func (b *Bridge) recover(ctx context.Context) error {
	give := time.Now().Add(b.cfg.RecoverFor)
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		err := b.ensure(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(give) {
			return fmt.Errorf("event consumer %s could not be re-created for %s: %w", b.cfg.Consumer,
				b.cfg.RecoverFor, err)
		}
		wait = min(2*wait, 5*time.Second)
		b.log.Warn("re-creating the event consumer failed; trying again", "error", err, "in", wait)
	}
}

func (b *Bridge) consumers() []jetstream.Consumer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cons
}

func (b *Bridge) currentStream() jetstream.Stream {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stream
}

// Healthy is nil while the bridge reads events, and the reason while it does not (its consumer
// was lost and is being re-created, or could not be).
func (b *Bridge) Healthy() error {
	if p := b.health.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *Bridge) setHealth(err error) {
	if err == nil {
		b.health.Store(nil)
		return
	}
	b.health.Store(&err)
}

// outcome of one event.
type outcome struct {
	retry  bool   // nak: try again later
	dead   string // dead-letter with this reason
	reason string // log line for acks
}

// name is the outcome in a word, for the bridge's span.
func (o outcome) name() string {
	switch {
	case o.retry:
		return "redeliver"
	case o.dead != "":
		return "dead-letter"
	}
	return "ack"
}

// finish decides msg and settles it, in a context of its own: handling outlives the bridge's on
// purpose, as an event taken is finished, not abandoned.
func (b *Bridge) finish(msg jetstream.Msg, decide func(context.Context) outcome) {
	hctx, cancel := context.WithTimeout(context.Background(), b.cfg.AckWait)
	defer cancel()
	b.handle(hctx, msg, decide(hctx))
}

// handle settles msg as o says: ack, nak for a later delivery, or dead-letter.
func (b *Bridge) handle(ctx context.Context, msg jetstream.Msg, o outcome) {
	b.Stats.Received.Add(1)
	meta, _ := msg.Metadata()
	switch {
	case o.retry && meta != nil && int(meta.NumDelivered) >= b.cfg.MaxDeliver:
		b.deadLetter(ctx, msg, fmt.Sprintf("gave up after %d deliveries: %s", meta.NumDelivered, o.reason))
	case o.retry:
		b.Stats.Retried.Add(1)
		b.log.Warn("event will be redelivered", "subject", msg.Subject(), "reason", o.reason)
		_ = msg.NakWithDelay(b.cfg.NakDelay)
	case o.dead != "":
		b.deadLetter(ctx, msg, o.dead)
	default:
		if err := msg.Ack(); err != nil {
			b.log.Warn("ack failed; the event will come again and be found a duplicate", "error", err)
		}
	}
}

// verdict is an event judged sound in itself: what it asks Temporal for, its id and type, and
// the trace it came with.
type verdict struct {
	s                       start
	eventID, eventType      string
	traceParent, traceState string
}

// judge reads what msg's subject and bytes say, asking Temporal nothing. An event wrong in
// itself (or not this worker's) comes back settled, so it never waits behind the pacing hold.
func (b *Bridge) judge(msg jetstream.Msg) (verdict, *outcome) {
	settled := func(o outcome) (verdict, *outcome) { return verdict{}, &o }
	route, err := b.cfg.Subjects.Parse(msg.Subject())
	if err != nil {
		return settled(outcome{dead: err.Error()})
	}
	if !b.addressedTo(route) {
		// The consumers' filters let nothing else through; a message that comes anyway is not
		// this worker's to judge.
		b.Stats.Skipped.Add(1)
		return settled(outcome{reason: "subject " + msg.Subject() + " is not addressed to this worker"})
	}
	ev, err := ParseEvent(msg.Data())
	if err != nil {
		return settled(outcome{dead: err.Error()})
	}
	if want := route.Type(); ev.Type != want {
		return settled(outcome{
			dead: fmt.Sprintf("event type %q does not match subject %s (want %q)", ev.Type, msg.Subject(), want),
		})
	}
	if ev.Tenant != route.Tenant {
		return settled(outcome{dead: fmt.Sprintf("tenant attribute %q disagrees with subject %s, which is "+
			"account %s's: the subject is what NATS permissions guard, so both must name the same account",
			truncate(ev.Tenant, 64), msg.Subject(), route.Tenant)})
	}
	var s start
	if route.Name == EvtShareOffered {
		s, err = offerToAccept(ev, route, b.cfg.AcceptPolicy)
	} else {
		s, err = command(route, ev, b.cfg.AcceptPolicy)
	}
	if err != nil {
		return settled(outcome{dead: plain(err)})
	}
	v := verdict{s: s, eventID: ev.ID, eventType: ev.Type}
	v.traceParent, v.traceState = traceOf(ev, msg.Headers())
	return v, nil
}

// decide carries a sound event to Temporal: a signal, or a validated start.
func (b *Bridge) decide(ctx context.Context, v verdict) outcome {
	s := v.s
	if s.signalTo != "" {
		return b.signal(ctx, s)
	}
	if b.cfg.Validate != nil {
		if err := b.cfg.Validate(ctx, s.workflow, s.input); err != nil {
			if errors.Is(err, ErrRejected) || nonRetryable(err) {
				return outcome{dead: strings.TrimPrefix(plain(err), ErrRejected.Error()+": ")}
			}
			return outcome{retry: true, reason: "validation: " + err.Error()}
		}
	}
	return b.start(ctx, s, v.eventID)
}

// addressedTo says the route is this worker's: a command for its account, or an offer to it.
func (b *Bridge) addressedTo(r Route) bool {
	if r.Command {
		return r.Tenant == b.cfg.Tenant
	}
	return r.Name == EvtShareOffered && r.Other == b.cfg.Tenant && b.cfg.AutoAccept
}

// transient reports an error that a later attempt may not meet.
func transient(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var busy *serviceerror.ResourceExhausted
	var ne net.Error
	return errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &busy) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// plain is an error's message without Temporal's "(type: ..., retryable: ...)" suffix.
func plain(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return err.Error()
}

func nonRetryable(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.NonRetryable()
}
