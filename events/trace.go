package events

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/imageflow/imageflow/workflows"
)

// An event carries its trace twice, the same W3C trace context both ways: in CloudEvents'
// distributed-tracing extension (traceparent and tracestate in the envelope, which travel with
// the event wherever it is stored or forwarded) and as NATS headers of the same names (what
// `nats pub -H traceparent:...` sends). The bridge continues the envelope's, else the header's,
// else starts a trace of its own.

// tracer is the global provider's, looked up at each event (one installed later is used).
func tracer() trace.Tracer {
	return otel.GetTracerProvider().Tracer("github.com/imageflow/imageflow/events")
}

// traceParentPattern is a W3C traceparent: version, trace id, parent id, flags.
var traceParentPattern = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// checkTrace says what is wrong with an event's trace-context attributes, if anything. A trace
// context is not authority: a forged one can only file the bridge's spans under a trace id of
// the sender's choosing. What is refused is what the W3C rules call invalid, so that nothing
// malformed travels on in the facts the worker publishes.
func checkTrace(parent, state string) []string {
	var problems []string
	if parent != "" && !validTraceParent(parent) {
		problems = append(problems, fmt.Sprintf("traceparent %q is not a W3C trace context "+
			"(00-<32 hex digits, not all zero>-<16 hex digits, not all zero>-<2 hex digits>)", truncate(parent, 64)))
	}
	switch {
	case state == "":
	case len(state) > 512 || strings.ContainsFunc(state, workflows.UnsafeRune):
		problems = append(problems, "tracestate may hold at most 512 characters, none of them control characters")
	default:
		if _, err := trace.ParseTraceState(state); err != nil {
			problems = append(problems, fmt.Sprintf("tracestate %q is not a W3C trace state (key=value, "+
				"comma-separated, at most 32): %v", truncate(state, 64), err))
		}
	}
	return problems
}

// validTraceParent: the form, a version other than ff, and trace and parent ids not all zero.
func validTraceParent(p string) bool {
	if !traceParentPattern.MatchString(p) || strings.HasPrefix(p, "ff") {
		return false
	}
	_, errTrace := trace.TraceIDFromHex(p[3:35])
	_, errSpan := trace.SpanIDFromHex(p[36:52])
	return errTrace == nil && errSpan == nil
}

// traceFields is ctx's trace context as an event's traceparent and tracestate ("" without one).
func traceFields(ctx context.Context) (parent, state string) {
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// traceHeader adds the event's trace context to a message's headers.
func traceHeader(h nats.Header, ev Event) {
	if ev.TraceParent != "" {
		h.Set("traceparent", ev.TraceParent)
	}
	if ev.TraceState != "" {
		h.Set("tracestate", ev.TraceState)
	}
}

// traceOf is the trace context an event came with: the envelope's, else its message's headers.
func traceOf(ev Event, h nats.Header) (parent, state string) {
	if ev.TraceParent != "" {
		return ev.TraceParent, ev.TraceState
	}
	parent, state = headerValue(h, "traceparent"), headerValue(h, "tracestate")
	if len(checkTrace(parent, state)) > 0 {
		return "", "" // a header is not the event: a bad one starts a new trace instead of a refusal
	}
	return parent, state
}

// headerValue reads a header whatever the case its sender wrote the name in.
func headerValue(h nats.Header, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// receive starts the bridge's span for a sound event: a child of the event's trace, or the root
// of a new one.
func (v verdict) receive(ctx context.Context, subject string) (context.Context, trace.Span) {
	if v.traceParent != "" {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier{
			"traceparent": v.traceParent, "tracestate": v.traceState})
	}
	return tracer().Start(ctx, "bridge "+v.eventType, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.message.id", v.eventID),
			attribute.String("imageflow.workflow_id", v.s.id),
		))
}
