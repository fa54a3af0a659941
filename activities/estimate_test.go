package activities

import (
	"math"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
)

// TestMeter: configured rates until measured, then each rate on its own; the basis says which.
func TestMeter(t *testing.T) {
	m := newMeter(50<<20, 20<<20)
	m.observe(false, 512<<10, 10*time.Second) // too small to say anything
	m.observe(true, 100<<20, 500*time.Millisecond)
	if r := m.current(); r.Basis != "configured" || r.CopyBytesPerSecond != 50<<20 {
		t.Fatalf("after small moves: %+v", r)
	}
	m.observe(true, 100<<20, 100*time.Second) // 1 MiB/s: replaces the configured rate
	if r := m.current(); r.TaskBytesPerSecond != 1<<20 || r.Basis != "tasks measured, copy configured" {
		t.Fatalf("after a task: %+v", r)
	}
	m.observe(true, 200<<20, 100*time.Second) // 2 MiB/s, weighted 0.3
	m.observe(false, 100<<20, 10*time.Second)
	r := m.current()
	if want := 0.7*(1<<20) + 0.3*(2<<20); math.Abs(r.TaskBytesPerSecond-want) > 1 || r.CopyBytesPerSecond != 10<<20 ||
		r.Basis != "measured" {
		t.Fatalf("after both: %+v (want task rate %.0f)", r, want)
	}
	e := r.Estimate(100<<20, true)
	if e.CopySeconds != 10 || e.TotalSeconds != e.ExportSeconds+e.CopySeconds+e.ImportSeconds ||
		r.Estimate(100<<20, false).ExportSeconds != 0 {
		t.Fatalf("estimate %+v", e)
	}
}

// TestHashMismatch: the MD5 must match; os_hash_value must match when both sides use the algorithm.
func TestHashMismatch(t *testing.T) {
	img := cloud.Image{Checksum: "m", Properties: map[string]string{"os_hash_algo": "sha512", "os_hash_value": "v"}}
	cases := []struct {
		in   UploadInput
		want bool
	}{
		{UploadInput{ExpectedMD5: "m"}, false},
		{UploadInput{ExpectedMD5: "x"}, true},
		{UploadInput{ExpectedMD5: "m", ExpectedHashAlgo: "sha512", ExpectedHashValue: "v"}, false},
		{UploadInput{ExpectedMD5: "m", ExpectedHashAlgo: "sha512", ExpectedHashValue: "w"}, true},
		{UploadInput{ExpectedMD5: "m", ExpectedHashAlgo: "sha256", ExpectedHashValue: "w"}, false},
	}
	for i, c := range cases {
		if got := hashMismatch(img, c.in) != ""; got != c.want {
			t.Errorf("case %d: mismatch %v, want %v", i, got, c.want)
		}
	}
}
