package images

import (
	"encoding/binary"
	"encoding/json"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/, so plain `go test` runs them;
// `go test -fuzz=FuzzX ./emulator/images/` explores further.

func FuzzParseVHDFooter(f *testing.F) {
	f.Add(MakeVHDFooter(1<<20, VHDDiskFixed, [16]byte{9}))
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, b []byte) {
		footer, err := ParseVHDFooter(b)
		if err != nil {
			if ie, ok := err.(*ImportError); !ok || ie.Code == 0 {
				t.Fatalf("error %v is not an ImportError with a code", err)
			}
			return
		}
		if len(b) != 512 || string(b[:8]) != vhdCookie || binary.BigEndian.Uint32(b[64:68]) != vhdChecksum(b) {
			t.Fatal("accepted a footer with a bad length, cookie or checksum")
		}
		if footer.UniqueID == [16]byte{} || (footer.DiskType != VHDDiskFixed && footer.DiskType != VHDDiskDynamic) {
			t.Fatalf("accepted footer %+v", footer)
		}
	})
}

func FuzzApplyPatch(f *testing.F) {
	f.Add([]byte(`[{"op":"add","path":"/x","value":"y"}]`))
	f.Add([]byte(`[{"op":"replace","path":"/name","value":"n"},{"op":"remove","path":"/app"}]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var ops []patchOp
		if json.Unmarshal(doc, &ops) != nil {
			return
		}
		img := &Image{ID: "id", Name: "n", Status: "active", Owner: "1", Checksum: "c", Size: 5,
			Props: map[string]string{"app": "web"}, Tags: []string{"t"}, Members: map[string]*Member{}}
		next, err := applyPatch(img, ops, false)
		if err != nil {
			pe, ok := err.(*patchError)
			if !ok || (pe.code != 400 && pe.code != 403 && pe.code != 409 && pe.code != 413) {
				t.Fatalf("error %v has no client status", err)
			}
			if img.Name != "n" || img.Props["app"] != "web" || len(img.Props) != 1 {
				t.Fatal("a failed patch changed the original image")
			}
			return
		}
		if next.ID != "id" || next.Owner != "1" || next.Checksum != "c" || next.Size != 5 || next.Status != "active" {
			t.Fatalf("patch changed a read-only attribute: %+v", next)
		}
		if len(next.Props) > MaxProps {
			t.Fatal("patch went past the property quota")
		}
	})
}
