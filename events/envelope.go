// Package events connects imageflow to NATS JetStream: command events (CloudEvents 1.0 JSON) start
// or signal workflows through the Bridge; the Publisher announces lifecycle facts; what cannot be
// handled lands in the dead-letter subject with the reason.
package events

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	cetrace "github.com/cloudevents/sdk-go/v2/extensions"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/workflows"
)

// MaxEventSize bounds an event; larger ones are dead-lettered unread.
const MaxEventSize = 64 << 10

// Command and fact names (see Subjects for where each travels).
const (
	CmdMigrate      = "migrate"
	CmdBulkMigrate  = "bulk-migrate"
	CmdShare        = "share"
	CmdDistribute   = "distribute"
	CmdAccept       = "accept"
	CmdMemberStatus = "member-status"
	EvtShareOffered = activities.FactShareOffered
)

// Event is imageflow's view of a CloudEvents 1.0 JSON envelope, which the CloudEvents SDK reads
// (ParseEvent) and writes (MarshalJSON); the tags name the keys a sender may use. Tenant is an
// extension attribute naming the account whose subject the event travels on (the worker that
// must handle a command, the worker that announced a fact); it must agree with the subject. A
// worker always acts with its own configured credentials.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            *time.Time      `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Tenant          string          `json:"tenant,omitempty"`
	Data            json.RawMessage `json:"data"`
	// DataBase64 is CloudEvents' field for binary data. imageflow's commands are JSON, so an
	// event that carries it (alone, or beside data, where a reader could pick either) is refused.
	DataBase64 *string `json:"data_base64,omitempty"`
	// TraceParent and TraceState are CloudEvents' distributed-tracing extension: the W3C trace
	// context the event belongs to (see trace.go).
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

// NewEvent wraps data in an envelope.
func NewEvent(id, source, typ, tenant string, data any) (Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode event data: %w", err)
	}
	now := time.Now().UTC()
	return Event{SpecVersion: "1.0", ID: id, Source: source, Type: typ, Time: &now,
		DataContentType: "application/json", Tenant: tenant, Data: b}, nil
}

// CheckEventID is the rule for event ids, on both sides of the stream: the id is also the
// Nats-Msg-Id header, where a line break would start a header of the sender's choosing.
func CheckEventID(id string) error {
	if id == "" || len(id) > 256 || strings.ContainsFunc(id, workflows.UnsafeRune) {
		return errors.New("id must be 1 to 256 characters, none of them control, invisible or line-breaking")
	}
	return nil
}

// ParseEvent decodes and checks an envelope; the error says what is wrong with it. The CloudEvents
// SDK reads the envelope and holds it to the spec (known specversion, type, the forms of source,
// time, subject, dataschema and extension values, data against data_base64); imageflow first
// checks what the spec leaves open or the SDK reports without naming the attribute: no key twice
// or in another case, its id, source, tenant and trace rules, JSON data only.
func ParseEvent(b []byte) (Event, error) {
	if len(b) > MaxEventSize {
		return Event{}, fmt.Errorf("event is %d bytes, more than the %d allowed", len(b), MaxEventSize)
	}
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(b, &attrs); err != nil {
		return Event{}, fmt.Errorf("event is not a CloudEvents JSON envelope: %v", err)
	}
	var own ownAttributes
	if err := json.Unmarshal(b, &own); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Event{}, fmt.Errorf("invalid event: %s must be a JSON %s, not %s", te.Field, te.Type, te.Value)
		}
		return Event{}, fmt.Errorf("event is not a CloudEvents JSON envelope: %v", err)
	}
	if err := checkKeys(b, reflect.TypeOf(Event{})); err != nil {
		return Event{}, fmt.Errorf("invalid event: %v", err)
	}
	if problems := append(own.check(), extensionProblems(attrs)...); len(problems) > 0 {
		return Event{}, errors.New("invalid event: " + strings.Join(problems, "; "))
	}
	ce := cloudevent.New()
	if err := json.Unmarshal(canonicalType(b, attrs, own.DataContentType), &ce); err != nil {
		return Event{}, fmt.Errorf("invalid event: %s", specProblems(err))
	}
	var problems []string
	if err := ce.Validate(); err != nil {
		problems = append(problems, specProblems(err))
	}
	if ce.DataBase64 {
		problems = append(problems, "data_base64 is not accepted: give the command as a JSON object in data")
	}
	if d := bytes.TrimSpace(ce.Data()); len(d) == 0 || d[0] != '{' {
		problems = append(problems, "data must be a JSON object")
	}
	e := own.event(ce)
	if len(problems) > 0 {
		return e, errors.New("invalid event: " + strings.Join(problems, "; "))
	}
	return e, nil
}

// ownAttributes are the attributes imageflow checks itself, as sent: its tenant extension and
// the tracing extension, which must be strings (the SDK would take a number), and the ones whose
// faults the SDK reports vaguely or not at all (an empty source is "cannot parse uri ref: ").
type ownAttributes struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	DataContentType string `json:"datacontenttype"`
	Tenant          string `json:"tenant"`
	TraceParent     string `json:"traceparent"`
	TraceState      string `json:"tracestate"`
}

