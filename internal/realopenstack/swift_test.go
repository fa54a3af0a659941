//go:build realopenstack

package realopenstack

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
)

// These tests run the copy on the rig's real Swift 2.30 (OS_RIG_SWIFT=1): one cluster per region,
// Swift's default slo and dlo middlewares (max_manifest_segments 1000, reads of small segments
// paced), bulk delete. Bytes are checked with the real swift client.

// swiftClient is alpha with both regions' object stores, or the test fails: run.sh starts Swift.
func swiftClient(t *testing.T) *cloud.Client { return swiftClientVia(t, nil) }

// swiftClientVia is swiftClient with its requests through tr (nil: the default transport).
func swiftClientVia(t *testing.T, tr http.RoundTripper) *cloud.Client {
	t.Helper()
	creds, _, err := cloud.FromCloudsYAML("alpha")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloud.New(context.Background(), creds, cloud.Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"RegionOne", "RegionTwo"} {
		if !c.HasObjectStore(r) {
			t.Fatalf("no object-store in %s: start the rig with OS_RIG_SWIFT=1 (run.sh does)", r)
		}
	}
	return c
}

// gen is size bytes from seed, with patch bytes from another seed at patchOff: the second
// generation of a lineage differs from the first in one cluster.
type gen struct {
	seed, size         uint64
	patchOff, patchLen uint64
}

func (g gen) reader() io.Reader {
	base := rand.NewChaCha8([32]byte{byte(g.seed)})
	if g.patchLen == 0 {
		return io.LimitReader(base, int64(g.size))
	}
	patch := rand.NewChaCha8([32]byte{byte(g.seed), 1})
	skip := readerFunc(func(p []byte) (int, error) { // base's bytes under the patch, discarded once
		if _, err := io.CopyN(io.Discard, base, int64(g.patchLen)); err != nil {
			return 0, err
		}
		return 0, io.EOF
	})
	return io.MultiReader(io.LimitReader(base, int64(g.patchOff)), io.LimitReader(patch, int64(g.patchLen)),
		skip, io.LimitReader(base, int64(g.size-g.patchOff-g.patchLen)))
}

func (g gen) md5() string {
	h := md5.New()
	_, _ = io.Copy(h, g.reader())
	return hex.EncodeToString(h.Sum(nil))
}

// putCounter counts the body bytes of object PUTs (not manifests) it carries: what a copy sent.
type putCounter struct{ n atomic.Int64 }

func (p *putCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.Body != nil && !r.URL.Query().Has("multipart-manifest") {
		r.Body = countedBody{r.Body, &p.n}
	}
	return http.DefaultTransport.RoundTrip(r)
}

type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// putSLO uploads g in region as a static large object of segments of segSize bytes.
func putSLO(t *testing.T, c *cloud.Client, region, container, name string, g gen, segSize int64) {
	t.Helper()
	ctx := context.Background()
	if err := c.EnsureContainer(ctx, region, container); err != nil {
		t.Fatal(err)
	}
	r := g.reader()
	var segs []cloud.Segment
	for off := int64(0); off < int64(g.size); off += segSize {
		n := min(segSize, int64(g.size)-off)
		seg := fmt.Sprintf("%s.seg/%08d", name, len(segs))
		etag, err := c.PutStream(ctx, region, container, seg, io.LimitReader(r, n), n, "")
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, cloud.Segment{Container: container, Name: seg, Size: n, ETag: etag})
	}
	if _, err := c.PutSLO(ctx, region, container, name, segs); err != nil {
		t.Fatal(err)
	}
}

// putPlain uploads g in RegionOne as one object.
func putPlain(t *testing.T, c *cloud.Client, container, name string, g gen) {
	t.Helper()
	ctx := context.Background()
	if err := c.EnsureContainer(ctx, "RegionOne", container); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutStream(ctx, "RegionOne", container, name, g.reader(), int64(g.size), ""); err != nil {
		t.Fatal(err)
	}
}

