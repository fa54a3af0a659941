package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PermissionError is NATS refusing a user something its account's authorization does not allow.
// The server says so only on the connection, asynchronously; the refused request itself just
// times out, which without this would read as a network failure.
type PermissionError struct {
	// User is the NATS user refused.
	User string
	// Action is "publish" or "subscribe".
	Action string
	// Subject is what the user may not publish or subscribe to.
	Subject string
	// Why says what the refused subject is for, when the caller knows ("create the stream").
	Why string
}

func (e *PermissionError) Error() string {
	who := e.User
	if who == "" {
		who = "(no user)"
	}
	s := fmt.Sprintf("NATS refused user %s permission to %s %q", who, e.Action, e.Subject)
	if e.Why != "" {
		s += " (needed to " + e.Why + ")"
	}
	return s + ": the account's NATS authorization does not allow it (see the README's \"Who may publish what\")"
}

// violationRe reads the subject out of nats.go's permissions violation error.
var violationRe = regexp.MustCompile(`Permissions Violation for (Publish|Subscription) to "([^"]+)"`)

// ParseViolation reads a permissions violation nats.go reported (to an error handler, or as the
// connection's last error) into a PermissionError for user; nil for any other error.
func ParseViolation(err error, user string) *PermissionError {
	if err == nil || !errors.Is(err, nats.ErrPermissionViolation) {
		return nil
	}
	m := violationRe.FindStringSubmatch(err.Error())
	if m == nil {
		return &PermissionError{User: user, Action: "use", Subject: err.Error()}
	}
	action := "publish"
	if m[1] == "Subscription" {
		action = "subscribe to"
	}
	return &PermissionError{User: user, Action: action, Subject: m[2]}
}

// Refused explains err, a request on nc that failed, when the server refused subject: it returns
// a *PermissionError (wrapping nothing: the timeout is only its symptom) naming why, or err as
// it was.
func Refused(nc *nats.Conn, subject, why string, err error) error {
	if err == nil || nc == nil {
		return err
	}
	pe := ParseViolation(nc.LastError(), nc.Opts.User)
	if pe == nil || pe.Subject != subject {
		return err
	}
	pe.Why = why
	return pe
}

// Refusals keeps the last permission NATS refused a connection, for the worker's health and log:
// a refusal after start (a fact the user may no longer publish) otherwise shows only as an
// activity that times out.
type Refusals struct {
	mu   sync.Mutex
	last *PermissionError
	at   time.Time
}

// Handler is a nats.ErrorHandler that logs each refusal as such and keeps it; other errors are
// logged as NATS errors.
func (r *Refusals) Handler(logger *slog.Logger, user string) nats.ErrHandler {
	return func(_ *nats.Conn, _ *nats.Subscription, err error) {
		pe := ParseViolation(err, user)
		if pe == nil {
			logger.Warn("NATS error", "error", err)
			return
		}
		logger.Error("NATS refused a permission", "user", pe.User, "action", pe.Action, "subject", pe.Subject)
		r.mu.Lock()
		r.last, r.at = pe, time.Now()
		r.mu.Unlock()
	}
}

// Since is the last refusal within d of now, or nil.
func (r *Refusals) Since(d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil || time.Since(r.at) > d {
		return nil
	}
	return fmt.Errorf("%w (at %s)", r.last, r.at.UTC().Format(time.TimeOnly))
}

// probeStream is the stream name a permission probe expects: no stream has it, so JetStream
// answers every probe with an error and stores nothing, which proves the publish was allowed.
const probeStream = "imageflow-permission-probe"

// ProveWorker checks, before a worker of tenant takes any event, that its NATS user may publish
// what it must: facts, dead letters and decisions on others' offers. The probes store nothing.
// It returns a *PermissionError naming the first refused subject.
func ProveWorker(ctx context.Context, nc *nats.Conn, s Subjects, tenant string) error {
	probes := []struct{ subject, why string }{
		{s.Evt(tenant, "permission-probe"), "publish the account's facts"},
		{s.Prefix + ".dlq." + tenant + ".permission-probe", "publish the account's dead letters"},
		{s.MemberStatus(tenant, tenant), "publish decisions on offers made to the account"},
	}
	for _, p := range probes {
		msg := nats.NewMsg(p.subject)
		msg.Header.Set(jetstream.ExpectedStreamHeader, probeStream)
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := nc.RequestMsgWithContext(pctx, msg)
		cancel()
		if err == nil {
			continue
		}
		if r := Refused(nc, p.subject, p.why, err); r != err {
			return r
		}
		return fmt.Errorf("prove the right to %s: no answer from JetStream on %s: %w", p.why, p.subject, err)
	}
	return nil
}
