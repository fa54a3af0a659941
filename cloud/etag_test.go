package cloud

import "testing"

// TestETagsKeptCompactly: an MD5 ETag is held as bytes and written back as Swift writes it;
// anything else comes back as it came.
func TestETagsKeptCompactly(t *testing.T) {
	for in, want := range map[string]string{
		"0CC175B9C0F1B6A831C399E269772661": "0cc175b9c0f1b6a831c399e269772661",
		"0cc175b9c0f1b6a831c399e269772661": "0cc175b9c0f1b6a831c399e269772661",
		"0cc175b9c0f1b6a831c399e26977266z": "0cc175b9c0f1b6a831c399e26977266z",
		"abc":                              "abc",
		"":                                 "",
	} {
		e := parseETag(in)
		if got := e.String(); got != want {
			t.Errorf("%q: kept as %q, want %q", in, got, want)
		}
		if !e.is(in) {
			t.Errorf("%q: not equal to itself", in)
		}
	}
}

// TestLineageBaseNamesItsRanges: a kept generation's own segments are found by offset with the
// names they were written under, and a range it names in an older generation keeps that name.
func TestLineageBaseNamesItsRanges(t *testing.T) {
	const sum = "0cc175b9c0f1b6a831c399e269772661"
	g := generationRanges{Generation: "g2", Ranges: []keptRange{
		{Off: 4 << 20, Size: 4 << 20, ETag: sum, Name: segmentName("g2/abc/", 4<<20)},
		{Off: 0, Size: 4 << 20, ETag: sum, Name: segmentName("g1/def/", 0)},
		{Off: 8 << 20, Size: 1 << 20, ETag: "not-md5", Name: "g2/abc/odd-name"},
	}}
	b := newLineageBase(g)
	for _, want := range g.Ranges {
		got, ok := b.lookup(piece{off: want.Off, size: want.Size})
		if !ok || got != want {
			t.Errorf("at %d: %+v %v, want %+v", want.Off, got, ok, want)
		}
	}
	if _, ok := b.lookup(piece{off: 1}); ok {
		t.Error("found a range at an offset none starts at")
	}
}
