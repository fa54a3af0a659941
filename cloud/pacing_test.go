package cloud

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
)

// TestPacingLearnsTheLimit: a cloud allows 40 requests a second and refuses the rest with 429
// and Retry-After; 24 callers ask as fast as they can, the client configured with no limit of its
// own. The client must settle at the limit: near all of the allowance taken, and few refusals
// (a client that only waits out each Retry-After meets the limit with every request in flight,
// about one refusal per request accepted).
func TestPacingLearnsTheLimit(t *testing.T) {
	e := startEmu(t)
	c := connect(t, e, "demo")
	web := findImage(t, c, "DFW", "demo-web-01")
	const allowed, callers, span = 40.0, 24, 8 * time.Second
	if err := e.AddFault(emulator.Fault{Kind: "rate-limit", Region: "DFW", Service: "images", Status: 429,
		RequestsPerSecond: allowed}); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(span)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := c.GetImage(ctx, "DFW", web.ID)
				if err != nil && time.Until(end) > 2*time.Second { // not a wait cut off by the test's end
					t.Errorf("a paced call failed: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	f := e.Faults()[0]
	perSec := float64(f.Passed) / span.Seconds()
	t.Logf("accepted %d (%.1f/s of %.0f allowed), refused %d (%.3f per accepted)", f.Passed, perSec, allowed,
		f.Refused, float64(f.Refused)/float64(f.Passed))
	if float64(f.Refused) > 0.1*float64(f.Passed) {
		t.Errorf("refused %d for %d accepted: the client storms the limit", f.Refused, f.Passed)
	}
	if perSec < 0.8*allowed {
		t.Errorf("accepted %.1f requests/s of %.0f allowed: the client settled far under the limit", perSec, allowed)
	}
}
