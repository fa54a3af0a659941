package main

import (
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/workflows"
)

// TestBulkTextFollowsABulk: a bulk's status line counts every state, the rate and an ETA that
// moves with the clock (recomputed as of now, not as of the last child's end), and the rows name
// each failure with its reason.
func TestBulkTextFollowsABulk(t *testing.T) {
	began := time.Now().Add(-30 * time.Minute)
	b := workflows.BulkStatus{Step: "migrating", Running: 10, Left: 290,
		Summary: workflows.BulkSummary{Total: 400, Started: began, Succeeded: 95, AlreadyDone: 5, Failed: 5,
			Runs: 2, Failures: []workflows.BulkFailure{{ImageID: "img-7", Error: "licensed: not exportable"}}}}
	b.Pace(time.Now())
	line := bulkText(b)
	for _, want := range []string{"migrating: 100 of 400 ended", "95 succeeded (5 done by an earlier run)",
		"5 failed", "10 running", "290 not started", "200 images/h", "ETA ", "(in 1h30m", "run 2"} {
		if !strings.Contains(line, want) {
			t.Errorf("status line %q lacks %q", line, want)
		}
	}
	later := b
	later.Pace(time.Now().Add(10 * time.Minute)) // nothing ended since: the rate falls, the ETA moves out
	if !later.ETA.After(b.ETA) || later.PerHour >= b.PerHour {
		t.Errorf("ten idle minutes later: %.0f/h ETA %v, before %.0f/h ETA %v", later.PerHour, later.ETA,
			b.PerHour, b.ETA)
	}
	rows := failureRows(b.Summary.Failures)
	if len(rows) != 1 || rows[0][0] != "failed img-7" || rows[0][1] != "licensed: not exportable" {
		t.Errorf("failure rows %v", rows)
	}
}
