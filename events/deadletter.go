package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is what lands on <prefix>.dlq: the original event, bounded and with secret-looking
// fields redacted, and why it was not handled.
type DeadLetter struct {
	Reason  string `json:"reason"`
	Subject string `json:"subject"`
	// Event is the original when it was JSON and fits MaxDeadLetterOriginal; Raw holds it (cut
	// to that limit) otherwise. Either way secret-looking values read "[redacted]".
	Event json.RawMessage `json:"event,omitempty"`
	Raw   string          `json:"raw,omitempty"`
	// Size and SHA256 describe the original as received, so a cut one can still be matched
	// with the sender's copy.
	Size       int       `json:"size"`
	SHA256     string    `json:"sha256"`
	Truncated  bool      `json:"truncated,omitempty"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Consumer   string    `json:"consumer"`
	Time       time.Time `json:"time"`
}

// MaxDeadLetterOriginal bounds the copy of the original a dead letter keeps, so the dead letter
// of an oversized event still fits NATS's message limit (1 MiB by default).
const MaxDeadLetterOriginal = 16 << 10

// secretNames are field names whose values must never be repeated: the sender's mistake of
// putting credentials in an event must not be copied into the dead-letter subject.
const secretNames = `api[_-]?key|password|passwd|secret|token|credential|auth`

var (
	secretKey = regexp.MustCompile(`(?i)(` + secretNames + `)`)
	// secretPair finds "key": "value" pairs with such names in text that is not valid JSON.
	secretPair = regexp.MustCompile(`(?i)("[^"]*(` + secretNames + `)[^"]*"\s*:\s*)"(\\.|[^"\\])*"`)
)

// newDeadLetter describes msg's original for the dead-letter subject.
func newDeadLetter(subject string, data []byte, reason string) DeadLetter {
	sum := sha256.Sum256(data)
	dl := DeadLetter{
		Reason:  truncate(reason, 2048),
		Subject: subject,
		Size:    len(data),
		SHA256:  hex.EncodeToString(sum[:]),
		Time:    time.Now().UTC(),
	}
	clean, isJSON := redact(data)
	switch {
	case isJSON && len(clean) <= MaxDeadLetterOriginal:
		dl.Event = clean
	case len(clean) <= MaxDeadLetterOriginal:
		dl.Raw = string(clean)
	default:
		dl.Raw, dl.Truncated = strings.ToValidUTF8(string(clean[:MaxDeadLetterOriginal]), ""), true
	}
	return dl
}

// redact replaces the values of secret-looking fields, at any depth. It reports whether data
// was JSON; text that is not gets the same treatment by pattern.
func redact(data []byte) ([]byte, bool) {
	if len(data) > 4*MaxEventSize || !json.Valid(data) {
		return secretPair.ReplaceAll(data, []byte(`$1"[redacted]"`)), false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return secretPair.ReplaceAll(data, []byte(`$1"[redacted]"`)), false
	}
	out, err := json.Marshal(redactValue(v))
	if err != nil {
		return nil, false
	}
	return out, true
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if secretKey.MatchString(k) {
				t[k] = "[redacted]"
			} else {
				t[k] = redactValue(val)
			}
		}
	case []any:
		for i := range t {
			t[i] = redactValue(t[i])
		}
	}
	return v
}

// publishDeadLetter parks a dead letter, once per stream message however many workers' consumers
// hold a copy: it is published only while its subject is empty (see Subjects.DeadLetter), and a
// refusal because one is there already is success. Any other failure means the caller must not
// drop the event.
func (b *Bridge) publishDeadLetter(ctx context.Context, dl DeadLetter) error {
	body, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	var opts []jetstream.PublishOpt
	if dl.StreamSeq != 0 {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(0))
	}
	_, err = b.js.Publish(ctx, b.cfg.Subjects.DeadLetter(b.cfg.Tenant, dl.StreamSeq), body, opts...)
	if alreadyParked(err) {
		b.log.Debug("dead letter already parked by another worker", "stream_seq", dl.StreamSeq)
		return nil
	}
	return err
}

