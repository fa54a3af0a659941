package cloud

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
)

const gib = 1 << 30

// exportImage exports a seeded image in DFW and waits for the task; it returns the image.
func exportImage(t testing.TB, c *Client, name, container string) (Image, ObjectRef) {
	t.Helper()
	ctx := context.Background()
	img := findImage(t, c, "DFW", name)
	if err := c.EnsureContainer(ctx, "DFW", container); err != nil {
		t.Fatal(err)
	}
	tk, err := c.Export(ctx, "DFW", img.ID, container)
	if err != nil {
		t.Fatal(err)
	}
	for !tk.Done() {
		time.Sleep(50 * time.Millisecond)
		if tk, err = c.GetTask(ctx, "DFW", tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	cont, obj, ok := tk.ExportLocation()
	if tk.Status != "success" || !ok {
		t.Fatalf("export %+v", tk)
	}
	return img, ObjectRef{Region: "DFW", Container: cont, Object: obj}
}

func md5Of(t testing.TB, c *Client, ref ObjectRef, size int64) string {
	t.Helper()
	rc, err := c.OpenRange(context.Background(), ref.Region, ref.Container, ref.Object, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := md5.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func bigImage(c *emulator.Config) {
	c.Images = []emulator.SeedImage{{Name: "big-01", Size: gib}}
	c.ExportSegmentSize = 64 << 20
}

// TestCopyResumesAfterCancel copies a 1 GiB export DFW -> IAD with 4 transfers, cancels midway,
// runs again with the recorded progress: only the missing segments are sent, the bytes match.
func TestCopyResumesAfterCancel(t *testing.T) {
	e := startEmu(t, bigImage)
	c := connect(t, e, "demo")
	img, src := exportImage(t, c, "big-01", "exports")
	dst := ObjectRef{Region: "IAD", Container: "imports", Object: "big-01.vhd"}

	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var last CopyProgress
	_, err := c.CopyAcrossRegions(ctx, src, dst, CopyOptions{Parallelism: 4, Progress: func(p CopyProgress) {
		mu.Lock()
		last = p
		mu.Unlock()
		if p.SegmentsDone >= 7 {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("cancelled copy reported success")
	}
	mu.Lock()
	done := last
	mu.Unlock()
	// 16 source segments; a piece cut toward the end (a busy machine's slow transfers reach it
	// sooner) adds one.
	if done.SegmentsDone < 7 || done.SegmentsDone >= done.SegmentsTotal || done.SegmentsTotal < 16 {
		t.Fatalf("progress at cancel: %d of %d", done.SegmentsDone, done.SegmentsTotal)
	}
	res, err := c.CopyAcrossRegions(
		context.Background(),
		src,
		dst,
		CopyOptions{Parallelism: 4, Done: done.Done, VerifyMD5: img.Checksum},
	)
	if err != nil {
		t.Fatal(err)
	}
	missing := int64(done.SegmentsTotal-done.SegmentsDone) * (64 << 20)
	// Segments that finished after the last progress report are found at the target too.
	if res.SegmentsSkipped < done.SegmentsDone || res.BytesSent > missing || res.BytesSent == 0 {
		t.Fatalf(
			"resume sent %d bytes, skipped %d segments; %d were done (%d bytes missing)",
			res.BytesSent,
			res.SegmentsSkipped,
			done.SegmentsDone,
			missing,
		)
	}
	// The last pieces are cut smaller so no transfer idles at the end: more than 16 segments.
	if res.Bytes != gib || res.Segments < 16 || res.Manifest != "slo" {
		t.Fatalf("result %+v", res)
	}
	if got := md5Of(t, c, dst, gib); got != img.Checksum {
		t.Fatalf("target MD5 %s, source image %s", got, img.Checksum)
	}
	t.Logf(
		"first attempt finished %d of 16 segments; the resume skipped %d and sent %d MiB",
		done.SegmentsDone,
		res.SegmentsSkipped,
		res.BytesSent>>20,
	)

	// A third run has nothing to send, even without progress details: a whole source segment's
	// MD5 is in the source listing, and a cut one's is read from the source range.
	again, err := c.CopyAcrossRegions(context.Background(), src, dst, CopyOptions{Parallelism: 4})
	if err != nil || again.BytesSent != 0 || again.SegmentsSkipped != res.Segments {
		t.Fatalf("third run: %+v %v", again, err)
	}
}

// TestCopyHeapIsBounded copies 1 GiB and samples the heap: it stays within 64 MiB of the start.
func TestCopyHeapIsBounded(t *testing.T) {
	e := startEmu(t, bigImage)
	c := connect(t, e, "demo")
	img, src := exportImage(t, c, "big-01", "exports")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var peak uint64
	var pmu sync.Mutex
	sample := func(CopyProgress) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		pmu.Lock()
		peak = max(peak, m.HeapInuse)
		pmu.Unlock()
	}
	res, err := c.CopyAcrossRegions(
		context.Background(),
		src,
		ObjectRef{Region: "IAD", Container: "in", Object: "big.vhd"},
		CopyOptions{Parallelism: 4, SegmentSize: 16 << 20, Progress: sample},
	)
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments < 64 || res.BytesSent != gib {
		t.Fatalf("result %+v", res)
	}
	grew := int64(peak) - int64(before)
	t.Logf(
		"heap in use before %d MiB, peak %d MiB (grew %d MiB) copying 1 GiB; image %s",
		before>>20,
		peak>>20,
		grew>>20,
		img.ID,
	)
	if grew > 64<<20 {
		t.Fatalf("heap grew by %d MiB copying 1 GiB", grew>>20)
	}
}

// TestCopySurvivesFaults copies through 503 bursts, a rate-limit storm and expired tokens.
func TestCopySurvivesFaults(t *testing.T) {
	e := startEmu(t, func(c *emulator.Config) { c.ExportSegmentSize = 8 << 20 })
	c := connect(t, e, "demo")
	img, src := exportImage(t, c, "demo-web-01", "exports")
	_ = e.AddFault(
		emulator.Fault{
			Kind:    "error",
			Region:  "IAD",
			Service: "files",
			Method:  "PUT",
			Path:    "/v1/MossoCloudFS_100001/in/",
			Status:  503,
			Count:   3,
		},
	)
	_ = e.AddFault(
		emulator.Fault{Kind: "rate-limit", Region: "DFW", Service: "files", Method: "GET", RetryAfter: 1, Count: 2},
	)
	e.ExpireTokens()
	res, err := c.CopyAcrossRegions(
		context.Background(),
		src,
		ObjectRef{Region: "IAD", Container: "in", Object: "web.vhd"},
		CopyOptions{Parallelism: 2, SegmentSize: 8 << 20, VerifyMD5: img.Checksum},
	)
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 8 || res.Bytes != 64<<20 {
		t.Fatalf("result %+v", res)
	}
}

func TestCopyPlainObjectAndSplitting(t *testing.T) {
	e := startEmu(t)
	ctx := context.Background()
	c := connect(t, e, "demo")
	img, src := exportImage(t, c, "demo-web-01", "exports") // one 64 MiB segment
	// Split into 5 MiB pieces: the last piece of 64 MiB is 4 MiB, fine for an SLO.
	res, err := c.CopyAcrossRegions(
		ctx,
		src,
		ObjectRef{Region: "LON", Container: "in", Object: "web.vhd"},
		CopyOptions{SegmentSize: 5 << 20, VerifyMD5: img.Checksum},
	)
	if err != nil || res.Segments != 13 || res.Manifest != "slo" {
		t.Fatalf("split copy %+v %v", res, err)
	}
	// Cut at 1.5 MiB, each 5 MiB source segment would leave a 0.5 MiB tail, which Swift serves
	// at one a second in a static manifest: the tails are joined to the piece before them.
	res, err = c.CopyAcrossRegions(
		ctx,
		ObjectRef{Region: "LON", Container: "in", Object: "web.vhd"},
		ObjectRef{Region: "SYD", Container: "in", Object: "web.vhd"},
		CopyOptions{SegmentSize: 3 << 19, Parallelism: 8, VerifyMD5: img.Checksum},
	)
	if err != nil || res.Manifest != "slo" {
		t.Fatalf("copy of small pieces %+v %v", res, err)
	}
	segs, err := c.Segments(ctx, "SYD", "in", ObjectInfo{Name: "web.vhd", SLO: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range segs[:len(segs)-1] {
		if s.Size < 1<<20 {
			t.Fatalf("segment %d of %d is %d bytes, under 1 MiB", i, len(segs), s.Size)
		}
	}
	if _, err := c.CopyAcrossRegions(ctx, ObjectRef{Region: "DFW", Container: "exports", Object: "nope"}, ObjectRef{Region: "IAD", Container: "x", Object: "y"}, CopyOptions{}); !IsNotFound(
		err,
	) {
		t.Fatalf("missing source: %v", err)
	}
}

// TestCopyProgressFromTheFirstMegabyte: on a slow link the caller hears the totals before any
// byte moves and sees bytes inside unfinished segments, not only whole segments.
func TestCopyProgressFromTheFirstMegabyte(t *testing.T) {
	e := startEmu(t, func(c *emulator.Config) { c.ExportSegmentSize = 32 << 20 })
	c := connect(t, e, "demo")
	img, src := exportImage(t, c, "demo-web-01", "exports")
	_ = e.AddFault(
		emulator.Fault{Kind: "bandwidth", Region: "IAD", Service: "files", Method: "PUT", BytesPerSecond: 32 << 20},
	)
	var mu sync.Mutex
	var seen []CopyProgress
	_, err := c.CopyAcrossRegions(
		context.Background(),
		src,
		ObjectRef{Region: "IAD", Container: "in", Object: "web.vhd"},
		CopyOptions{Parallelism: 2, SegmentSize: 32 << 20, Progress: func(p CopyProgress) {
			mu.Lock()
			seen = append(seen, p)
			mu.Unlock()
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 || seen[0].BytesTotal != img.Size || seen[0].Copied() != 0 || seen[0].TargetRegion != "IAD" {
		t.Fatalf("first report %+v, want the totals for IAD before any byte", seen[0])
	}
	partial := 0
	for _, p := range seen {
		if p.SegmentsDone == 0 && p.Copied() > 0 {
			partial++
		}
	}
	last := seen[len(seen)-1]
	if partial < 10 || last.Copied() != img.Size || last.BytesInFlight != 0 {
		t.Fatalf("%d reports inside the first segments (want 10 or more), last %+v", partial, last)
	}
}

// TestCopyCatchesCorruptionWithoutHashing: whole source segments go without a client-side MD5,
// so the target's check against the source's ETag must catch a flipped bit and the segment is
// sent again; a range that cuts a segment is hashed in the client and caught there.
func TestCopyCatchesCorruptionWithoutHashing(t *testing.T) {
	e := startEmu(t, func(c *emulator.Config) { c.ExportSegmentSize = 16 << 20 })
	c := connect(t, e, "demo")
	img, src := exportImage(t, c, "demo-web-01", "exports")
	for _, seg := range []int64{16 << 20, 6 << 20} { // aligned, then cutting the source's segments
		_ = e.AddFault(emulator.Fault{Kind: "corrupt", Region: "IAD", Service: "files", Method: "PUT", Count: 2})
		dst := ObjectRef{Region: "IAD", Container: "in", Object: fmt.Sprintf("web-%d.vhd", seg>>20)}
		res, err := c.CopyAcrossRegions(context.Background(), src, dst, CopyOptions{Parallelism: 2, SegmentSize: seg,
			VerifyMD5: img.Checksum})
		if err != nil {
			t.Fatalf("segments of %d MiB: %v", seg>>20, err)
		}
		if res.BytesSent <= img.Size || len(e.Faults()) != 0 {
			t.Fatalf(
				"segments of %d MiB: %d bytes sent for %d, faults left %v: the corruption was not caught and resent",
				seg>>20,
				res.BytesSent,
				img.Size,
				e.Faults(),
			)
		}
	}
}

// TestCopyProvenAtEndMendsACutPiece: with ProvenAtEnd a piece cut from a source segment goes
// unhashed, so a bit flipped on its way lands at the target, as the caller who proves the copy
// at its end expects; a Recheck then finds that one piece and sends it alone again. With
// VerifyMD5 too the copy finds and mends it by itself.
func TestCopyProvenAtEndMendsACutPiece(t *testing.T) {
	e := startEmu(t, func(c *emulator.Config) { c.ExportSegmentSize = 16 << 20 })
	c := connect(t, e, "demo")
	ctx := context.Background()
	img, src := exportImage(t, c, "demo-web-01", "exports")
	// 6 MiB pieces of 16 MiB source segments: every piece is cut, none has a known MD5.
	opts := CopyOptions{Parallelism: 2, SegmentSize: 6 << 20, ProvenAtEnd: true}
	corrupt := emulator.Fault{Kind: "corrupt", Region: "IAD", Service: "files", Method: "PUT", Count: 1,
		Path: "/v1/MossoCloudFS_100001/in/"} // a segment, not the container

	_ = e.AddFault(corrupt)
	dst := ObjectRef{Region: "IAD", Container: "in", Object: "proven.vhd"}
	res, err := c.CopyAcrossRegions(ctx, src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := md5Of(t, c, dst, img.Size); got == img.Checksum || res.BytesSent != img.Size {
		t.Fatalf("MD5 %s after %d bytes sent for %d: the flipped bit should have landed unhashed", got,
			res.BytesSent, img.Size)
	}
	recheck := opts
	recheck.Recheck = true
	if res, err = c.CopyAcrossRegions(ctx, src, dst, recheck); err != nil {
		t.Fatal(err)
	}
	if got := md5Of(t, c, dst, img.Size); got != img.Checksum || res.BytesSent == 0 || res.BytesSent > 6<<20 {
		t.Fatalf("recheck: MD5 %s (want %s), %d bytes sent (want the one bad piece)", got, img.Checksum, res.BytesSent)
	}

	_ = e.AddFault(corrupt)
	dst.Object = "verified.vhd"
	verify := opts
	verify.VerifyMD5 = img.Checksum
	if res, err = c.CopyAcrossRegions(ctx, src, dst, verify); err != nil {
		t.Fatal(err)
	}
	if res.BytesSent <= img.Size || res.BytesSent > img.Size+6<<20 || md5Of(t, c, dst, img.Size) != img.Checksum {
		t.Fatalf("with VerifyMD5: %d bytes sent for %d, want the copy and the one bad piece again", res.BytesSent,
			img.Size)
	}
}

// TestCopyCutsAStalledStream: one source GET hangs after 1 MiB with its connection open, one
// target PUT stops reading after 1 MiB (a hung link each way). With the idle timeout at 1 s (60 s
// in production, against segments that take seconds to a minute), the copy cuts both, sends the
// two pieces again and finishes; the stalls cost about the idle timeout each, not the time until
// something else gives up (before: no timeout at all on streamed bodies).
func TestCopyCutsAStalledStream(t *testing.T) {
	e := startEmu(t, func(c *emulator.Config) { c.ExportSegmentSize = 8 << 20 })
	idle := time.Second
	c := connect(t, e, "demo", Options{IdleTimeout: idle})
	img, src := exportImage(t, c, "demo-web-01", "exports")
	for _, f := range []emulator.Fault{
		// The first GET lists the export's segments (a small body, never stalled); the second
		// reads bytes.
		{Kind: "stall", Region: "DFW", Service: "files", Method: "GET", AfterBytes: 1 << 20, Count: 2,
			Path: "/v1/MossoCloudFS_100001/exports/" + src.Object},
		{Kind: "stall", Region: "IAD", Service: "files", Method: "PUT", AfterBytes: 1 << 20, Count: 1,
			Path: "/v1/MossoCloudFS_100001/in/"},
	} {
		if err := e.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	res, err := c.CopyAcrossRegions(context.Background(), src, ObjectRef{Region: "IAD", Container: "in",
		Object: "web.vhd"}, CopyOptions{Parallelism: 2, VerifyMD5: img.Checksum})
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != 64<<20 {
		t.Fatalf("result %+v", res)
	}
	if left := e.Faults(); len(left) != 0 {
		t.Fatalf("faults not met (the copy never stalled): %+v", left)
	}
	// Two stalls in parallel transfers cost at most two idle timeouts plus retry backoff and
	// the copy itself (well under a second here); a hung stream without the guard never ends.
	if took < idle {
		t.Fatalf("copy took %s, less than the idle timeout %s: nothing stalled", took, idle)
	}
	if took > 2*idle+10*time.Second {
		t.Fatalf("copy took %s with an idle timeout of %s", took, idle)
	}
	t.Logf("copy with two stalls took %s (idle timeout %s)", took.Round(10*time.Millisecond), idle)
}

// TestSlowCutPieceIsNotTakenForAStall: a piece cut from a source segment, hashed on its way,
// that takes longer than the idle timeout while its bytes keep moving must not be cut. At
// production's ratio a cut piece of 500 MB at 5 MiB/s takes 100 s against a 60 s timeout; here
// 12 MiB pieces at 4 MiB/s take 3 s against 2 s (with 1 s and 6 MiB, a loaded machine's pause of
// a second was taken for a stall). The hashing once read the source around the guard, so the
// guard saw no byte, cut every such piece and the copy failed after its retries.
func TestSlowCutPieceIsNotTakenForAStall(t *testing.T) {
	e := startEmu(t, func(c *emulator.Config) { c.ExportSegmentSize = 16 << 20 })
	c := connect(t, e, "demo", Options{IdleTimeout: 2 * time.Second})
	img, src := exportImage(t, c, "demo-web-01", "exports")
	if err := e.AddFault(emulator.Fault{Kind: "bandwidth", Region: "IAD", Service: "files", Method: "PUT",
		BytesPerSecond: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	res, err := c.CopyAcrossRegions(context.Background(), src, ObjectRef{Region: "IAD", Container: "in",
		Object: "slow.vhd"}, CopyOptions{Parallelism: 4, SegmentSize: 12 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesSent != img.Size {
		t.Fatalf("%d bytes sent for %d: a moving piece was cut and sent again", res.BytesSent, img.Size)
	}
}

// TestCopyNestsManifestsPastTheLimit: a copy with more segments than one static manifest may name
// ends in a manifest of manifests (Swift's nested SLO), never a dynamic one, which Swift serves
// at a segment a second; the bytes read back whole.
func TestCopyNestsManifestsPastTheLimit(t *testing.T) {
	e := startEmu(t)
	ctx := context.Background()
	c := connect(t, e, "demo")
	c.manifestLimit = 5
	img, src := exportImage(t, c, "demo-web-01", "exports") // one 64 MiB segment
	dst := ObjectRef{Region: "IAD", Container: "in", Object: "web.vhd"}
	res, err := c.CopyAcrossRegions(ctx, src, dst, CopyOptions{SegmentSize: 2 << 20, VerifyMD5: img.Checksum})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest != "nested-slo" || res.Segments != 32 {
		t.Fatalf("result %+v, want a nested SLO over 32 segments", res)
	}
	top, err := c.Segments(ctx, "IAD", "in", ObjectInfo{Name: "web.vhd", SLO: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(top) > 5 {
		t.Fatalf("the top manifest names %d entries, past the limit of 5", len(top))
	}
	// Run again: every segment is found and kept, and the manifests are written the same.
	again, err := c.CopyAcrossRegions(ctx, src, dst, CopyOptions{SegmentSize: 2 << 20, VerifyMD5: img.Checksum})
	if err != nil || again.SegmentsSkipped != 32 || again.BytesSent != 0 || again.ETag != res.ETag {
		t.Fatalf("second run %+v %v, want all 32 kept and ETag %s", again, err, res.ETag)
	}
}

// TestSmallSourceSegmentsAreJoined: a source of 4 MiB segments copied at the default segment size
// arrives in pieces of at least 32 MiB (readableSegment), since Swift spends a request on every
// segment of a static manifest; whole bytes, and nothing sent twice.
func TestSmallSourceSegmentsAreJoined(t *testing.T) {
	e := startEmu(t, func(c *emulator.Config) { c.ExportSegmentSize = 4 << 20 })
	c := connect(t, e, "demo")
	img, src := exportImage(t, c, "demo-web-01", "exports") // 64 MiB in 16 segments
	dst := ObjectRef{Region: "IAD", Container: "in", Object: "joined.vhd"}
	res, err := c.CopyAcrossRegions(context.Background(), src, dst, CopyOptions{Parallelism: 1, VerifyMD5: img.Checksum})
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 2 || res.BytesSent != img.Size {
		t.Fatalf("copy %+v, want two 32 MiB segments and every byte sent once", res)
	}
}

// TestSourceBreakNamesTheSource: source reads in DFW reset after 4 MiB. The PUT carrying those
// bytes fails with them, and the error names the source's region and the bytes it was reading,
// not the target the PUT was going to (it blamed IAD: "write ... in IAD: readfrom tcp ...").
func TestSourceBreakNamesTheSource(t *testing.T) {
	e := startEmu(t, func(c *emulator.Config) { c.ExportSegmentSize = 16 << 20 })
	c := connect(t, e, "demo")
	_, src := exportImage(t, c, "demo-web-01", "exports")
	if err := e.AddFault(emulator.Fault{Kind: "reset", Region: "DFW", Service: "files", Method: "GET",
		AfterBytes: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CopyAcrossRegions(context.Background(), src, ObjectRef{Region: "IAD", Container: "in",
		Object: "broken.vhd"}, CopyOptions{Parallelism: 1, SegmentSize: 16 << 20, SegmentRetries: 1})
	if err == nil {
		t.Fatal("the copy succeeded through a source that resets every read")
	}
	msg := err.Error()
	if KindOf(err) != Unavailable || !strings.Contains(msg, "read source DFW:") || strings.Contains(msg, "in IAD") {
		t.Fatalf("error %q (%s), want an Unavailable read of the source in DFW, not a write in IAD", msg, KindOf(err))
	}
}

// TestCopyWaitsOutABreakingSource: source reads in DFW reset after 4 MiB for 3 s (on devstack, 3
// minutes). A copy that waits faults out (OnWait) keeps its attempt: it says the source's region
// and store fail, tries again at most a probe interval apart (here 100 ms; production's 5 s),
// and finishes within a few intervals of the source's recovery, every byte sent once after it.
func TestCopyWaitsOutABreakingSource(t *testing.T) {
	const probe, outage = 100 * time.Millisecond, 3 * time.Second
	e := startEmu(t, func(c *emulator.Config) { c.ExportSegmentSize = 16 << 20 })
	c := connect(t, e, "demo", Options{Health: Health{Watch: true, ProbeEvery: probe}})
	img, src := exportImage(t, c, "demo-web-01", "exports")
	if err := e.AddFault(emulator.Fault{Kind: "reset", Region: "DFW", Service: "files", Method: "GET",
		AfterBytes: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reasons []string
	backs := 0
	recovered := make(chan time.Time, 1)
	go func() {
		time.Sleep(outage)
		e.ClearFaults()
		recovered <- time.Now()
	}()
	res, err := c.CopyAcrossRegions(context.Background(), src, ObjectRef{Region: "IAD", Container: "in",
		Object: "waited.vhd"}, CopyOptions{Parallelism: 2, SegmentSize: 16 << 20, VerifyMD5: img.Checksum,
		OnWait: func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() },
		OnBack: func() { mu.Lock(); backs++; mu.Unlock() }})
	done := time.Now()
	if err != nil {
		t.Fatalf("the copy did not wait out the source's resets: %v", err)
	}
	// Retries a probe interval apart end the copy soon after the recovery: the bytes left and the
	// whole-object check, under CI's load up to a second. Retries at the client's backoff (doubling
	// to 10 s) would have come 3 to 6 s after this 3 s outage.
	if late := done.Sub(<-recovered); late > 30*probe {
		t.Errorf("the copy ended %s after the source recovered, want within %s (retries %s apart)", late,
			30*probe, probe)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) == 0 || !strings.HasPrefix(reasons[0], "DFW files: read source DFW:") {
		t.Fatalf("waits told: %q, want the source's region and store first", reasons)
	}
	if backs != len(reasons) {
		t.Errorf("%d waits told, %d ends of a wait", len(reasons), backs)
	}
	if res.Bytes != img.Size {
		t.Errorf("copied %d bytes of %d", res.Bytes, img.Size)
	}
}
