package events

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestEventTraceContext: an envelope's traceparent must be a W3C trace context, and the refusal
// says so; a sound one wins over the message's header, and a header (in any case) is taken when
// the envelope has none; a malformed header starts a new trace rather than refusing the command.
func TestEventTraceContext(t *testing.T) {
	const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	body := `{"specversion":"1.0","id":"e1","source":"s","type":"imageflow.cmd.migrate","tenant":"100001",` +
		`"data":{}%s}`
	for _, bad := range []string{"00-xyz", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n" +
		"X-Injected: 1", strings.Repeat("0", 600)} {
		_, err := ParseEvent([]byte(strings.Replace(body, "%s", `,"traceparent":`+quote(bad), 1)))
		if err == nil || !strings.Contains(err.Error(), "traceparent") {
			t.Errorf("traceparent %q: %v", bad, err)
		}
	}
	ev, err := ParseEvent([]byte(strings.Replace(body, "%s", `,"traceparent":"`+good+`","tracestate":"a=b"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	h := nats.Header{"TraceParent": []string{other}}
	if p, s := traceOf(ev, h); p != good || s != "a=b" {
		t.Errorf("envelope and header: took %q %q, want the envelope's", p, s)
	}
	if p, _ := traceOf(Event{}, h); p != other {
		t.Errorf("header only (name in another case): took %q", p)
	}
	if p, _ := traceOf(Event{}, nats.Header{"traceparent": []string{"junk"}}); p != "" {
		t.Errorf("a malformed header was taken: %q", p)
	}
}

func quote(s string) string { return `"` + strings.NewReplacer("\n", `\n`, `"`, `\"`).Replace(s) + `"` }
