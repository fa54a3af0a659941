package devserver

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

// TestTenantsApartInTemporal runs the embedded server with a key per tenant and tries, as the
// partner, every call it could make on the demo's runs: list, describe, signal, cancel,
// terminate, schedule, and learning whether the demo's namespace exists at all. Each is refused
// with the same PermissionDenied whether the namespace exists or not; the demo's own calls,
// schedules included (run by the server's worker service through the internal frontend), work.
func TestTenantsApartInTemporal(t *testing.T) {
	keys := &Keys{Admin: "admin-key", Tenants: map[string]string{"100001": "demo-key", "100002": "partner-key"}}
	ts, err := StartTemporal(TemporalOptions{DBPath: filepath.Join(t.TempDir(), "t.db"), Port: mustFreePort(t),
		Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ts.Stop() })
	ctx := context.Background()
	demo := dialAs(t, ts.Address, NamespaceOf("100001"), "demo-key")
	partner := dialAs(t, ts.Address, NamespaceOf("100002"), "partner-key")

	run, err := demo.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{ID: "migrate-100001-x",
		TaskQueue: "imageflow-100001"}, "MigrateImage")
	if err != nil {
		t.Fatalf("the demo starting a run in its namespace: %v", err)
	}
	ws := partner.WorkflowService()
	ns := NamespaceOf("100001")
	exec := run.GetID()
	doors := map[string]func() error{
		"list": func() error {
			_, err := ws.ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ns})
			return err
		},
		"describe": func() error {
			_, err := partner.DescribeWorkflowExecution(ctx, exec, "")
			return err
		},
		"signal":    func() error { return partner.SignalWorkflow(ctx, exec, "", "decision", "accepted") },
		"cancel":    func() error { return partner.CancelWorkflow(ctx, exec, "") },
		"terminate": func() error { return partner.TerminateWorkflow(ctx, exec, "", "spite") },
		"schedule": func() error {
			_, err := ws.ListSchedules(ctx, &workflowservice.ListSchedulesRequest{Namespace: ns})
			return err
		},
		"describe the namespace": func() error {
			_, err := ws.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
			return err
		},
		"list namespaces": func() error {
			_, err := ws.ListNamespaces(ctx, &workflowservice.ListNamespacesRequest{})
			return err
		},
	}
	// The partner's client is bound to its own namespace; these reach for the demo's by name.
	partnerOnDemo := dialAs(t, ts.Address, ns, "partner-key")
	doors["describe"] = func() error { _, err := partnerOnDemo.DescribeWorkflowExecution(ctx, exec, ""); return err }
	doors["signal"] = func() error { return partnerOnDemo.SignalWorkflow(ctx, exec, "", "decision", "accepted") }
	doors["cancel"] = func() error { return partnerOnDemo.CancelWorkflow(ctx, exec, "") }
	doors["terminate"] = func() error { return partnerOnDemo.TerminateWorkflow(ctx, exec, "", "spite") }
	for what, door := range doors {
		err := door()
		var denied *serviceerror.PermissionDenied
		if !errors.As(err, &denied) {
			t.Errorf("the partner could %s the demo's: %v", what, err)
		}
	}
	// A namespace that does not exist is refused in the same words: no tenant learns who exists.
	_, errSome := ws.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	_, errNone := ws.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "imageflow-999999"})
	if errSome == nil || errNone == nil || errSome.Error() != errNone.Error() {
		t.Errorf("an existing and a missing namespace answer differently: %v / %v", errSome, errNone)
	}
	if d, err := demo.DescribeWorkflowExecution(ctx, exec, ""); err != nil ||
		d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the demo's run after the partner's tries: %v %v", d, err)
	}
	noKey := dialAs(t, ts.Address, ns, "")
	if _, err := noKey.DescribeWorkflowExecution(ctx, exec, ""); err == nil {
		t.Error("a call without a key was answered")
	}
	wrong := dialAs(t, ts.Address, ns, "guess")
	if _, err := wrong.DescribeWorkflowExecution(ctx, exec, ""); err == nil {
		t.Error("a call with a key no tenant has was answered")
	}
	scheduleRuns(t, demo)
}

// scheduleRuns proves a tenant's schedule fires: the server's own scheduler reaches the
// frontend through the internal one, past the authorizer.
func scheduleRuns(t *testing.T, c sdkclient.Client) {
	t.Helper()
	ctx := context.Background()
	h, err := c.ScheduleClient().Create(ctx, sdkclient.ScheduleOptions{ID: "nightly", TriggerImmediately: true,
		Spec: sdkclient.ScheduleSpec{Intervals: []sdkclient.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action: &sdkclient.ScheduleWorkflowAction{ID: "distribute-100001-nightly", Workflow: "Distribute",
			TaskQueue: "imageflow-100001"}})
	if err != nil {
		t.Fatalf("the demo's schedule: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := h.Describe(ctx)
		if err == nil && len(d.Info.RecentActions) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's schedule did not start its run in 30 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func dialAs(t *testing.T, addr, namespace, key string) sdkclient.Client {
	t.Helper()
	o := sdkclient.Options{HostPort: addr, Namespace: namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))}
	if key != "" {
		o.Credentials = sdkclient.NewAPIKeyStaticCredentials(key)
		o.ConnectionOptions.TLSDisabled = true // the embedded server speaks plain gRPC on loopback
	}
	c, err := sdkclient.NewLazyClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func mustFreePort(t *testing.T) int {
	t.Helper()
	p, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
