package cloud

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRangesRecordStreams: the record written range by range is the JSON of generationRanges
// (so records written before it was streamed still read), the same bytes on every pass (its
// length is taken from a first pass), and reads back range by range in order.
func TestRangesRecordStreams(t *testing.T) {
	want := generationRanges{Generation: "g2", Written: time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)}
	for i := range int64(1000) {
		want.Ranges = append(want.Ranges, keptRange{Off: i << 22, Size: 4 << 20,
			ETag: "0cc175b9c0f1b6a831c399e269772661", Name: segmentName("g2/abc \"q\"/", i<<22)})
	}
	rw := rangesWriter{generation: want.Generation, written: want.Written, ranges: slices.Values(want.Ranges)}
	var first, second bytes.Buffer
	n, err := rw.WriteTo(&first)
	if err != nil || n != int64(first.Len()) {
		t.Fatalf("wrote %d bytes, counted %d, error %v", first.Len(), n, err)
	}
	if _, err := rw.WriteTo(&second); err != nil || !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatalf("a second pass wrote other bytes (error %v)", err)
	}
	var got generationRanges
	if err := json.Unmarshal(first.Bytes(), &got); err != nil {
		t.Fatalf("the streamed record is not JSON: %v", err)
	}
	if got.Generation != want.Generation || !got.Written.Equal(want.Written) || !slices.Equal(got.Ranges, want.Ranges) {
		t.Fatal("the streamed record does not read back as the ranges written")
	}
	whole, _ := json.Marshal(want) // a record as it was written before it was streamed
	for name, rec := range map[string][]byte{"streamed": first.Bytes(), "whole": whole} {
		var read []keptRange
		if err := decodeRanges(bytes.NewReader(rec), func(k keptRange) { read = append(read, k) }); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(read, want.Ranges) {
			t.Fatalf("%s: read %d ranges, not the %d written", name, len(read), len(want.Ranges))
		}
	}
}

// TestRangesRecordRefusesOtherJSON: a record that is not one gets an error, not a partial base.
func TestRangesRecordRefusesOtherJSON(t *testing.T) {
	for _, rec := range []string{
		``, `[]`, `{"ranges":{}}`, `{"ranges":[{"off":"x"}]}`, `{"ranges":[{"off":1}`, `{"generation":"g"`,
	} {
		var n int
		if err := decodeRanges(strings.NewReader(rec), func(keptRange) { n++ }); err == nil {
			t.Errorf("%q read as a record (%d ranges)", rec, n)
		}
	}
}
