package cloud

import (
	"testing"
	"time"
)

// TestRateForgetsTheStartingBurst: the kernel takes a burst at a copy's start; after a window the
// rate is the link's, where an average since the start still counted the burst.
func TestRateForgetsTheStartingBurst(t *testing.T) {
	t0 := time.Now()
	w := rateWindow{samples: []rateSample{{at: t0}}}
	if r := w.add(t0.Add(500*time.Millisecond), 40<<20); r != 0 {
		t.Fatalf("rate %v from half a second, want none yet", r)
	}
	var r float64
	for s := 1; s <= 30; s++ { // after the 40 MiB burst, 1 MiB a second
		r = w.add(t0.Add(time.Duration(s)*time.Second), 40<<20+int64(s)<<20)
	}
	if r != 1<<20 {
		t.Fatalf("rate %v after 30 s at 1 MiB/s, want %v", r, 1<<20)
	}
	if len(w.samples) > 12 {
		t.Fatalf("kept %d samples for a 10 s window", len(w.samples))
	}
}
