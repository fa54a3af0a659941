package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/imageflow/imageflow/cloud"
)

// EtaSignal tells a run when one of its copies will end, as measured by the copy, once that has
// moved from what the run last heard: the run's ETA (its status, the UI's details, ImageflowEta)
// was estimated from rates before the copy began and would otherwise stand still. Its argument
// is a CopyEnd.
const EtaSignal = "imageflow.eta"

// CopyEnd is a copy's measured end.
type CopyEnd struct {
	// Region is the copy's target region.
	Region string `json:"region"`
	// Ends is when the copy ends at its measured rate.
	Ends time.Time `json:"ends"`
}

// etaTeller watches a copy's progress and tells its run the copy's end when it moved by shift
// or by a tenth of the time left, whichever is more, from the last told (first: the run's own
// expectation; none: as soon as the rate is measured). Signals go one at a time, off the copy's
// path; a newer end waiting while one is sent replaces the older.
type etaTeller struct {
	ctx     context.Context
	region  string
	shift   time.Duration
	started time.Time

	mu      sync.Mutex
	told    time.Time
	sending bool
	next    *CopyEnd
}

func newEtaTeller(ctx context.Context, region string, expected time.Time, shift time.Duration) *etaTeller {
	return &etaTeller{ctx: ctx, region: region, shift: shift, started: time.Now(), told: expected}
}

func (t *etaTeller) observe(p cloud.CopyProgress) {
	ends, err := time.Parse(time.RFC3339, p.ETA)
	// The rate of a copy's first seconds is its ramp-up: wait for a tenth of the bytes or shift.
	if err != nil || p.BytesPerSecond <= 0 ||
		(time.Since(t.started) < t.shift && (p.BytesTotal == 0 || (p.BytesDone+p.BytesInFlight)*10 < p.BytesTotal)) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	moved := ends.Sub(t.told)
	if moved < 0 {
		moved = -moved
	}
	if !t.told.IsZero() && moved < max(t.shift, time.Until(ends)/10) {
		return
	}
	t.told = ends
	end := &CopyEnd{Region: t.region, Ends: ends.UTC()}
	if t.sending {
		t.next = end
		return
	}
	t.sending = true
	go t.send(end)
}

func (t *etaTeller) send(end *CopyEnd) {
	for end != nil {
		if err := signalRun(t.ctx, EtaSignal, *end); err != nil {
			activity.GetLogger(t.ctx).Warn("could not tell the run the copy's end", "error", err)
		}
		t.mu.Lock()
		end, t.next = t.next, nil
		if end == nil {
			t.sending = false
		}
		t.mu.Unlock()
	}
}