// alreadyParked reports JetStream's refusal of a publish whose subject already holds a message.
func alreadyParked(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func (b *Bridge) deadLetter(ctx context.Context, msg jetstream.Msg, reason string) {
	dl := newDeadLetter(msg.Subject(), msg.Data(), reason)
	dl.Consumer = b.cfg.Consumer
	if meta, err := msg.Metadata(); err == nil {
		dl.StreamSeq, dl.Deliveries, dl.Consumer = meta.Sequence.Stream, meta.NumDelivered, meta.Consumer
	}
	err := b.publishDeadLetter(ctx, dl)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		// The stream no longer takes dead letters (its subjects changed by hand): make it as
		// at start, then try once more.
		if err = b.ensure(ctx); err == nil {
			err = b.publishDeadLetter(ctx, dl)
		}
	}
	if err != nil {
		// Never drop an event we could not park: let it come again.
		b.log.Error("dead-letter publish failed; event will be redelivered", "error", err)
		_ = msg.NakWithDelay(b.cfg.NakDelay)
		return
	}
	b.Stats.DeadLettered.Add(1)
	b.log.Warn("event dead-lettered", "subject", msg.Subject(), "reason", truncate(reason, 200))
	_ = msg.TermWithReason(truncate(reason, 200))
}

// maxDeliveriesAdvisory is JetStream's notice that a message ran out of deliveries without an
// ack: a worker died holding it, or handling outlasted the ack wait every time.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchMaxDeliveries dead-letters every message JetStream gives up on for this bridge's
// consumers, so no event disappears without a trace. It returns a function that stops it.
func (b *Bridge) watchMaxDeliveries() (func(), error) {
	var subs []*nats.Subscription
	stop := func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}
	for _, c := range b.consumers() {
		subject := fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", b.cfg.Stream, c.CachedInfo().Name)
		sub, err := b.js.Conn().Subscribe(subject, func(m *nats.Msg) {
			var adv maxDeliveriesAdvisory
			if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
				b.log.Warn("unreadable max-deliveries advisory", "error", err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.AckWait)
			defer cancel()
			b.deadLetterBySeq(ctx, adv)
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("watch max-deliveries advisories on %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	return stop, nil
}

func (b *Bridge) deadLetterBySeq(ctx context.Context, adv maxDeliveriesAdvisory) {
	reason := fmt.Sprintf(
		"not handled after %d deliveries (max deliveries reached: a worker stopped while holding it, "+
			"or handling outlasted the ack wait each time)",
		adv.Deliveries,
	)
	var dl DeadLetter
	raw, err := b.currentStream().GetMsg(ctx, adv.StreamSeq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		dl = newDeadLetter("", nil, reason+"; the original is no longer in the stream")
	case err != nil:
		// A worker whose NATS user may not read by sequence leaves the original to an
		// operator who may.
		dl = newDeadLetter("", nil, fmt.Sprintf("%s; the original (stream message %d) could not be read: %v",
			reason, adv.StreamSeq, err))
	default:
		dl = newDeadLetter(raw.Subject, raw.Data, reason)
	}
	dl.StreamSeq, dl.Deliveries, dl.Consumer = adv.StreamSeq, adv.Deliveries, adv.Consumer
	if err := b.publishDeadLetter(ctx, dl); err != nil {
		b.log.Error("could not dead-letter an event past max deliveries", "stream_seq", adv.StreamSeq, "error", err)
		return
	}
	b.Stats.DeadLettered.Add(1)
	b.log.Warn("event past max deliveries dead-lettered", "stream_seq", adv.StreamSeq, "deliveries", adv.Deliveries)
}

// FindDeadLetter reads the dead letter of the stream's message seq, if tenant's worker wrote
// one; a sender that kept its publish acknowledgement learns this way that its command was
// refused.
func FindDeadLetter(ctx context.Context, st jetstream.Stream, s Subjects, tenant string,
	seq uint64) (*DeadLetter, error) {
	raw, err := st.GetLastMsgForSubject(ctx, s.DeadLetter(tenant, seq))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the dead letter of stream message %d: %w", seq, err)
	}
	var dl DeadLetter
	if err := json.Unmarshal(raw.Data, &dl); err != nil {
		return nil, fmt.Errorf("dead letter of stream message %d is unreadable: %w", seq, err)
	}
	return &dl, nil
}
