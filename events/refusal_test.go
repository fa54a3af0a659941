package events_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/imageflow/imageflow/events"
)

// TestRefusalsReachHealthAndLog: a permission NATS refuses after start (as nats.go reports it to
// the error handler) is logged with user and subject and kept for /healthz; other NATS errors
// are logged, not kept.
func TestRefusalsReachHealthAndLog(t *testing.T) {
	var log bytes.Buffer
	r := &events.Refusals{}
	h := r.Handler(slog.New(slog.NewTextHandler(&log, nil)), "worker-100001")
	h(nil, nil, errors.New("nats: slow consumer"))
	if err := r.Since(time.Minute); err != nil {
		t.Fatalf("a slow consumer counted as a refusal: %v", err)
	}
	h(nil, nil, fmt.Errorf("%w: %s", nats.ErrPermissionViolation,
		`Permissions Violation for Publish to "imageflow.evt.100001.migration.completed"`))
	err := r.Since(time.Minute)
	var pe *events.PermissionError
	if !errors.As(err, &pe) || pe.Subject != "imageflow.evt.100001.migration.completed" || pe.Action != "publish" ||
		pe.User != "worker-100001" {
		t.Fatalf("the refusal kept: %v", err)
	}
	if !strings.Contains(log.String(), "NATS refused a permission") ||
		!strings.Contains(log.String(), "subject=imageflow.evt.100001.migration.completed") {
		t.Errorf("log: %s", log.String())
	}
	if err := r.Since(0); err != nil {
		t.Errorf("a refusal older than the window still shown: %v", err)
	}
}
