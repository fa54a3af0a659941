package seeded

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"testing"
)

func bytesOf(t *testing.T, s Section) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(s, 0, s.Len))
	if err != nil || int64(len(b)) != s.Len {
		t.Fatalf("read %d of %d: %v", len(b), s.Len, err)
	}
	return b
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// TestTakeRecognisesSectionsAnywhere: an upload of any range of a known image, block-aligned or
// not, up to its footer, is taken as a section with the MD5 of its bytes; data that is not, or
// that stops matching part way (a flipped bit), is given back whole for a file.
func TestTakeRecognisesSectionsAnywhere(t *testing.T) {
	base := Spec{Seed: "base", Size: 8<<20 + 512}
	snap := Spec{Seed: "base", Size: base.Size, Overlays: []Overlay{{Seed: "night2", Runs: [][2]int64{{10, 20}}}}}
	reg := NewRegistry(map[string]Spec{"x": base})
	reg.Add(snap)
	for _, want := range []Section{
		{Spec: base, Off: 0, Len: 4 << 20},
		{Spec: base, Off: 3 << 20, Len: base.Size - 3<<20},     // to the end, footer included
		{Spec: snap, Off: 12345, Len: 1<<20 + 77},              // unaligned, in the overlay
		{Spec: base, Off: base.Size - 200<<10, Len: 100 << 10}, // a short one near the end
	} {
		b := bytesOf(t, want)
		up, err := reg.Take(bytes.NewReader(b), want.Len)
		if err != nil || !up.Generated {
			t.Fatalf("%+v not taken: %+v %v", want, up, err)
		}
		if !up.Section.SameBytes(want) || up.MD5 != md5Hex(b) {
			t.Fatalf("took %d+%d md5 %s, want %d+%d md5 %s", up.Section.Off, up.Section.Len, up.MD5,
				want.Off, want.Len, md5Hex(b))
		}
	}
	b := bytesOf(t, Section{Spec: base, Off: 1 << 20, Len: 3 << 20})
	for name, body := range map[string][]byte{
		"a flipped bit": func() []byte { c := bytes.Clone(b); c[2<<20+5] ^= 1; return c }(),
		"not generated": bytes.Repeat([]byte("not an image "), 300000),
	} {
		up, err := reg.Take(bytes.NewReader(body), int64(len(body)))
		if err != nil || up.Generated {
			t.Fatalf("%s: taken as generated: %+v %v", name, up.Section, err)
		}
		if back, _ := io.ReadAll(up.Rest); !bytes.Equal(back, body) {
			t.Fatalf("%s: the bytes given back differ from the upload's (%d of %d)", name, len(back), len(body))
		}
	}
	if _, err := reg.Take(bytes.NewReader(b[:1000]), int64(len(b))); err == nil {
		t.Fatal("a body that ended early was taken")
	}
}

// TestWholeFromTwoSnapshots: a copy of a snapshot made of the older night's unchanged ranges
// and the newer's changed ones is the newer's content, with its checksum; one that mixes two
// nights' changes is neither's.
func TestWholeFromTwoSnapshots(t *testing.T) {
	night1 := Spec{Seed: "s", Size: 4<<20 + 512}
	night2 := Spec{Seed: "s", Size: night1.Size, Overlays: []Overlay{{Seed: "n2", Runs: [][2]int64{{20, 30}}}}}
	var secs []Section
	for off := int64(0); off < night1.Size; off += 1 << 20 {
		n := min(1<<20, night1.Size-off)
		from := night1
		if off == 1<<20 { // blocks 16 to 31: the changed ones
			from = night2
		}
		secs = append(secs, Section{Spec: from, Off: off, Len: n})
	}
	got, ok := Whole(secs)
	if !ok || got.ID() != night2.ID() {
		t.Fatalf("whole: %v %+v", ok, got)
	}
	var all []byte
	for _, s := range secs {
		all = append(all, bytesOf(t, s)...)
	}
	if md5Hex(all) != night2.Checksum() || night2.Checksum() == night1.Checksum() {
		t.Fatalf("checksums: bytes %s, night2 %s, night1 %s", md5Hex(all), night2.Checksum(), night1.Checksum())
	}
	// Night three changed other blocks: its range beside night two's is neither night's content.
	secs[2].Spec = Spec{Seed: "s", Size: night1.Size, Overlays: []Overlay{{Seed: "n3", Runs: [][2]int64{{40, 45}}}}}
	if got, ok := Whole(secs); ok {
		t.Fatalf("a copy mixing two nights' changes counts as whole: %+v", got)
	}
}

// TestPatternsStayBounded: reading many images' content keeps at most a few hundred patterns,
// and a pattern dropped and made again is the same bytes.
func TestPatternsStayBounded(t *testing.T) {
	first := make([]byte, 4096)
	if _, err := (Spec{Seed: "bounded-0", Size: 1 << 20}).ReadAt(first, 100); err != nil {
		t.Fatal(err)
	}
	for i := range 3 * patterns.max {
		buf := make([]byte, 16)
		if _, err := (Spec{Seed: fmt.Sprintf("bounded-%d", i), Size: 1 << 20}).ReadAt(buf, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := patterns.len(); n > patterns.max {
		t.Fatalf("%d patterns kept, at most %d wanted", n, patterns.max)
	}
	again := make([]byte, 4096)
	if _, err := (Spec{Seed: "bounded-0", Size: 1 << 20}).ReadAt(again, 100); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatal("a pattern made again differs from the first")
	}
}
