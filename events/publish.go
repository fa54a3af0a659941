package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/config"
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

// PublishFact implements activities.FactPublisher: "cmd.*" types go to <prefix>.cmd.*, the
// rest to <prefix>.evt.*.
func (p *Publisher) PublishFact(ctx context.Context, f activities.Fact) error {
	subject := p.subjects.Evt(f.Type)
	if rest, ok := strings.CutPrefix(f.Type, "cmd."); ok {
		subject = p.subjects.Cmd(rest)
	}
	tenant := f.Tenant
	if tenant == "" {
		tenant = p.tenant
	}
	_, err := p.publish(ctx, subject, f.ID, tenant, f.Data)
	return err
}

// Command publishes a command for tenant's worker (starter --via nats, tests, other systems).
func (p *Publisher) Command(ctx context.Context, name, id, tenant string, data any) error {
	_, err := p.Send(ctx, name, id, tenant, data)
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
	return p.publish(ctx, p.subjects.Cmd(name), id, tenant, data)
}

func (p *Publisher) publish(ctx context.Context, subject, id, tenant string, data any) (Sent, error) {
	if err := CheckEventID(id); err != nil {
		return Sent{}, fmt.Errorf("event id %q: %w", truncate(id, 64), err)
	}
	ev, err := NewEvent(id, p.source, p.subjects.Type(subject), tenant, data)
	if err != nil {
		return Sent{}, err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return Sent{}, fmt.Errorf("encode event: %w", err)
	}
	ack, err := p.js.Publish(ctx, subject, b, jetstream.WithMsgID(id))
	if err != nil {
		return Sent{}, fmt.Errorf("publish %s %s: %w", subject, id, err)
	}
	return Sent{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// Connect dials NATS with the configured credentials and TLS, naming what went wrong.
func Connect(c config.NATS, name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
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
