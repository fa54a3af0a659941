package cloud

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/imageflow/imageflow/emulator"
)

// TestLineageCopySendsOnlyChanges: the second snapshot of a server, 5% of its blocks changed in
// one cluster, crosses regions as a few ranges; the rest is copied inside the target from the
// kept generation. The result is byte-identical; a pruned or lying kept generation costs only
// bytes, never correctness.
func TestLineageCopySendsOnlyChanges(t *testing.T) {
	e := startEmu(t, func(c *emulator.Config) { c.TaskDuration = 1; c.ExportSegmentSize = 16 << 20 })
	c := connect(t, e, "demo")
	ctx := context.Background()
	first, src1 := exportImage(t, c, "demo-db-01", "exp1") // 256 MiB
	l := Lineage{Container: "lineage", Generation: first.ID, RangeSize: 4 << 20}
	dst1 := ObjectRef{Region: "IAD", Container: "mig1", Object: "db.vhd"}
	res1, err := c.CopyAcrossRegions(ctx, src1, dst1, CopyOptions{Lineage: &l})
	if err != nil || res1.BytesReused != 0 || res1.BytesSent != first.Size {
		t.Fatalf("first copy %+v %v", res1, err)
	}
	if _, err := c.KeepGeneration(ctx, "IAD", "lineage", first.ID, 1); err != nil {
		t.Fatal(err)
	}

	for _, pattern := range []string{"clustered", "scattered"} {
		id, err := e.Snapshot(emulator.SnapshotRequest{Region: "DFW", ImageID: first.ID, Name: "db-" + pattern,
			ChangedPercent: 5, Pattern: pattern})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := c.GetImage(ctx, "DFW", id)
		if err != nil {
			t.Fatal(err)
		}
		_, src2 := exportImage(t, c, snap.Name, "exp-"+pattern)
		dst2 := ObjectRef{Region: "IAD", Container: "mig-" + pattern, Object: "db.vhd"}
		res2, err := c.CopyAcrossRegions(ctx, src2, dst2,
			CopyOptions{Lineage: &Lineage{Container: "lineage", Generation: id, RangeSize: 4 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		if got := md5Of(t, c, dst2, snap.Size); got != snap.Checksum {
			t.Fatalf("%s: the copy's MD5 %s is not the snapshot's %s", pattern, got, snap.Checksum)
		}
		sent := float64(res2.BytesSent) / float64(snap.Size)
		t.Logf("%s: sent %.1f%% of %d MiB, reused %d MiB", pattern, 100*sent, snap.Size>>20, res2.BytesReused>>20)
		if pattern == "clustered" && (sent > 0.10 || res2.BytesReused+res2.BytesSent != snap.Size) {
			t.Fatalf("clustered: %+v", res2)
		}
		if pattern == "scattered" && res2.BytesReused+res2.BytesSent != snap.Size {
			t.Fatalf("scattered: %+v", res2)
		}
	}
	// Keeping the clustered generation (keep 1) drops the first, except the segments the
	// clustered one reuses in place; a later copy against it still arrives whole.
	clustered, err := c.ListImages(ctx, "DFW", ImageFilter{Name: "db-clustered"})
	if err != nil || len(clustered) != 1 {
		t.Fatal(clustered, err)
	}
	// In listing pages of 7 (a real cloud's hold 10,000; a 160 GB generation has 38,147 ranges),
	// so the drop walks the first generation's objects and deletes them page by page.
	c.pageLimit = 7
	pages, objs := 0, 0
	if err := c.listPages(ctx, "IAD", "lineage", first.ID+"/", func(p []ObjectInfo) error {
		pages, objs = pages+1, objs+len(p)
		return nil
	}); err != nil || pages != (objs+6)/7 || pages < 2 {
		t.Fatalf("%d pages of %d objects (%v): the listing does not page by 7", pages, objs, err)
	}
	if _, err := c.KeepGeneration(ctx, "IAD", "lineage", clustered[0].ID, 1); err != nil {
		t.Fatal(err)
	}
	c.pageLimit = 0
	left, err := c.ListObjects(ctx, "IAD", "lineage", first.ID+"/")
	if err != nil || len(left) != 60 {
		t.Fatalf(
			"the first generation keeps %d objects (%v), want the 60 ranges the clustered one reuses",
			len(left),
			err,
		)
	}
	dst3 := ObjectRef{Region: "IAD", Container: "mig-clustered", Object: "db.vhd"}
	if got := md5Of(t, c, dst3, clustered[0].Size); got != clustered[0].Checksum {
		t.Fatalf("after pruning, the clustered copy reads %s, want %s", got, clustered[0].Checksum)
	}
	// Ranges under 1 MiB are joined up to at least 1 MiB (Swift serves smaller segments of a
	// static manifest at one a second): the copy still ends in a static manifest naming kept
	// segments in place, and still sends only the change.
	small := Lineage{Container: "lineage-small", Generation: first.ID, RangeSize: 512 << 10}
	if _, err := c.CopyAcrossRegions(ctx, src1, ObjectRef{Region: "IAD", Container: "s1", Object: "db.vhd"},
		CopyOptions{Lineage: &small}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeepGeneration(ctx, "IAD", "lineage-small", first.ID, 1); err != nil {
		t.Fatal(err)
	}
	_, src2 := exportImage(t, c, "db-clustered", "exp-small")
	dst4 := ObjectRef{Region: "IAD", Container: "s2", Object: "db.vhd"}
	var beat progressSizes
	res4, err := c.CopyAcrossRegions(ctx, src2, dst4,
		CopyOptions{Lineage: &Lineage{Container: "lineage-small", Generation: clustered[0].ID, RangeSize: 512 << 10},
			Progress: beat.see})
	if err != nil || res4.Manifest != "slo" || res4.BytesSent*10 > clustered[0].Size {
		t.Fatalf("small ranges: %+v %v", res4, err)
	}
	// 512 ranges, and the heartbeat does not carry one MD5 per range: at 160 GiB and 4 MiB ranges
	// that was 40,960 of them, about 2 MB, Temporal's limit for a payload.
	if beat.maxDone != 0 || beat.maxBytes > 1024 {
		t.Fatalf("a 512-range lineage copy's heartbeat held %d MD5s, %d bytes at most", beat.maxDone, beat.maxBytes)
	}
	if got := md5Of(t, c, dst4, clustered[0].Size); got != clustered[0].Checksum {
		t.Fatalf("the dynamic-manifest copy reads %s, want %s", got, clustered[0].Checksum)
	}
}

// progressSizes records the largest progress report a copy made, as its heartbeat would carry it.
type progressSizes struct {
	mu                sync.Mutex
	maxDone, maxBytes int
}

func (s *progressSizes) see(p CopyProgress) {
	b, _ := json.Marshal(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxDone, s.maxBytes = max(s.maxDone, len(p.Done)), max(s.maxBytes, len(b))
}
