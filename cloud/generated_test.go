package cloud

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
)

// TestGeneratedObjectsCrossWithoutDisk: with the emulator keeping generated objects (its mode
// for images too large to store), an export, a full copy, a lineage copy of a snapshot and the
// imports of both arrive as generated content: the real client's checks all pass (segment
// ETags, manifests, the imported images' checksums), the target received every byte sent, no
// object or image bytes were written to disk, and a restarted emulator serves them again. A
// segment corrupted on its way is kept as the bytes that arrived, so the client's check still
// catches it.
func TestGeneratedObjectsCrossWithoutDisk(t *testing.T) {
	dir := t.TempDir()
	e := startEmu(t, func(c *emulator.Config) {
		c.TaskDuration, c.ExportSegmentSize, c.DataDir, c.GeneratedObjects = 1, 16<<20, dir, true
	})
	c := connect(t, e, "demo")
	ctx := context.Background()
	first, src1 := exportImage(t, c, "demo-db-01", "exp1") // 256 MiB
	l := Lineage{Container: "lineage", Generation: first.ID, RangeSize: 4 << 20}
	dst1 := ObjectRef{Region: "IAD", Container: "mig1", Object: "db.vhd"}
	before := e.BytesReceived("IAD")
	res1, err := c.CopyAcrossRegions(ctx, src1, dst1, CopyOptions{Lineage: &l})
	if err != nil || res1.BytesSent != first.Size {
		t.Fatalf("first copy %+v %v", res1, err)
	}
	if got := e.BytesReceived("IAD") - before; got < first.Size {
		t.Fatalf("IAD received %d bytes of a %d-byte copy", got, first.Size)
	}
	checkImport(t, c, dst1, first.Checksum)
	if _, err := c.KeepGeneration(ctx, "IAD", "lineage", first.ID, 1); err != nil {
		t.Fatal(err)
	}

	id, err := e.Snapshot(emulator.SnapshotRequest{Region: "DFW", ImageID: first.ID, Name: "db-night2",
		ChangedPercent: 5, Pattern: "clustered"})
	if err != nil {
		t.Fatal(err)
	}
	night2, src2 := exportImage(t, c, "db-night2", "exp2")
	if night2.ID != id {
		t.Fatalf("exported %s, want the snapshot %s", night2.ID, id)
	}
	dst2 := ObjectRef{Region: "IAD", Container: "mig2", Object: "db.vhd"}
	res2, err := c.CopyAcrossRegions(ctx, src2, dst2,
		CopyOptions{Lineage: &Lineage{Container: "lineage", Generation: id, RangeSize: 4 << 20}})
	if err != nil || res2.BytesSent*10 > night2.Size || res2.BytesReused+res2.BytesSent != night2.Size {
		t.Fatalf("lineage copy %+v %v", res2, err)
	}
	checkImport(t, c, dst2, night2.Checksum)

	// A flipped bit on the way: the target keeps what arrived, and the copy sends it again.
	if err := e.AddFault(emulator.Fault{Kind: "corrupt", Region: "ORD", Service: "files", Method: "PUT",
		Count: 1}); err != nil {
		t.Fatal(err)
	}
	dst3 := ObjectRef{Region: "ORD", Container: "mig3", Object: "db.vhd"}
	if _, err := c.CopyAcrossRegions(ctx, src1, dst3, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := md5Of(t, c, dst3, first.Size); got != first.Checksum {
		t.Fatalf("the copy after a corrupted segment reads %s, want %s", got, first.Checksum)
	}

	// Saved and loaded: a restarted emulator serves the generated objects and images again.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := startEmu(t, func(c *emulator.Config) { c.DataDir, c.GeneratedObjects = dir, true })
	c2 := connect(t, e2, "demo")
	if got := md5Of(t, c2, dst2, night2.Size); got != night2.Checksum {
		t.Fatalf("after a restart the lineage copy reads %s, want %s", got, night2.Checksum)
	}

	var stored int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(p) != "state.json" {
			if info, err := d.Info(); err == nil {
				stored += info.Size()
			}
		}
		return nil
	})
	// The corrupted segment (16 MiB at most) is the only bytes kept.
	if stored > 16<<20 {
		t.Fatalf("%d bytes written under the data folder, want at most the corrupted segment's", stored)
	}
}

// checkImport imports the object in its region and waits: the new image's checksum is want.
func checkImport(t *testing.T, c *Client, ref ObjectRef, want string) {
	t.Helper()
	ctx := context.Background()
	tk, err := c.Import(ctx, ref.Region, ref.Container, ref.Object, "imported-"+ref.Container)
	for err == nil && !tk.Done() {
		time.Sleep(50 * time.Millisecond)
		tk, err = c.GetTask(ctx, ref.Region, tk.ID)
	}
	if err != nil || tk.Status != "success" {
		t.Fatalf("import of %s: %+v %v", ref, tk, err)
	}
	img, err := c.GetImage(ctx, ref.Region, tk.Result["image_id"])
	if err != nil || img.Checksum != want {
		t.Fatalf("imported %s: checksum %s, want %s (%v)", ref, img.Checksum, want, err)
	}
}
