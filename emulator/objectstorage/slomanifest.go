package objectstorage

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// An SLO is stored by Swift as its manifest: a JSON list of its segments, which is what
// ?multipart-manifest=get returns, what the container's bytes-used counts (not the segments'
// bytes, which their own objects count) and what the listing's hash is the MD5 of. Swift 2.30
// writes it with Python's json.dumps separators (", " and ": "), so its length is Swift's too.

// manifestJSON is the stored manifest: name, bytes, hash, content_type, last_modified per
// segment, and sub_slo for a segment that is itself an SLO (a nested manifest).
func (o *Object) manifestJSON() []byte {
	rows := make([]string, len(o.SLO))
	for i, s := range o.SLO {
		fields := []string{
			pyField("name", s.Path), pyField("bytes", s.Size), pyField("hash", s.ETag),
			pyField("content_type", s.ContentType), pyField("last_modified", s.LastModified),
		}
		if s.SubSLO {
			fields = append(fields, pyField("sub_slo", true))
		}
		rows[i] = "{" + strings.Join(fields, ", ") + "}"
	}
	return []byte("[" + strings.Join(rows, ", ") + "]")
}

// rawManifestJSON is ?multipart-manifest=get&format=raw: the manifest as it was PUT.
func (o *Object) rawManifestJSON() []byte {
	rows := make([]string, len(o.SLO))
	for i, s := range o.SLO {
		rows[i] = "{" + strings.Join([]string{pyField("etag", s.ETag), pyField("path", s.Path),
			pyField("size_bytes", s.Size)}, ", ") + "}"
	}
	return []byte("[" + strings.Join(rows, ", ") + "]")
}

func pyField(k string, v any) string {
	b, _ := json.Marshal(v)
	return strconv.Quote(k) + ": " + string(b)
}

// manifestETag is the MD5 of the stored manifest: an SLO's hash in listings and its
// X-Manifest-Etag (the SLO's own ETag is the MD5 of its segments' ETags).
func (o *Object) manifestETag() string {
	sum := md5.Sum(o.manifestJSON())
	return hex.EncodeToString(sum[:])
}

// storedBytes is what the object adds to its container's and account's bytes-used: an SLO its
// manifest, a DLO its empty body, any other object its bytes.
func (o *Object) storedBytes() int64 {
	switch {
	case o.SLO != nil:
		return int64(len(o.manifestJSON()))
	case o.Manifest != "":
		return 0
	}
	return o.Size
}
