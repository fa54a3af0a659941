package emulator

import (
	"bytes"
	"io"
	"testing"
)

// Generated images are 64 KiB blocks, then a 512-byte VHD footer.
const block, footer = 64 << 10, 512

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
		parent := s.do("GET", "DFW", "/v2/images/"+parentID, nil).json(t)
		snap := s.do("GET", "DFW", "/v2/images/"+id, nil).json(t)
		if snap["checksum"] == parent["checksum"] || snap["instance_uuid"] != parent["instance_uuid"] {
			t.Fatalf("%s: checksum %s (parent %s), lineage %q", pattern, snap["checksum"], parent["checksum"],
				snap["instance_uuid"])
		}
		a, b := s.download("DFW", "/v2/images/"+parentID+"/file"), s.download("DFW", "/v2/images/"+id+"/file")
		changed, runs, inRun := 0, 0, false
		pa, pb := make([]byte, block), make([]byte, block)
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
		_ = a.Close()
		_ = b.Close()
		want := int(float64((int64(snap["size"].(float64))-footer)/block) * 5 / 100)
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
