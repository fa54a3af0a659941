package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/nats-io/nats.go"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

func testOptions(t *testing.T, dir string) options {
	o := defaultOptions()
	o.dir, o.emulatorPort = dir, testenv.FreePortRun(t, 7)
	o.temporalPort, o.uiPort, o.natsPort = testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	o.healthPort = testenv.FreePortRun(t, 2)
	return o
}

// TestDevstackDemoAndUI runs the whole stack and its demo, checks that the Temporal UI serves and
// lists the demo's runs, then restarts the stack on the same folder: the runs are still there and
// the demo finds them instead of running again.
func TestDevstackDemoAndUI(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	// Tasks of seconds, as the cloud's take minutes, and the step said every half second.
	o.taskRate, o.progressEvery = 16<<20, 500*time.Millisecond
	out := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	checked := make(chan struct{})
	go func() {
		done <- run(ctx, o, out, func(s *stack) {
			defer close(checked)
			page := httpGet(t, s.ui.URL+"/")
			if !strings.Contains(strings.ToLower(page), "<html") {
				t.Errorf("UI root is not HTML: %.200s", page)
			}
			list := httpGet(t, s.ui.URL+"/api/v1/namespaces/default/workflows?query=")
			// Each worker is seen: its health and metrics served, its log written.
			for i := range 2 {
				base := "http://" + s.addr(o.healthPort+i)
				if h := httpGet(t, base+"/healthz"); h != "ok\n" {
					t.Errorf("worker %d /healthz: %q", i, h)
				}
				if m := httpGet(t, base+"/metrics"); !strings.Contains(m, "imageflow_bridge_received_total") {
					t.Errorf("worker %d /metrics lacks the bridge's counters: %.300s", i, m)
				}
			}
			if b, err := os.ReadFile(filepath.Join(dir, "worker-demo.log")); err != nil ||
				!strings.Contains(string(b), `"msg"`) {
				t.Errorf("the demo worker's log: %v %.300s", err, b)
			}
			if d, err := s.client.ScheduleClient().GetHandle(context.Background(), demoSchedule).Describe(
				context.Background()); err != nil || !d.Schedule.State.Paused {
				t.Errorf("the demo's schedule %s: %v (want it there, paused)", demoSchedule, err)
			}
			for _, want := range []string{"MigrateImage", "ShareImage", "AcceptShare"} {
				if !strings.Contains(list, want) {
					t.Errorf("UI API does not list %s: %.500s", want, list)
				}
			}
			cancel()
		})
	}()
	select {
	case <-checked:
	case <-time.After(4 * time.Minute):
		t.Fatalf("demo did not finish:\n%s", out.String())
	}
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	first := out.String()
	if strings.Count(first, "ok    ") != 3 || strings.Contains(first, "FAILED") {
		t.Fatalf("summary:\n%s", first)
	}
	// A run that takes a while says its step while it goes.
	if i := strings.Index(first, "  migrate: exporting"); i < 0 || i > strings.Index(first, "Summary") {
		t.Fatalf("the migration said nothing while it ran:\n%s", first)
	}
	// The runs' links and ids are printed as they start, before the summary.
	if i := strings.Index(first, "migrate started: go run ./starter wait migrate-100001-"); i < 0 ||
		i > strings.Index(first, "Summary") {
		t.Fatalf("the migration's id is not printed as it starts:\n%s", first)
	}

	// Restart on the same folder: Temporal's SQLite file and the emulator's state are kept.
	o2 := testOptions(t, dir)
	o2.exitAfterDemo = true
	out2 := &testenv.SyncBuffer{}
	if code := run(context.Background(), o2, out2, nil); code != 0 {
		t.Fatalf("second run exit %d:\n%s", code, out2.String())
	}
	if runID(first, "migrate") == "" || runID(first, "migrate") != runID(out2.String(), "migrate") {
		t.Fatalf("the restarted stack ran the migration again:\n%s\n---\n%s", first, out2.String())
	}
	// ...and says the results it shows are the earlier runs', not new ones.
	if strings.Count(out2.String(), "; nothing new ran)") != 3 || strings.Contains(first, "nothing new ran") {
		t.Fatalf("the restart does not say its runs are the earlier ones:\n%s", out2.String())
	}
}

// runID finds the run id in the summary link after the line naming what.
func runID(summary, what string) string {
	lines := strings.Split(summary, "\n")
	for i, l := range lines {
		if strings.Contains(l, " "+what+" ") && i+1 < len(lines) {
			parts := strings.Split(strings.TrimSpace(lines[i+1]), "/")
			if len(parts) >= 2 {
				return parts[len(parts)-2]
			}
		}
	}
	return ""
}

func TestBusyPortIsNamed(t *testing.T) {
	o := testOptions(t, t.TempDir())
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.natsPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = start(context.Background(), o, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(o.natsPort)+" for NATS is busy") ||
		!strings.Contains(err.Error(), "--nats-port") {
		t.Fatalf("error %v", err)
	}
}

func httpGet(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("GET %s: %d %.300s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestDevstackDemoIsolated: with --isolated the demo runs whole (migrate, share, the partner
// accepting by event) with an NATS account and a Temporal namespace per tenant, while NATS refuses
// a connection without a user and Temporal a call without a key or with the partner's key in the
// demo's namespace; the accounts it used are in the state folder to copy.
func TestDevstackDemoIsolated(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	o.isolated, o.natsAuth, o.exitAfterDemo = true, true, true
	// devstack sets the demo passwords in its environment; the test's is restored after it.
	t.Setenv(events.AdminPasswordVar, "")
	for _, tn := range devstackTenants {
		t.Setenv(events.PasswordVar(events.RoleWorker, tn), "")
		t.Setenv(events.PasswordVar(events.RoleSender, tn), "")
	}
	out := &testenv.SyncBuffer{}
	code := run(context.Background(), o, out, func(s *stack) {
		if nc, err := nats.Connect(s.nats.ClientURL()); err == nil {
			nc.Close()
			t.Error("NATS took a connection without a user")
		}
		for _, key := range []string{"", demoTemporalKey("100002")} {
			co := client.Options{HostPort: s.temporal.Address, Namespace: s.namespace("100001")}
			if key != "" {
				co.Credentials, co.ConnectionOptions.TLSDisabled = client.NewAPIKeyStaticCredentials(key), true
			}
			c, err := client.NewLazyClient(co)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{})
			var denied *serviceerror.PermissionDenied
			if !errors.As(err, &denied) {
				t.Errorf("listing the demo's runs with key %q: %v", key, err)
			}
			c.Close()
		}
	})
	summary := out.String()
	if code != 0 || strings.Count(summary, "ok    ") != 3 || strings.Contains(summary, "FAILED") ||
		!strings.Contains(summary, "IMAGEFLOW_NATS_USER=sender-100001") ||
		!strings.Contains(summary, "/namespaces/imageflow-100001/workflows/") ||
		!strings.Contains(summary, "/namespaces/imageflow-100002/workflows/accept-") ||
		!strings.Contains(summary, "--namespace imageflow-100001 (the operator's internal frontend") {
		t.Fatalf("exit %d, summary:\n%s", code, summary)
	}
	conf, err := os.ReadFile(filepath.Join(dir, authFile))
	if err != nil || !strings.Contains(string(conf), "user: worker-100002") ||
		strings.Contains(string(conf), demoNATSPassword(events.RoleWorker, "100002")) {
		t.Fatalf("%s: %v\n%s", authFile, err, conf)
	}
}
