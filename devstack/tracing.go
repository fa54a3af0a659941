package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/imageflow/imageflow/internal/tracing"
)

// Jaeger's ports in its all-in-one defaults: OTLP over HTTP in, the UI and query API out.
const (
	jaegerOTLPPort = 4318
	jaegerUIPort   = 16686
)

// startJaeger builds Jaeger v2 from tools/jaeger (its own module, so imageflow's build does not
// carry it; the first build takes minutes), runs it with its in-memory store, and points this
// process's tracing at it: the workers' Temporal clients get the tracing interceptor, their cloud
// calls and the bridge their spans.
func (s *stack) startJaeger() (string, error) {
	src, err := filepath.Abs(filepath.Join("tools", "jaeger"))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		return "", fmt.Errorf("--tracing builds Jaeger from %s: run devstack from the repository's root", src)
	}
	// Absolute: the build runs in tools/jaeger, where a relative state folder is another folder.
	abs, err := filepath.Abs(filepath.Join(s.o.dir, "jaeger"))
	if err != nil {
		return "", err
	}
	build := exec.Command("go", "build", "-o", abs, "github.com/jaegertracing/jaeger/cmd/jaeger")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build Jaeger: %v: %s", err, out)
	}
	logf, err := os.Create(filepath.Join(s.o.dir, "jaeger.log"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(abs)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", err
	}
	s.jaeger = cmd
	ui := fmt.Sprintf("http://%s", s.addr(jaegerUIPort))
	if err := awaitHTTP(ui+"/api/services", 60*time.Second); err != nil {
		return "", fmt.Errorf("no answer from Jaeger (see %s): %w", logf.Name(), err)
	}
	os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", fmt.Sprintf("http://%s", s.addr(jaegerOTLPPort)))
	os.Setenv("OTEL_BSP_SCHEDULE_DELAY", "500") // ms: the demo's spans show while it runs
	stop, err := tracing.Start(context.Background(), "imageflow-devstack")
	if err != nil {
		return "", err
	}
	s.stopTracing = stop
	s.jaegerUI = ui
	return ui, nil
}

// traced runs publish as the root span of a trace and remembers the trace for the summary.
func (s *stack) traced(ctx context.Context, name string, publish func(context.Context) error) error {
	if s.jaegerUI == "" {
		return publish(ctx)
	}
	ctx, span := otel.Tracer("github.com/imageflow/imageflow/devstack").Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	s.demoTrace = span.SpanContext().TraceID().String()
	return publish(ctx)
}

// traceLink is the demo migration's trace in Jaeger's UI ("" without --tracing).
func (s *stack) traceLink() string {
	if s.jaegerUI == "" || s.demoTrace == "" {
		return ""
	}
	return s.jaegerUI + "/trace/" + s.demoTrace
}

// stopJaeger flushes the spans and stops Jaeger.
func (s *stack) stopJaeger() {
	if s.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.stopTracing(ctx)
		cancel()
	}
	if s.jaeger != nil && s.jaeger.Process != nil {
		_ = s.jaeger.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = s.jaeger.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = s.jaeger.Process.Kill()
		}
	}
}

func awaitHTTP(u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("%s answered %s", u, resp.Status)
			}
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkTrace asks Jaeger's query API for the demo migration's trace until it holds the whole
// path (the bridge, the workflow, the copy and the cloud calls of both sides), and says what it
// found: proof that the trace reached a real viewer, not only an exporter.
func (s *stack) checkTrace(ctx context.Context) (string, error) {
	want := []string{"devstack demo: migrate", "bridge imageflow.cmd.migrate", "StartWorkflow:MigrateImage",
		"RunWorkflow:MigrateImage", "RunActivity:ExportImage", "RunActivity:CopyObjectAcrossRegions",
		"RunActivity:ImportImage", "DFW files GET", "IAD files PUT", "LON files PUT", "IAD images POST"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		names, err := s.traceSpans(ctx)
		missing := []string{}
		for _, w := range want {
			if names[w] == 0 {
				missing = append(missing, w)
			}
		}
		if err == nil && len(missing) == 0 {
			total := 0
			for _, n := range names {
				total += n
			}
			return fmt.Sprintf("%d spans, %d operations, one trace", total, len(names)), nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return "", err
			}
			return "", fmt.Errorf("the trace %s in Jaeger lacks %v", s.demoTrace, missing)
		}
		time.Sleep(time.Second)
	}
}

// traceSpans counts the demo trace's spans by operation, as Jaeger's query API returns them.
func (s *stack) traceSpans(ctx context.Context) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.jaegerUI+"/api/traces/"+s.demoTrace, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data []struct {
			Spans []struct {
				OperationName string `json:"operationName"`
			} `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("the answer of Jaeger's query API for trace %s: %s: %w", s.demoTrace, resp.Status, err)
	}
	names := map[string]int{}
	for _, t := range body.Data {
		for _, sp := range t.Spans {
			names[sp.OperationName]++
		}
	}
	return names, nil
}
