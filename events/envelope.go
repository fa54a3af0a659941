// Package events connects imageflow to NATS JetStream: command events (CloudEvents 1.0 JSON) start
// or signal workflows through the Bridge; the Publisher announces lifecycle facts; what cannot be
// handled lands in the dead-letter subject with the reason.
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"reflect"
	"slices"
	"strings"
	"time"

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

// Event is a CloudEvents 1.0 JSON envelope. Tenant is an extension attribute naming the account
// whose subject the event travels on (the worker that must handle a command, the worker that
// announced a fact); it must agree with the subject. A worker always acts with its own
// configured credentials.
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

// ParseEvent decodes and checks an envelope; the error says what is wrong with it.
func ParseEvent(b []byte) (Event, error) {
	var e Event
	if len(b) > MaxEventSize {
		return e, fmt.Errorf("event is %d bytes, more than the %d allowed", len(b), MaxEventSize)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("event is not a CloudEvents JSON envelope: %v", err)
	}
	if err := checkKeys(b, reflect.TypeOf(e)); err != nil {
		return e, fmt.Errorf("invalid event: %v", err)
	}
	var problems []string
	if e.SpecVersion != "1.0" {
		problems = append(problems, fmt.Sprintf("specversion is %q, want \"1.0\"", e.SpecVersion))
	}
	if err := CheckEventID(e.ID); err != nil {
		problems = append(problems, err.Error())
	}
	if strings.ContainsFunc(e.Tenant, workflows.UnsafeRune) || strings.ContainsFunc(e.Source, workflows.UnsafeRune) ||
		len(e.Source) > 1024 {
		problems = append(problems, "tenant and source may not hold control characters (source: at most 1024 bytes)")
	}
	if e.Source == "" {
		problems = append(problems, "source is required")
	}
	if e.Type == "" {
		problems = append(problems, "type is required")
	}
	if e.DataContentType != "" && !isJSONType(e.DataContentType) {
		problems = append(problems, fmt.Sprintf("datacontenttype %q is not application/json", e.DataContentType))
	}
	if e.DataBase64 != nil {
		problems = append(problems, "data_base64 is not accepted: give the command as a JSON object in data")
	}
	problems = append(problems, checkTrace(e.TraceParent, e.TraceState)...)
	if d := bytes.TrimSpace(e.Data); len(d) == 0 || d[0] != '{' {
		problems = append(problems, "data must be a JSON object")
	}
	if len(problems) > 0 {
		return e, errors.New("invalid event: " + strings.Join(problems, "; "))
	}
	return e, nil
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

// decodeData reads the event's data into v, refusing fields v does not have, so a typo in an
// event is reported instead of silently ignored.
func (e Event) decodeData(v any) error {
	if err := checkKeys(e.Data, reflect.TypeOf(v)); err != nil {
		return fmt.Errorf("%s data: %v", e.Type, err)
	}
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var pe *time.ParseError
		if errors.As(err, &pe) { // encoding/json does not say which field held the bad time
			return fmt.Errorf("%s data: %s %q is not an RFC 3339 time (e.g. 2026-11-28T18:00:00Z)", e.Type,
				keyHolding(e.Data, pe.Value), pe.Value)
		}
		return fmt.Errorf("%s data: %v", e.Type, err)
	}
	return nil
}

// keyHolding names the key (dotted, for nested objects) whose string value is value.
func keyHolding(data json.RawMessage, value string) string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return "a time field"
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch v := m[k].(type) {
		case string:
			if v == value {
				return k
			}
		case map[string]any:
			if inner, _ := json.Marshal(v); keyHolding(inner, value) != "a time field" {
				return k + "." + keyHolding(inner, value)
			}
		}
	}
	return "a time field"
}
