package events

import (
	"encoding/json"
	"strings"
	"testing"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"
)

// TestEnvelopeRefusalsNameTheAttribute: whichever side finds the fault (imageflow's checks or the
// CloudEvents SDK's), the refusal names what was wrong with the event.
func TestEnvelopeRefusalsNameTheAttribute(t *testing.T) {
	const base = `"id":"a","source":"s","type":"t","tenant":"100001"`
	for raw, want := range map[string]string{
		`[1]`: "not a CloudEvents JSON envelope",
		`{"specversion":"0.3",` + base + `,"data":{}}`:                                `specversion is "0.3"`,
		`{"specversion":1,` + base + `,"data":{}}`:                                    "specversion must be a JSON string",
		`{"specversion":"1.0","id":"","source":"","type":"t","data":{}}`:              "source is required",
		`{"specversion":"1.0","id":"a","source":"s","type":"","data":{}}`:             "type: MUST be a non-empty string",
		`{"specversion":"1.0","id":"a","source":"%zz","type":"t","data":{}}`:          "uri ref: %zz",
		`{"specversion":"1.0",` + base + `,"data_base64":"!!"}`:                       "base64",
		`{"specversion":"1.0",` + base + `,"time":"yesterday","data":{}}`:             `"yesterday" to time.Time`,
		`{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":1,"data":{}}`: "tenant must be a JSON string",
		`{"specversion":"1.0",` + base + `,"ext":{"a":1},"data":{}}`:                  `extension "ext"`,
		`{"specversion":"1.0",` + base + `,"ext":null,"data":{}}`:                     `extension "ext"`,
		`{"specversion":"1.0",` + base + `,"bad-key":1,"data":{}}`:                    `attribute name "bad-key"`,
		`{"specversion":"1.0",` + base + `,"dataschema":"not a uri","data":{}}`:       "dataschema",
		`{"specversion":"1.0",` + base + `,"datacontenttype":"text/plain","data":{}}`: `datacontenttype "text/plain"`,
		`{"specversion":"1.0",` + base + `,"data":"x"}`:                               "data must be a JSON object",
		`{"specversion":"1.0",` + base + `,"data":{}} trailing`:                       "after top-level value",
	} {
		_, err := ParseEvent([]byte(raw))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", raw, err, want)
		}
	}
}

// TestEnvelopeRoundTripsThroughTheSDK: what imageflow writes, the CloudEvents SDK reads as a valid
// event with the same attributes and data, and ParseEvent reads back unchanged.
func TestEnvelopeRoundTripsThroughTheSDK(t *testing.T) {
	ev, err := NewEvent("e-1", "imageflow/worker/100001", "imageflow.cmd.migrate", "100001",
		map[string]any{"image_id": "x", "target_regions": []string{"IAD"}})
	if err != nil {
		t.Fatal(err)
	}
	ev.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var ce cloudevent.Event
	if err := json.Unmarshal(b, &ce); err != nil || ce.Validate() != nil {
		t.Fatalf("the SDK does not take %s: %v %v", b, err, ce.Validate())
	}
	if ce.Extensions()["tenant"] != "100001" || ce.Extensions()["traceparent"] != ev.TraceParent ||
		string(ce.Data()) != `{"image_id":"x","target_regions":["IAD"]}` {
		t.Fatalf("the SDK read %s", ce)
	}
	back, err := ParseEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != ev.ID || back.Source != ev.Source || back.Tenant != ev.Tenant || !back.Time.Equal(*ev.Time) ||
		back.TraceParent != ev.TraceParent || string(back.Data) != string(ev.Data) {
		t.Fatalf("read back %+v, wrote %+v", back, ev)
	}
	ev.DataBase64 = new(string)
	if _, err := json.Marshal(ev); err == nil {
		t.Fatal("an event with data_base64 was written")
	}
}