// readBack reads ref whole through the proxy and returns its MD5 and how long the read took.
func readBack(t *testing.T, c *cloud.Client, ref cloud.ObjectRef, size int64) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	rc, err := c.OpenRange(context.Background(), ref.Region, ref.Container, ref.Object, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := md5.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("read %s: %v", ref, err)
	}
	return hex.EncodeToString(h.Sum(nil)), time.Since(start)
}

// swiftMD5 downloads ref with the real swift client (python3-swiftclient) as alpha.
func swiftMD5(t *testing.T, ref cloud.ObjectRef) string {
	t.Helper()
	cmd := exec.Command("swift", "--os-auth-url", os.Getenv("OS_AUTH_URL"), "--auth-version", "3",
		"--os-username", "alpha", "--os-password", "alpha-password", "--os-project-name", "alpha",
		"--os-user-domain-name", "Default", "--os-project-domain-name", "Default",
		"--os-region-name", ref.Region, "download", ref.Container, ref.Object, "-o", "-")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("swift client: %v", err)
	}
	h := md5.New()
	_, _ = io.Copy(h, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("swift download %s: %v: %s", ref, err, stderr.String())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// compareRead reads got and a plain SLO of the same bytes (one segment per GiB, as a migration's
// copy is cut) three times each, alternating, and logs the ratio of the medians.
func compareRead(t *testing.T, c *cloud.Client, layout string, got, plain cloud.ObjectRef, size int64) float64 {
	t.Helper()
	var a, b []time.Duration
	for range 3 {
		_, d := readBack(t, c, got, size)
		a = append(a, d)
		_, d = readBack(t, c, plain, size)
		b = append(b, d)
	}
	ratio := float64(median(a)) / float64(median(b))
	t.Logf("read %s: %s (%s), plain SLO %s: %.2fx", got, median(a).Round(time.Millisecond), layout,
		median(b).Round(time.Millisecond), ratio)
	return ratio
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// cleanup deletes every object of the containers in region with bulk delete and checks none is left.
func cleanup(t *testing.T, c *cloud.Client, region string, containers ...string) {
	t.Helper()
	ctx := context.Background()
	for _, name := range containers {
		objs, err := c.ListObjects(ctx, region, name, "")
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(objs))
		for i, o := range objs {
			names[i] = o.Name
		}
		if n, err := c.DeleteObjects(ctx, region, name, names); err != nil || n != len(names) {
			t.Fatalf("bulk delete in %s/%s: %d of %d, %v", region, name, n, len(names), err)
		}
		if left, err := c.ListObjects(ctx, region, name, ""); err != nil || len(left) != 0 {
			t.Fatalf("%s/%s still holds %d objects after cleanup (%v)", region, name, len(left), err)
		}
		if ok, err := c.DeleteContainerIfEmpty(ctx, region, name); err != nil || !ok {
			t.Fatalf("container %s/%s not deleted: %v", region, name, err)
		}
	}
}

// TestSwiftCopySLO: an SLO source (30 × 8 MiB and a 300 KiB tail) copied between the rig's two
// Swift clusters as a migration copies it; the target reads back byte-identical with the swift
// client, a second run sends nothing, and the target reads as fast as a plain SLO.
func TestSwiftCopySLO(t *testing.T) {
	c := swiftClient(t)
	ctx := context.Background()
	g := gen{seed: 1, size: 30<<23 + 300<<10}
	putSLO(t, c, "RegionOne", "rig-src", "slo.vhd", g, 8<<20)
	putSLO(t, c, "RegionTwo", "rig-plain", "slo.vhd", g, 1<<30)
	defer cleanup(t, c, "RegionOne", "rig-src")
	defer cleanup(t, c, "RegionTwo", "rig-dst", "rig-plain")
	src := cloud.ObjectRef{Region: "RegionOne", Container: "rig-src", Object: "slo.vhd"}
	dst := cloud.ObjectRef{Region: "RegionTwo", Container: "rig-dst", Object: "slo.vhd"}
	res, err := c.CopyAcrossRegions(ctx, src, dst, cloud.CopyOptions{ProvenAtEnd: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copy: %+v", res)
	want := g.md5()
	// The source's 8 MiB segments are joined into pieces of 32 MiB (cut again only for the last
	// round of transfers), so the target reads nearly as a plain object does.
	if res.Manifest != "slo" || res.Segments >= 31 || res.BytesSent != int64(g.size) {
		t.Fatalf("copy %+v, want an SLO of fewer segments than the source's 31, every byte sent once", res)
	}
	if got := swiftMD5(t, dst); got != want {
		t.Fatalf("swift client reads %s, want %s", got, want)
	}
	again, err := c.CopyAcrossRegions(ctx, src, dst, cloud.CopyOptions{ProvenAtEnd: true})
	if err != nil || again.BytesSent != 0 || again.SegmentsSkipped != res.Segments {
		t.Fatalf("second run %+v %v, want nothing sent", again, err)
	}
	plain := cloud.ObjectRef{Region: "RegionTwo", Container: "rig-plain", Object: "slo.vhd"}
	compareRead(t, c, "a copy of an SLO of 8 MiB segments", dst, plain, int64(g.size))
}

// TestSwiftNestedCopyResumes: 1,050 MiB cut in 1 MiB pieces is past a manifest's 1,000 segments:
// the copy ends in a nested SLO that Swift serves whole. Cancelled at half and run again with the
// heartbeat's record, it re-sends at most the pieces in flight at the cancel (one per transfer).
func TestSwiftNestedCopyResumes(t *testing.T) {
	var sent putCounter
	c := swiftClientVia(t, &sent)
	g := gen{seed: 2, size: 1050 << 20}
	putPlain(t, c, "rig-src-big", "big.vhd", g)
	putSLO(t, c, "RegionTwo", "rig-plain-big", "big.vhd", g, 1<<30)
	sent.n.Store(0) // the copy's from here
	defer cleanup(t, c, "RegionOne", "rig-src-big")
	defer cleanup(t, c, "RegionTwo", "rig-dst-big", "rig-plain-big")
	src := cloud.ObjectRef{Region: "RegionOne", Container: "rig-src-big", Object: "big.vhd"}
	dst := cloud.ObjectRef{Region: "RegionTwo", Container: "rig-dst-big", Object: "big.vhd"}
	const streams = 4
	ctx, cancel := context.WithCancel(context.Background())
	var last cloud.CopyProgress
	opts := cloud.CopyOptions{SegmentSize: 1 << 20, Parallelism: streams, Progress: func(p cloud.CopyProgress) {
		last = p
		if p.BytesDone >= int64(g.size)/2 {
			cancel()
		}
	}}
	first, err := c.CopyAcrossRegions(ctx, src, dst, opts)
	if err == nil {
		t.Fatalf("the copy was not cancelled: %+v", first)
	}
	sentBefore := sent.n.Load()
	t.Logf("cancelled at %d of %d bytes done, %d sent: %v", last.BytesDone, g.size, sentBefore, err)
	opts.Progress, opts.Done = nil, last.Done
	res, err := c.CopyAcrossRegions(context.Background(), src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	resent := sent.n.Load() - int64(g.size)
	t.Logf("resumed: %+v; re-sent %d bytes", res, resent)
	if res.Manifest != "nested-slo" || res.Segments != 1050 {
		t.Fatalf("result %+v, want a nested SLO over 1,050 segments", res)
	}
	if resent > streams<<20 {
		t.Fatalf("re-sent %d bytes after the cancel, more than the %d pieces in flight", resent, streams)
	}
	if got, want := swiftMD5(t, dst), g.md5(); got != want {
		t.Fatalf("swift client reads %s, want %s", got, want)
	}
	plain := cloud.ObjectRef{Region: "RegionTwo", Container: "rig-plain-big", Object: "big.vhd"}
	compareRead(t, c, "nested SLO of 1,050 × 1 MiB", dst, plain, int64(g.size))
}

// TestSwiftLineage: two generations of a 1 GiB image differing in one 5% cluster, at the default
// range size (32 MiB); the second
// copy sends at most 10%, names the first's segments in place, survives the first being dropped,
// and cleanup leaves nothing in either region.
func TestSwiftLineage(t *testing.T) {
	c := swiftClient(t)
	ctx := context.Background()
	g1 := gen{seed: 3, size: 1 << 30}
	g2 := g1
	g2.patchOff, g2.patchLen = 100<<20, 1<<30/20
	putPlain(t, c, "rig-src-lin", "gen1.vhd", g1)
	putPlain(t, c, "rig-src-lin", "gen2.vhd", g2)
	putSLO(t, c, "RegionTwo", "rig-plain-lin", "gen2.vhd", g2, 1<<30)
	defer cleanup(t, c, "RegionOne", "rig-src-lin")
	defer cleanup(t, c, "RegionTwo", "rig-dst-lin", "rig-lineage", "rig-plain-lin")
	for i, name := range []string{"gen1", "gen2"} {
		src := cloud.ObjectRef{Region: "RegionOne", Container: "rig-src-lin", Object: name + ".vhd"}
		dst := cloud.ObjectRef{Region: "RegionTwo", Container: "rig-dst-lin", Object: name + ".vhd"}
		res, err := c.CopyAcrossRegions(ctx, src, dst, cloud.CopyOptions{ProvenAtEnd: true,
			Lineage: &cloud.Lineage{Container: "rig-lineage", Generation: name}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v", name, res)
		if _, err := c.KeepGeneration(ctx, "RegionTwo", "rig-lineage", name, 2); err != nil {
			t.Fatal(err)
		}
		if i == 1 && (res.BytesSent*10 > int64(g2.size) || res.Manifest != "slo") {
			t.Fatalf("second generation sent %d of %d bytes (%+v), want at most 10%%", res.BytesSent, g2.size, res)
		}
	}
	if _, err := c.KeepGeneration(ctx, "RegionTwo", "rig-lineage", "gen2", 1); err != nil {
		t.Fatal(err)
	}
	dst2 := cloud.ObjectRef{Region: "RegionTwo", Container: "rig-dst-lin", Object: "gen2.vhd"}
	if got, want := swiftMD5(t, dst2), g2.md5(); got != want {
		t.Fatalf("after gen1 was dropped the swift client reads gen2 as %s, want %s", got, want)
	}
	plain := cloud.ObjectRef{Region: "RegionTwo", Container: "rig-plain-lin", Object: "gen2.vhd"}
	compareRead(t, c, "lineage SLO of 32 MiB ranges", dst2, plain, int64(g2.size))
}

// TestSwiftReadTimeBySegmentSize measures what Swift's per-segment cost does to a static
// manifest's read: the same 256 MiB as SLOs of 1 to 64 MiB segments, each read three times
// against one whole segment, alternating. It chose the sizes a copy leaves (see README); it
// asserts only that every layout reads back the same bytes, the times are for the record.
func TestSwiftReadTimeBySegmentSize(t *testing.T) {
	c := swiftClient(t)
	g := gen{seed: 4, size: 256 << 20}
	want := g.md5()
	defer cleanup(t, c, "RegionTwo", "rig-layouts")
	putSLO(t, c, "RegionTwo", "rig-layouts", "whole.vhd", g, 1<<30)
	whole := cloud.ObjectRef{Region: "RegionTwo", Container: "rig-layouts", Object: "whole.vhd"}
	for _, mib := range []int64{1, 4, 8, 16, 32, 64} {
		name := fmt.Sprintf("seg%02d.vhd", mib)
		putSLO(t, c, "RegionTwo", "rig-layouts", name, g, mib<<20)
		ref := cloud.ObjectRef{Region: "RegionTwo", Container: "rig-layouts", Object: name}
		if got, _ := readBack(t, c, ref, int64(g.size)); got != want {
			t.Fatalf("%s reads %s, want %s", name, got, want)
		}
		compareRead(t, c, fmt.Sprintf("SLO of %d MiB segments", mib), ref, whole, int64(g.size))
	}
}
