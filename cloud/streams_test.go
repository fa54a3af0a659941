package cloud

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
)

// TestQueueCutsOnlyTheTail hands out 1 GiB of whole 64 MiB source segments to 4 transfers: the
// pieces stay whole (their MD5 known) while the bytes left are plenty, shrink toward the end so
// the last round is shared, never below minPiece, and cover every byte once.
func TestQueueCutsOnlyTheTail(t *testing.T) {
	q := newQueue(context.Background(), true)
	for off := int64(0); off < gib; off += 64 << 20 {
		q.add(piece{off: off, size: 64 << 20, wantETag: "e"})
	}
	q.close()
	var pos int64
	var whole, cut int
	for {
		p, wasCut, ok := q.next(4)
		if !ok {
			break
		}
		if p.off != pos {
			t.Fatalf("piece at %d, want %d", p.off, pos)
		}
		pos = p.end()
		if wasCut && p.wantETag != "" {
			t.Fatalf("cut piece %+v keeps the whole segment's MD5", p)
		}
		if p.size == 64<<20 && p.wantETag != "" {
			whole++
			if cut > 0 {
				t.Fatalf("a whole segment after a cut one: the cuts are not at the end")
			}
			continue
		}
		cut++
		if p.size < minPiece && pos != gib {
			t.Fatalf("cut piece of %d bytes, below %d", p.size, minPiece)
		}
	}
	if pos != gib {
		t.Fatalf("pieces cover %d bytes, want %d", pos, gib)
	}
	if whole < 10 || cut < 4 {
		t.Fatalf("%d whole and %d cut pieces: want most whole and the last round shared", whole, cut)
	}
}

// TestQueueLeavesLineagePiecesWhole: a lineage's ranges must line up between generations.
func TestQueueLeavesLineagePiecesWhole(t *testing.T) {
	q := newQueue(context.Background(), false)
	q.add(piece{off: 0, size: 64 << 20}, piece{off: 64 << 20, size: 64 << 20})
	q.close()
	for range 2 {
		if p, cut, ok := q.next(16); !ok || cut || p.size != 64<<20 {
			t.Fatalf("piece %+v cut %v ok %v", p, cut, ok)
		}
	}
}

