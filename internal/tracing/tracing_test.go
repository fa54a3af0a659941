package tracing_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/internal/tracing"
	"github.com/imageflow/imageflow/workflows"
)

// TestOneTraceFromEventToCloudCall: a migrate command published inside a trace (as a traced
// sender, or `nats pub -H traceparent:...`, sends it) is one trace: the bridge's receipt under
// the sender's span, the run's start under the bridge, the workflow, each activity, and the
// cloud calls of each region under the activity that made them; the facts the run publishes
// carry the trace on. No span carries a token or a temporary URL's signature.
func TestOneTraceFromEventToCloudCall(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	env := testenv.New(t)
	ti, err := tracing.Interceptor()
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewClientFromExisting(env.Client, client.Options{Namespace: env.Namespace,
		Interceptors: []interceptor.ClientInterceptor{ti}})
	if err != nil {
		t.Fatal(err)
	}
	env.StartWorker("demo", testenv.WorkerOptions{Events: true, Temporal: tc})
	facts := env.Collect(testenv.Subjects.AllFacts(activities.FactMigrationCompleted))
	demo := env.Cloud("demo")
	imgs, err := demo.ListImages(context.Background(), "DFW", cloud.ImageFilter{Name: "demo-web-01"})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("demo-web-01: %v %v", imgs, err)
	}
	in := workflows.MigrateInput{ImageID: imgs[0].ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"}}
	ctx, sender := tp.Tracer("test").Start(context.Background(), "sender")
	if err := events.NewPublisher(env.JetStream(), testenv.Subjects, "test").Command(ctx, events.CmdMigrate,
		"traced-1", "100001", in); err != nil {
		t.Fatal(err)
	}
	sender.End()
	awaitRun(t, env, workflows.MigrateWorkflowID("100001", in))

	traceID := sender.SpanContext().TraceID()
	spans := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID() == traceID {
			spans[s.SpanContext.SpanID()] = s
		}
		for _, a := range s.Attributes {
			if v := a.Value.String(); strings.Contains(v, "temp_url_sig") || strings.Contains(v, "X-Auth-Token") {
				t.Errorf("span %s holds a secret in %s: %s", s.Name, a.Key, v)
			}
		}
	}
	t.Logf("%d spans in the sender's trace: %s", len(spans), names(spans))
	for _, chain := range [][]string{
		{"bridge imageflow.cmd.migrate", "sender"},
		{"StartWorkflow:MigrateImage", "bridge imageflow.cmd.migrate"},
		{"RunWorkflow:MigrateImage", "StartWorkflow:MigrateImage"},
		{"DFW images POST", "RunActivity:ExportImage", "RunWorkflow:MigrateImage"},
		{"DFW files GET", "RunActivity:CopyObjectAcrossRegions", "RunWorkflow:MigrateImage"},
		{"IAD files PUT", "RunActivity:CopyObjectAcrossRegions"},
		{"IAD images POST", "RunActivity:ImportImage", "RunWorkflow:MigrateImage"},
	} {
		if !hasChain(spans, chain) {
			t.Errorf("no span %q under %v in the sender's trace (%d spans in it: %s)", chain[0], chain[1:],
				len(spans), names(spans))
		}
	}
	awaitTracedFact(t, facts, traceID.String())
}

// hasChain says a span named chain[0] has ancestors named chain[1:], in order (others between).
func hasChain(spans map[trace.SpanID]tracetest.SpanStub, chain []string) bool {
	for _, s := range spans {
		if s.Name != chain[0] {
			continue
		}
		rest := chain[1:]
		for p, ok := spans[s.Parent.SpanID()]; ok && len(rest) > 0; p, ok = spans[p.Parent.SpanID()] {
			if p.Name == rest[0] {
				rest = rest[1:]
			}
		}
		if len(rest) == 0 {
			return true
		}
	}
	return false
}

func names(spans map[trace.SpanID]tracetest.SpanStub) string {
	seen := map[string]bool{}
	var out []string
	for _, s := range spans {
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s.Name)
		}
	}
	return strings.Join(out, ", ")
}

// awaitRun waits for the run the bridge starts to exist and end well.
func awaitRun(t *testing.T, env *testenv.Env, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		err := env.Client.GetWorkflow(ctx, id, "").Get(ctx, nil)
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the run never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitTracedFact waits for migration.completed and checks it carries the trace.
func awaitTracedFact(t *testing.T, facts *testenv.Collector, traceID string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if all := facts.All(); len(all) > 0 {
			var ev events.Event
			if err := json.Unmarshal(all[0], &ev); err != nil {
				t.Fatal(err)
			}
			if parts := strings.Split(ev.TraceParent, "-"); len(parts) != 4 || parts[1] != traceID {
				t.Fatalf("migration.completed carries traceparent %q, not the trace %s", ev.TraceParent, traceID)
			}
			return
		}
	}
	t.Fatal("no migration.completed fact")
}
