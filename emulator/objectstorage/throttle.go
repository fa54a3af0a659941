package objectstorage

import (
	"context"
	"time"
)

// Throttle is how fast a large object's segments are served, as Swift's dlo and slo middlewares
// pace them (Swift 2.30's defaults; Rackspace documents no other): the first After segments of a
// GET at full speed, then PerSecond segments a second. A DLO's every segment counts; an SLO's
// only those under UnderSize bytes. A 40 × 512 KiB DLO takes about 30 s to read on Swift.
type Throttle struct {
	// After is how many counted segments a GET serves before pacing (rate_limit_after_segment).
	After int
	// PerSecond is the pace after that (rate_limit_segments_per_sec); 0 turns pacing off.
	PerSecond float64
	// UnderSize: an SLO segment counts when it is smaller (slo's rate_limit_under_size).
	UnderSize int64
}

// SwiftThrottle is Swift 2.30's default for both middlewares.
var SwiftThrottle = Throttle{After: 10, PerSecond: 1, UnderSize: 1 << 20}

// pacer returns what waits before each segment of res a GET enters, or nil when nothing would.
func (t Throttle) pacer(ctx context.Context, res *resolved) func(part int) {
	if t.PerSecond <= 0 || res.viaDLO == nil {
		return nil
	}
	every := time.Duration(float64(time.Second) / t.PerSecond)
	counted := 0
	var next time.Time
	return func(part int) {
		if !res.viaDLO[part] && res.parts[part].Size >= t.UnderSize {
			return
		}
		if counted++; counted <= t.After {
			return
		}
		now := time.Now()
		if wait := next.Sub(now); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
			timer.Stop()
			now = next
		}
		next = now.Add(every)
	}
}
