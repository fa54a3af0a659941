package emulator

import (
	"bytes"
	"io"
	"testing"
)

// TestSnapshotChangesTheChosenShare: a snapshot differs from its parent in exactly the share of
// blocks asked for, clustered in one run or scattered, and keeps the server's lineage.
func TestSnapshotChangesTheChosenShare(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	parentID := s.imageID("DFW", "demo-db-01") // 256 MiB: 4095 blocks of 64 KiB before the footer
	for _, pattern := range []string{"clustered", "scattered"} {
		id, err := e.Snapshot(SnapshotRequest{Region: "DFW", ImageID: parentID, Name: "db-" + pattern,
			ChangedPercent: 5, Pattern: pattern})
		if err != nil {
			t.Fatal(err)
		}
		e.mu.Lock()
		parent, snap := e.st.Regions["DFW"].Images[parentID], e.st.Regions["DFW"].Images[id]
		e.mu.Unlock()
		if snap.Checksum == parent.Checksum || snap.Props["instance_uuid"] != parent.Props["instance_uuid"] {
			t.Fatalf("%s: checksum %s (parent %s), lineage %q", pattern, snap.Checksum, parent.Checksum,
				snap.Props["instance_uuid"])
		}
		a, _ := e.imageReader(parent)
		b, _ := e.imageReader(snap)
		changed, runs, inRun := 0, 0, false
		pa, pb := make([]byte, genBlock), make([]byte, genBlock)
		for {
			na, erra := io.ReadFull(a, pa)
			nb, _ := io.ReadFull(b, pb)
			if na == 0 {
				break
			}
			differs := !bytes.Equal(pa[:na], pb[:nb])
			if differs {
				changed++
				if !inRun {
					runs++
				}
			}
			inRun = differs
			if erra != nil {
				break
			}
		}
		want := int(float64((snap.Size-vhdFooterSize)/genBlock) * 5 / 100)
		if changed != want {
			t.Fatalf("%s: %d blocks changed, want %d", pattern, changed, want)
		}
		if (pattern == "clustered") != (runs == 1) || (pattern == "scattered" && runs < want/2) {
			t.Fatalf("%s: the changes form %d runs", pattern, runs)
		}
	}
	if _, err := e.Snapshot(SnapshotRequest{Region: "DFW", ImageID: parentID, Name: "x", ChangedPercent: 101,
		Pattern: "clustered"}); err == nil {
		t.Fatal("101% accepted")
	}
}
