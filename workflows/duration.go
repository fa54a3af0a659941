package workflows

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// MaxDuration bounds every duration and every time ahead a request may give (a share's
// deadline, a migration's deadline, a heartbeat timeout): a year and a day. Anything longer is a
// mistake (a unit slip, an overflow) rather than a plan, and would hold a run open for good.
const MaxDuration = 366 * 24 * time.Hour

// Duration is a time.Duration that reads and writes JSON as "90s" or "72h", so events and CLI
// inputs stay readable. A bare number is taken as seconds. A duration given must be positive and
// at most MaxDuration: leave the field out for its default.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("duration must be a string like \"72h\" or a number of seconds, got %.40s", b)
		}
		// Checked before converting: float seconds past int64 nanoseconds wrap to any value.
		if math.IsNaN(secs) || secs <= 0 || secs > MaxDuration.Seconds() {
			return fmt.Errorf("duration %.40s seconds: %w", b, errDurationRange)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	if v <= 0 || v > MaxDuration {
		return fmt.Errorf("duration %q: %w", s, errDurationRange)
	}
	*d = Duration(v)
	return nil
}

var errDurationRange = fmt.Errorf("must be more than zero and at most %s (leave it out for the default)",
	"366 days")

// check refuses a duration set in Go (by the starter, or a caller of the SDK) that the JSON door
// would refuse: negative or beyond MaxDuration. Zero means "not set" there.
func (d Duration) check(field string) error {
	if d < 0 || d.D() > MaxDuration {
		return invalid("%s %s must be more than zero and at most 366 days", field, d.D())
	}
	return nil
}

// CheckDeadline refuses a deadline further than MaxDuration after now (a typo in the year, an
// overflow): a run would wait on it for good. A deadline already past is the workflow's to
// refuse, with the time it started.
func CheckDeadline(field string, deadline, now time.Time) error {
	if !deadline.IsZero() && deadline.Sub(now) > MaxDuration {
		return invalid("%s %s is more than 366 days away", field, deadline.UTC().Format(time.RFC3339))
	}
	return nil
}

// or is d, or def when d is not set.
func (d Duration) or(def time.Duration) Duration {
	if d <= 0 {
		return Duration(def)
	}
	return d
}