// TestTuningFindsAPerConnectionCap copies over a link capped per connection, the shape of a
// long-distance link where each TCP stream is bound by its window: more transfers pay, so tuning
// must go past its start of 4. (Bench row 2 measures what it chooses on loopback.)
//
// The cap, 2 MiB/s, is a twelfth of bench row 2's, so the tuning window is twelve times as long
// (5 s, not 400 ms): a window then holds what it holds at real rates, many times the megabytes
// a new connection's socket buffers take in at once (counted as moved before the far end reads
// them). At the real window that burst alone decided the step in about one run in three under
// the race detector. The image leaves room for two windows at 8 transfers, so a step that does
// not pay is seen, not cut short by the end of the copy.
func TestTuningFindsAPerConnectionCap(t *testing.T) {
	_, c, img, src := cappedLink(t, 16<<20)
	dst := ObjectRef{Region: "IAD", Container: "in", Object: "capped.vhd"}
	// SegmentSize keeps the source's 16 MiB segments whole (scaled from production's 1000 MB).
	opts := CopyOptions{MaxParallelism: 16, SegmentSize: 16 << 20, tuneWindow: 5 * time.Second}
	res, err := c.CopyAcrossRegions(context.Background(), src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Parallelism <= startStreams {
		t.Fatalf("tuning stayed at %d transfers on a per-connection cap", res.Parallelism)
	}
	if got := md5Of(t, c, dst, img.Size); got != img.Checksum {
		t.Fatalf("target MD5 %s, want %s", got, img.Checksum)
	}
	t.Logf("per-connection cap: tuning chose %d transfers, %d segments", res.Parallelism, res.Segments)

	// The next copy over the same link starts where this one settled, without ramping again.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := 0
	opts.Progress = func(p CopyProgress) {
		if first == 0 {
			first = p.Parallelism
			cancel()
		}
	}
	_, _ = c.CopyAcrossRegions(ctx, src, ObjectRef{Region: "IAD", Container: "in", Object: "again.vhd"}, opts)
	if first != res.Parallelism {
		t.Fatalf("the next copy over the link started at %d transfers, want the %d the last one settled on",
			first, res.Parallelism)
	}
}

// TestTuningShrinksWhenTheLinkDegrades: a copy tuned up to 16 transfers on a per-connection cap
// meets, mid-copy, one shared link of an eighth of that rate: more transfers no longer move more,
// and the tuner halves them (as their pieces finish) rather than keep 16 connections busy for
// nothing. The link then recovers so the copy ends soon, and it arrives whole. Small segments
// (1 MiB) let a halving take hold in seconds on the degraded link, as 1 GiB segments do in
// minutes on a real one; the degraded rate is far enough below any rate the race detector
// leaves the capped copy that the drop is a drop there too.
func TestTuningShrinksWhenTheLinkDegrades(t *testing.T) {
	e, c, img, src := cappedLink(t, 1<<20)
	var mu sync.Mutex
	var seen []int
	var degradedAt, shrunk int // positions in seen
	progress := func(p CopyProgress) {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 || seen[len(seen)-1] != p.Parallelism {
			seen = append(seen, p.Parallelism)
		}
		switch {
		case p.Parallelism == 16 && degradedAt == 0:
			degradedAt = len(seen)
			time.AfterFunc(time.Second, func() {
				_ = e.ReplaceFaults([]emulator.Fault{
					{Kind: "link", Region: "IAD", Service: "files", Method: "PUT", BytesPerSecond: 4 << 20},
					{Kind: "latency", Region: "IAD", Service: "files", Latency: "20ms"},
				})
			})
		case degradedAt > 0 && shrunk == 0 && p.Parallelism < 16:
			shrunk = len(seen)
			e.ClearFaults() // the link recovers: the rest goes at full speed
		}
	}
	dst := ObjectRef{Region: "IAD", Container: "in", Object: "degraded.vhd"}
	opts := CopyOptions{MaxParallelism: 16, SegmentSize: 1 << 20, tuneWindow: time.Second, Progress: progress}
	if _, err := c.CopyAcrossRegions(context.Background(), src, dst, opts); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("parallelism over the copy: %v", seen)
	if degradedAt == 0 || shrunk == 0 {
		t.Fatalf("tuning did not shrink after the link degraded: went %v", seen)
	}
	if got := md5Of(t, c, dst, img.Size); got != img.Checksum {
		t.Fatalf("target MD5 %s, want %s", got, img.Checksum)
	}
}

// cappedLink exports a 320 MiB image in segments of segSize and caps every upload into IAD at
// 2 MiB/s per connection, 20 ms a request: low enough that 16 capped transfers stay well under
// what this machine moves even under the race detector (which slows hashing and serving several
// times), so the cap, not the cores, bounds each step of tuning.
func cappedLink(t *testing.T, segSize int64) (*emulator.Emulator, *Client, Image, ObjectRef) {
	t.Helper()
	e := startEmu(t, func(c *emulator.Config) {
		c.Images = []emulator.SeedImage{{Name: "big-01", Size: 320 << 20}}
		c.ExportSegmentSize = segSize
	})
	c := connect(t, e, "demo")
	img, src := exportImage(t, c, "big-01", "exports")
	if err := e.ReplaceFaults([]emulator.Fault{
		{Kind: "bandwidth", Region: "IAD", Service: "files", Method: "PUT", BytesPerSecond: 2 << 20},
		{Kind: "latency", Region: "IAD", Service: "files", Latency: "20ms"},
	}); err != nil {
		t.Fatal(err)
	}
	return e, c, img, src
}
