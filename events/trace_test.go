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
		"X-Injected: 1", strings.Repeat("0", 600),
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // W3C: an all-zero id is invalid
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff is forbidden
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", // upper case is not the form
	} {
		_, err := ParseEvent([]byte(strings.Replace(body, "%s", `,"traceparent":`+quote(bad), 1)))
		if err == nil || !strings.Contains(err.Error(), "traceparent") {
			t.Errorf("traceparent %q: %v", bad, err)
		}
	}
	// Forms that reach the other checks: a number, the key twice or in another case, trace states
	// that are not lists of key=value, or carry a line break into the facts published after.
	for name, extra := range map[string]string{
		"number":           `,"traceparent":4`,
		"twice":            `,"traceparent":"` + good + `","traceparent":"` + other + `"`,
		"other case":       `,"TraceParent":"` + good + `"`,
		"state not a list": `,"traceparent":"` + good + `","tracestate":"not a list"`,
		"state newline":    `,"traceparent":"` + good + `","tracestate":"a=b\nX-Injected: 1"`,
		"state too long":   `,"traceparent":"` + good + `","tracestate":"` + strings.Repeat("a=b,", 200) + `a=b"`,
	} {
		_, err := ParseEvent([]byte(strings.Replace(body, "%s", extra, 1)))
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "trace") {
			t.Errorf("%s: %v", name, err)
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
