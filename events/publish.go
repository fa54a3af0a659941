package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/workflows"
)

// Publisher sends facts and commands as CloudEvents; the event id doubles as the JetStream
// message id, so a retried publish is dropped by the stream's duplicate window.
type Publisher struct {
	js       jetstream.JetStream
	subjects Subjects
	source   string
	tenant   string
}

// NewPublisher publishes as tenant's worker.
func NewPublisher(js jetstream.JetStream, s Subjects, tenant string) *Publisher {
	return &Publisher{js: js, subjects: s, source: "imageflow/worker/" + tenant, tenant: tenant}
}

// PublishFact implements activities.FactPublisher: a fact goes out on the publishing worker's
// own subject, an offer with its member at the end; the one command a worker sends, a member's
// decision, goes to the producer's commands with the publishing worker at the end (see Subjects).
func (p *Publisher) PublishFact(ctx context.Context, f activities.Fact) error {
	subject, tenant := p.subjects.Evt(p.tenant, f.Type), p.tenant
	switch {
	case f.Type == activities.CommandMemberStatus:
		if f.Tenant == "" {
			return fmt.Errorf("publish %s %s: no producer to address it to", f.Type, f.ID)
		}
		subject, tenant = p.subjects.MemberStatus(f.Tenant, p.tenant), f.Tenant
	case f.Type == activities.FactShareOffered:
		if f.To == "" {
			return fmt.Errorf("publish %s %s: no member to address it to", f.Type, f.ID)
		}
		subject = p.subjects.Offer(p.tenant, f.To)
	}
	route, err := p.subjects.Parse(subject)
	if err != nil {
		return err
	}
	_, err = p.publish(ctx, subject, route.Type(), f.ID, tenant, f.Data)
	return err
}

// Command publishes a command for tenant's worker (starter --via nats, tests, other systems).
func (p *Publisher) Command(ctx context.Context, name, id, tenant string, data any) error {
	_, err := p.Send(ctx, name, id, tenant, data)
	return err
}

// Decide publishes member ms.Member's decision on producer's offer, on the subject that names
// the member (see Subjects.MemberStatus): what an AcceptShare run sends, or a system that
// answers offers itself.
func (p *Publisher) Decide(ctx context.Context, id, producer string, ms MemberStatus) error {
	for _, t := range []string{producer, ms.Member} {
		if err := workflows.CheckTenant(t); err != nil {
			return fmt.Errorf("member-status %s: %w", truncate(id, 64), err)
		}
	}
	_, err := p.publish(ctx, p.subjects.MemberStatus(producer, ms.Member), "imageflow.cmd."+CmdMemberStatus, id,
		producer, ms)
	return err
}

// Sent is what the stream said of a published command.
type Sent struct {
	// Seq is the command's sequence in the stream; its dead letter, if any, is on
	// Subjects.DeadLetter(Seq) (see FindDeadLetter).
	Seq uint64
	// Duplicate says the stream already held an event with this id (inside its duplicate
	// window): nothing new was stored, and Seq is the earlier one's.
	Duplicate bool
}

// Send publishes a command like Command and reports where it landed.
func (p *Publisher) Send(ctx context.Context, name, id, tenant string, data any) (Sent, error) {
	if err := workflows.CheckTenant(tenant); err != nil {
		return Sent{}, fmt.Errorf("command %s %s: %w", name, truncate(id, 64), err)
	}
	return p.publish(ctx, p.subjects.Cmd(tenant, name), "imageflow.cmd."+name, id, tenant, data)
}

func (p *Publisher) publish(ctx context.Context, subject, typ, id, tenant string, data any) (Sent, error) {
	if err := CheckEventID(id); err != nil {
		return Sent{}, fmt.Errorf("event id %q: %w", truncate(id, 64), err)
	}
	ev, err := NewEvent(id, p.source, typ, tenant, data)
	if err != nil {
		return Sent{}, err
	}
	ev.TraceParent, ev.TraceState = traceFields(ctx)
	b, err := json.Marshal(ev)
	if err != nil {
		return Sent{}, fmt.Errorf("encode event: %w", err)
	}
	msg := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{}}
	traceHeader(msg.Header, ev)
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if err != nil {
		err = Refused(p.js.Conn(), subject, "publish "+typ, err)
		return Sent{}, fmt.Errorf("publish %s %s: %w", subject, id, err)
	}
	return Sent{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// Connect dials NATS with the configured credentials and TLS, naming what went wrong. Replies
// come to tenant's own inboxes (_INBOX.<tenant>.*), so NATS permissions can let each account's
// users hear only their own (see WorkerPermissions).
func Connect(c config.NATS, name, tenant string, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.CustomInboxPrefix(InboxPrefix(tenant))}
	opts = append(opts, extra...)
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password.Value()))
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCert != "" || c.CAFile != "" {
		tc, err := config.ClientTLS(c.TLSCert, c.TLSKey, c.CAFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(c.URL, opts...)
	switch {
	case refusedCredentials(err):
		return nil, fmt.Errorf(
			"NATS at %s refused the credentials (check IMAGEFLOW_NATS_USER and IMAGEFLOW_NATS_PASSWORD or IMAGEFLOW_NATS_CREDS_FILE): %w",
			c.URL,
			err,
		)
	case err != nil:
		return nil, fmt.Errorf("connect to NATS at %s: %w", c.URL, err)
	}
	return nc, nil
}

// InboxPrefix is where tenant's connections get their replies.
func InboxPrefix(tenant string) string { return "_INBOX." + tenant }

// refusedCredentials says the server turned the connection's credentials down: wrong, expired or
// revoked (nats.go maps the server's -ERR text to these errors).
func refusedCredentials(err error) bool {
	for _, e := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
