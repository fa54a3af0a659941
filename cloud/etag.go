package cloud

import (
	"encoding/hex"
	"strings"
)

// etag is an object's ETag held in 16 bytes: Swift's ETag of a plain object is its MD5 in hex. A
// copy keeps one per segment, and a lineage of a 160 GB image has 38,147 of them; as strings
// (and their headers and allocations) they were a good part of the worker's memory. An ETag that
// is not 32 hex digits is kept as it came.
type etag struct {
	sum   [16]byte
	isSum bool   // sum holds it
	other string // else it is this
}

func parseETag(s string) etag {
	var e etag
	if len(s) != 2*len(e.sum) {
		return etag{other: s}
	}
	if _, err := hex.Decode(e.sum[:], []byte(s)); err != nil {
		return etag{other: s}
	}
	e.isSum = true
	return e
}

// String is the ETag as Swift writes it: lower-case hex.
func (e etag) String() string {
	if !e.isSum {
		return e.other
	}
	return hex.EncodeToString(e.sum[:])
}

// is compares with an ETag as a string, in any case.
func (e etag) is(s string) bool { return strings.EqualFold(e.String(), s) }
