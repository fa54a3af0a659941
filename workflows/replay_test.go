package workflows

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
)

// TestReplayRecordedHistories replays histories recorded from real runs (testdata/histories,
// refreshed with IMAGEFLOW_RECORD_HISTORIES=1 go test -run 'RealTemporal|Distribute' ./workflows/) through the
// registered workflow code: a change that breaks determinism for running workflows fails here.
// Such a change needs workflow.GetVersion.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil || len(files) < 6 {
		t.Fatalf("want recorded histories for migrate, share, accept, bulk, distribute and prune, found %v (%v)",
			files, err)
	}
	logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			Register(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(logger, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join("testdata", "histories", "migrate.json")); err != nil {
		t.Fatal(err)
	}
}
