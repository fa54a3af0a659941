package cloud

import (
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracer names the spans of cloud calls. It is the global provider's, looked up at each call (a
// provider installed or replaced later is the one used): a no-op until a program installs one
// (internal/tracing), and then each call costs a span only when its trace is sampled.
func tracer() trace.Tracer {
	return otel.GetTracerProvider().Tracer("github.com/imageflow/imageflow/cloud")
}

// traced is an http.RoundTripper that makes each cloud call a client span: "DFW images GET",
// with the method, region and service, the path, the status and the bytes each way. It is the
// client's outermost layer, so a call's span holds its pacing and host-health waits too. It never
// records headers (tokens) or the query (a temporary URL's signature).
type traced struct {
	next http.RoundTripper
	name func(u *url.URL) string // "DFW images", "identity"
}

func (t *traced) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := tracer().Start(req.Context(), req.Method, trace.WithSpanKind(trace.SpanKindClient))
	if !span.IsRecording() {
		span.End()
		return t.next.RoundTrip(req)
	}
	defer span.End()
	service := ""
	if t.name != nil {
		service = t.name(req.URL)
	}
	if service != "" {
		span.SetName(service + " " + req.Method)
	}
	span.SetAttributes(
		attribute.String("http.request.method", req.Method),
		attribute.String("server.address", req.URL.Host),
		attribute.String("url.path", req.URL.Path),
		attribute.String("imageflow.service", service),
	)
	if req.ContentLength > 0 {
		span.SetAttributes(attribute.Int64("http.request.body.size", req.ContentLength))
	}
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.ContentLength >= 0 {
		span.SetAttributes(attribute.Int64("http.response.body.size", resp.ContentLength))
	}
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
	}
	return resp, nil
}
