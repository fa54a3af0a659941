package objectstorage

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestSLOAnswersAsSwiftDoes follows what Swift 2.30 answered on the rig (2026-12-07) for an SLO
// of a 1 MiB and a 1000-byte segment, and for an SLO nested in another.
func TestSLOAnswersAsSwiftDoes(t *testing.T) {
	_, srv := newService(t)
	base := "/v1/MossoCloudFS_t1/c"
	call(t, srv, "t1", "PUT", base, nil)
	seg1, seg2 := bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 1000)
	call(t, srv, "t1", "PUT", base+"/s1", seg1)
	call(t, srv, "t1", "PUT", base+"/s2", seg2)
	e1, e2 := md5hex(seg1), md5hex(seg2)
	man := fmt.Sprintf(`[{"path":"/c/s1","etag":%q,"size_bytes":1048576},{"path":"/c/s2","etag":%q,"size_bytes":1000}]`,
		e1, e2)
	if code, body := call(t, srv, "t1", "PUT", base+"/big?multipart-manifest=put", []byte(man)); code != 201 {
		t.Fatalf("put SLO: %d %s", code, body)
	}
	sloETag := md5hex([]byte(e1 + e2))

	// The stored manifest: Swift's rows and separators, its MD5 as ETag.
	resp, stored := get(t, srv, base+"/big?multipart-manifest=get")
	if resp.Header.Get("Etag") != md5hex(stored) || resp.Header.Get("X-Static-Large-Object") != "True" {
		t.Fatalf("manifest GET: ETag %q for a body of MD5 %s", resp.Header.Get("Etag"), md5hex(stored))
	}
	var rows []map[string]any
	if err := json.Unmarshal(stored, &rows); err != nil || len(rows) != 2 || rows[0]["name"] != "/c/s1" ||
		rows[0]["hash"] != e1 || rows[1]["bytes"] != 1000.0 || rows[0]["content_type"] == nil {
		t.Fatalf("stored manifest %s (%v)", stored, err)
	}
	if !bytes.Contains(stored, []byte(`", "bytes": 1048576, "hash": "`)) {
		t.Fatalf("stored manifest not in Swift's form (json.dumps separators): %s", stored)
	}
	if _, raw := get(t, srv, base+"/big?multipart-manifest=get&format=raw"); !bytes.HasPrefix(raw,
		[]byte(`[{"etag": "`+e1+`", "path": "/c/s1", "size_bytes": 1048576}`)) {
		t.Fatalf("raw manifest %s", raw)
	}

	// HEAD: the SLO's ETag, the manifest's beside it, and an X-Timestamp.
	resp, _ = get(t, srv, base+"/big")
	if resp.Header.Get("Etag") != `"`+sloETag+`"` || resp.Header.Get("X-Manifest-Etag") != md5hex(stored) ||
		resp.Header.Get("X-Timestamp") == "" || resp.ContentLength != 1<<20+1000 {
		t.Fatalf("SLO GET headers %v", resp.Header)
	}

	// Listing: the whole object's bytes, the manifest's MD5 as hash, the SLO's ETag as slo_etag.
	_, list := get(t, srv, base+"?format=json")
	var objs []map[string]any
	_ = json.Unmarshal(list, &objs)
	if objs[0]["name"] != "big" || objs[0]["hash"] != md5hex(stored) || objs[0]["slo_etag"] != `"`+sloETag+`"` ||
		objs[0]["bytes"] != float64(1<<20+1000) {
		t.Fatalf("listing row %v", objs[0])
	}
	// Bytes used: the segments' bytes and the manifest's, not the SLO's bytes again.
	resp, _ = get(t, srv, base)
	if want := strconv.Itoa(1<<20 + 1000 + len(stored)); resp.Header.Get("X-Container-Bytes-Used") != want {
		t.Fatalf("bytes used %s, want %s", resp.Header.Get("X-Container-Bytes-Used"), want)
	}

	// A nested SLO: the inner one is a segment, marked sub_slo, its whole bytes served.
	outer := fmt.Sprintf(`[{"path":"/c/big","etag":%q,"size_bytes":%d},{"path":"/c/s2"}]`, sloETag, 1<<20+1000)
	if code, body := call(t, srv, "t1", "PUT", base+"/outer?multipart-manifest=put", []byte(outer)); code != 201 {
		t.Fatalf("put nested SLO: %d %s", code, body)
	}
	if _, nested := get(t, srv, base+"/outer?multipart-manifest=get"); !bytes.Contains(nested,
		[]byte(`"sub_slo": true`)) {
		t.Fatalf("nested manifest %s has no sub_slo", nested)
	}
	if _, body := get(t, srv, base+"/outer"); len(body) != 1<<20+2000 || md5hex(body) !=
		md5hex(append(append(append([]byte{}, seg1...), seg2...), seg2...)) {
		t.Fatalf("nested SLO read %d bytes", len(body))
	}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Header.Set("X-Auth-Token", "t1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestCopyAnswersAsSwiftDoes: a server-side copy's answer names its source, the source's account
// and time, and the new object's Last-Modified, as Swift 2.30's copy middleware does.
func TestCopyAnswersAsSwiftDoes(t *testing.T) {
	_, srv := newService(t)
	base := "/v1/MossoCloudFS_t1/c"
	call(t, srv, "t1", "PUT", base, nil)
	call(t, srv, "t1", "PUT", base+"/a", []byte("abc"))
	req, _ := http.NewRequest("PUT", srv.URL+base+"/b", nil)
	req.Header.Set("X-Auth-Token", "t1")
	req.Header.Set("X-Copy-From", "/c/a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 201 || h.Get("X-Copied-From") != "c/a" || h.Get("X-Copied-From-Account") != "MossoCloudFS_t1" ||
		h.Get("X-Copied-From-Last-Modified") == "" || h.Get("Last-Modified") == "" {
		t.Fatalf("copy answered %d %v", resp.StatusCode, h)
	}
}

// TestSLOWithAMissingSegment follows Swift 2.30: HEAD answers 200 from the manifest, a GET 200
// with its body cut short where the missing segment is, a GET starting in it 409.
func TestSLOWithAMissingSegment(t *testing.T) {
	_, srv := newService(t)
	base := "/v1/MossoCloudFS_t1/c"
	call(t, srv, "t1", "PUT", base, nil)
	seg1, seg2 := bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 1000)
	call(t, srv, "t1", "PUT", base+"/s1", seg1)
	call(t, srv, "t1", "PUT", base+"/s2", seg2)
	man := `[{"path":"/c/s1"},{"path":"/c/s2"}]`
	if code, body := call(t, srv, "t1", "PUT", base+"/big?multipart-manifest=put", []byte(man)); code != 201 {
		t.Fatalf("put SLO: %d %s", code, body)
	}
	call(t, srv, "t1", "DELETE", base+"/s2", nil)
	if code, _ := call(t, srv, "t1", "HEAD", base+"/big", nil); code != 200 {
		t.Fatalf("HEAD of an SLO missing a segment: %d, want 200", code)
	}
	req, _ := http.NewRequest("GET", srv.URL+base+"/big", nil)
	req.Header.Set("X-Auth-Token", "t1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err == nil || len(got) != 1<<20 {
		t.Fatalf("GET: %d, %d bytes, %v; want 200 cut short after the first segment's 1 MiB", resp.StatusCode,
			len(got), err)
	}
	req.Header.Set("Range", "bytes=1048576-")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 409 {
		t.Fatalf("GET of a range in the gap: %v %v, want 409", resp, err)
	}
}