// check says what imageflow refuses before the SDK reads the event.
func (o ownAttributes) check() []string {
	var problems []string
	if o.SpecVersion != cloudevent.CloudEventsVersionV1 {
		problems = append(problems, fmt.Sprintf("specversion is %q, want \"1.0\"", truncate(o.SpecVersion, 64)))
	}
	if err := CheckEventID(o.ID); err != nil {
		problems = append(problems, err.Error())
	}
	if strings.ContainsFunc(o.Tenant, workflows.UnsafeRune) || strings.ContainsFunc(o.Source, workflows.UnsafeRune) ||
		len(o.Source) > 1024 {
		problems = append(problems, "tenant and source may not hold control characters (source: at most 1024 bytes)")
	}
	if o.Source == "" {
		problems = append(problems, "source is required")
	}
	// The SDK reads data of another media type as a string and says only that it is not one.
	if o.DataContentType != "" && !isJSONType(o.DataContentType) {
		problems = append(problems, fmt.Sprintf("datacontenttype %q is not application/json",
			truncate(o.DataContentType, 64)))
	}
	return append(problems, checkTrace(o.TraceParent, o.TraceState)...)
}

// extensionName is the spec's form for an attribute's name.
var extensionName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// envelopeKeys are the attributes that are not extensions: Event's keys and the spec's dataschema.
var envelopeKeys = func() map[string]bool {
	keys := map[string]bool{"dataschema": true}
	for f := range jsonFields(reflect.TypeOf(Event{})) {
		keys[f.name] = true
	}
	return keys
}()

// extensionProblems names the extension attributes the SDK would refuse without naming them: a
// name that is not lower-case letters and digits, a value that is not a string, number or boolean.
func extensionProblems(attrs map[string]json.RawMessage) []string {
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if envelopeKeys[k] {
			continue
		}
		if !extensionName.MatchString(k) {
			problems = append(problems, fmt.Sprintf("attribute name %q: CloudEvents names are 1 to 20 lower-case "+
				"letters and digits", truncate(k, 64)))
			continue
		}
		if v := bytes.TrimSpace(attrs[k]); len(v) > 0 && (v[0] == '{' || v[0] == '[' || v[0] == 'n') {
			problems = append(problems, fmt.Sprintf("extension %q must be a string, number or boolean", k))
		}
	}
	return problems
}

// event is imageflow's view of an envelope the SDK has read.
func (o ownAttributes) event(ce cloudevent.Event) Event {
	e := Event{SpecVersion: ce.SpecVersion(), ID: ce.ID(), Source: ce.Source(), Type: ce.Type(),
		Subject: ce.Subject(), DataContentType: o.DataContentType, Tenant: o.Tenant, Data: ce.Data(),
		TraceParent: o.TraceParent, TraceState: o.TraceState}
	if t := ce.Time(); !t.IsZero() {
		e.Time = &t
	}
	return e
}

// canonicalType gives the SDK the envelope with its media type in the form it compares against:
// it reads data as JSON only for "application/json" in lower case, though media types are
// case-insensitive (RFC 2045), and calls an empty one malformed where imageflow has always taken
// it as absent.
func canonicalType(b []byte, attrs map[string]json.RawMessage, ct string) []byte {
	if _, ok := attrs["datacontenttype"]; !ok || ct == cloudevent.ApplicationJSON {
		return b
	}
	if ct == "" {
		delete(attrs, "datacontenttype")
	} else {
		attrs["datacontenttype"] = json.RawMessage(`"` + cloudevent.ApplicationJSON + `"`)
	}
	out, err := json.Marshal(attrs)
	if err != nil {
		return b
	}
	return out
}

// specProblems is the SDK's verdict in a stable order, one clause per attribute.
func specProblems(err error) string {
	var ve cloudevent.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	clauses := make([]string, 0, len(ve))
	for _, attr := range slices.Sorted(maps.Keys(ve)) {
		clauses = append(clauses, attr+": "+ve[attr].Error())
	}
	return strings.Join(clauses, "; ")
}

// MarshalJSON writes the envelope with the CloudEvents SDK, so what imageflow sends is what the
// spec's readers take.
func (e Event) MarshalJSON() ([]byte, error) {
	ce := cloudevent.New(e.SpecVersion)
	ce.SetID(e.ID)
	ce.SetSource(e.Source)
	ce.SetType(e.Type)
	if e.Subject != "" {
		ce.SetSubject(e.Subject)
	}
	if e.Time != nil {
		ce.SetTime(*e.Time)
	}
	if e.Tenant != "" {
		ce.SetExtension("tenant", e.Tenant)
	}
	cetrace.DistributedTracingExtension{TraceParent: e.TraceParent, TraceState: e.TraceState}.AddTracingAttributes(&ce)
	if e.DataBase64 != nil {
		return nil, fmt.Errorf("encode event %s: imageflow sends JSON data only, not data_base64", e.ID)
	}
	if e.Data != nil {
		if err := ce.SetData(cmp.Or(e.DataContentType, cloudevent.ApplicationJSON), e.Data); err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
	}
	return json.Marshal(ce)
}

// isJSONType reports a media type that is application/json, with at most a charset parameter of
// UTF-8 (RFC 8259 allows no other): "application/jsonx" or "application/json; x=y" are not.
func isJSONType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}
