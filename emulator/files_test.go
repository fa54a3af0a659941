package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator/objectstorage"
)

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func TestContainers(t *testing.T) {
	e := startEmu(t)
	s, p := demo(t, e), partner(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("c1"), nil), 201)
	wantCode(t, s.do("PUT", "DFW", s.files("c1"), nil), 202)
	wantCode(t, s.do("HEAD", "DFW", s.files("c1"), nil), 204)
	wantCode(t, s.do("HEAD", "IAD", s.files("c1"), nil), 404) // containers are per region
	wantCode(t, s.do("PUT", "DFW", s.files("c1")+"/o", "x"), 201)
	head := s.do("HEAD", "DFW", s.files("c1"), nil)
	if head.header.Get("X-Container-Object-Count") != "1" || head.header.Get("X-Container-Bytes-Used") != "1" {
		t.Fatalf("container headers %v", head.header)
	}
	wantFault(t, s.do("DELETE", "DFW", s.files("c1"), nil), 409)
	wantFault(t, s.do("DELETE", "DFW", s.files("nope"), nil), 404)
	if got := string(s.do("GET", "DFW", s.files(""), nil).body); got != "c1\n" {
		t.Fatalf("account listing %q", got)
	}
	var rows []map[string]any
	_ = json.Unmarshal(s.do("GET", "DFW", s.files("")+"?format=json", nil).body, &rows)
	// Swift 2.30 lists each container's put time as last_modified.
	if len(rows) != 1 || rows[0]["name"] != "c1" || rows[0]["count"] != float64(1) || rows[0]["last_modified"] == "" {
		t.Fatalf("account json %v", rows)
	}
	// Another account's path is forbidden, whatever the container.
	wantFault(t, p.do("GET", "DFW", s.files("c1"), nil), 403)
	wantFault(t, p.do("PUT", "DFW", s.files("c1")+"/o", "evil"), 403)
	wantFault(t, p.do("GET", "DFW", s.files("c1")+"/o", nil), 403)
	wantFault(t, p.do("GET", "DFW", p.files("c1"), nil), 404)
	wantCode(t, s.do("DELETE", "DFW", s.files("c1")+"/o", nil), 204)
	wantCode(t, s.do("DELETE", "DFW", s.files("c1"), nil), 204)
}

// TestNamesWithNULAreRefused: Swift refuses NUL (and invalid UTF-8) anywhere in a path with 412.
func TestNamesWithNULAreRefused(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("c"), nil), 201)
	for _, p := range []string{s.files("c") + "/a%00b", s.files("c%00d"), s.files("c") + "/a%ffb"} {
		r := s.do("PUT", "DFW", p, "x")
		wantCode(t, r, 412)
		if !strings.Contains(string(r.body), "Invalid UTF8 or contains NULL") {
			t.Fatalf("%s: %s", p, r.body)
		}
	}
	wantCode(t, s.do("PUT", "DFW", s.files("c")+"/a%e2%82%acb", "x"), 201) // UTF-8 is fine
}

func TestObjects(t *testing.T) {
	e := startEmu(t, func(c *Config) { c.MaxObjectSize = 1 << 20 })
	s := demo(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("c"), nil), 201)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	obj := s.files("c") + "/dir/obj.bin"

	wantFault(t, s.do("PUT", "DFW", s.files("nope")+"/o", data), 404)
	wantFault(t, s.do("PUT", "DFW", obj, data, "ETag", strings.Repeat("0", 32)), 422)
	wantFault(t, s.do("GET", "DFW", obj, nil), 404) // a failed PUT leaves nothing
	up := s.do(
		"PUT",
		"DFW",
		obj,
		data,
		"ETag",
		md5hex(data),
		"Content-Type",
		"text/plain",
		"X-Object-Meta-Color",
		"blue",
	)
	wantCode(t, up, 201)
	if up.header.Get("ETag") != md5hex(data) {
		t.Fatalf("etag %s", up.header.Get("ETag"))
	}
	get := s.do("GET", "DFW", obj, nil)
	if !bytes.Equal(get.body, data) || get.header.Get("Content-Type") != "text/plain" ||
		get.header.Get("X-Object-Meta-Color") != "blue" {
		t.Fatalf("get: %d bytes, headers %v", len(get.body), get.header)
	}
	rng := s.do("GET", "DFW", obj, nil, "Range", "bytes=10-19")
	wantCode(t, rng, 206)
	if string(rng.body) != "0123456789" || rng.header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(data)) {
		t.Fatalf("range %q %v", rng.body, rng.header)
	}
	wantCode(t, s.do("GET", "DFW", obj, nil, "Range", "bytes=999999-"), 416)
	wantCode(t, s.do("GET", "DFW", obj, nil, "If-Match", md5hex(data)), 200)
	wantCode(t, s.do("GET", "DFW", obj, nil, "If-Match", `"`+md5hex(data)+`"`), 200)
	wantCode(t, s.do("GET", "DFW", obj, nil, "If-Match", "abc"), 412)
	wantCode(t, s.do("GET", "DFW", obj, nil, "If-None-Match", md5hex(data)), 304)
	wantCode(t, s.do("GET", "DFW", obj, nil, "If-None-Match", "abc"), 200)

	// Chunked upload (no Content-Length), and the size limit both declared and streamed.
	req, _ := http.NewRequest("PUT", e.RegionURL("DFW")+s.files("c")+"/chunked", io.MultiReader(bytes.NewReader(data)))
	req.Header.Set("X-Auth-Token", s.token)
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 || resp.Header.Get("ETag") != md5hex(data) {
		t.Fatalf("chunked upload: %v %v", err, resp)
	}
	resp.Body.Close()
	wantFault(t, s.do("PUT", "DFW", s.files("c")+"/big", make([]byte, 1<<20+1)), 413)
	req, _ = http.NewRequest(
		"PUT",
		e.RegionURL("DFW")+s.files("c")+"/bigchunked",
		io.MultiReader(bytes.NewReader(make([]byte, 1<<20+1))),
	)
	req.Header.Set("X-Auth-Token", s.token)
	req.ContentLength = -1
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("chunked oversize: %v %v", err, resp)
	}
	resp.Body.Close()

	// Listing with prefix, delimiter, marker and limit.
	for _, n := range []string{"a/1", "a/2", "b/1"} {
		wantCode(t, s.do("PUT", "DFW", s.files("c")+"/"+n, n), 201)
	}
	list := func(q string) string { return string(s.do("GET", "DFW", s.files("c")+"?"+q, nil).body) }
	if got := list("prefix=a/"); got != "a/1\na/2\n" {
		t.Fatalf("prefix listing %q", got)
	}
	if got := list("delimiter=/"); got != "a/\nb/\nbig\nchunked\ndir/\n" && got != "a/\nb/\nchunked\ndir/\n" {
		t.Fatalf("delimiter listing %q", got)
	}
	if got := list("marker=a/1&limit=2"); got != "a/2\nb/1\n" {
		t.Fatalf("marker listing %q", got)
	}
	var rows []map[string]any
	_ = json.Unmarshal([]byte(list("format=json&prefix=dir/")), &rows)
	if len(rows) != 1 || rows[0]["hash"] != md5hex(data) || rows[0]["bytes"] != float64(len(data)) {
		t.Fatalf("json listing %v", rows)
	}

	// Metadata update, copy within the region (PUT with X-Copy-From and COPY), delete.
	wantCode(t, s.do("POST", "DFW", obj, nil, "X-Object-Meta-Color", "green"), 202)
	if c := s.do("HEAD", "DFW", obj, nil).header.Get("X-Object-Meta-Color"); c != "green" {
		t.Fatalf("meta after POST %q", c)
	}
	wantCode(t, s.do("PUT", "DFW", s.files("c")+"/copy1", nil, "X-Copy-From", "/c/dir/obj.bin"), 201)
	wantCode(t, s.do("COPY", "DFW", obj, nil, "Destination", "/c/copy2"), 201)
	for _, n := range []string{"copy1", "copy2"} {
		if got := s.do("GET", "DFW", s.files("c")+"/"+n, nil); !bytes.Equal(got.body, data) {
			t.Fatalf("%s differs", n)
		}
	}
	wantFault(t, s.do("PUT", "DFW", s.files("c")+"/copy3", nil, "X-Copy-From", "/c/missing"), 404)
	wantCode(t, s.do("DELETE", "DFW", obj, nil), 204)
	wantFault(t, s.do("DELETE", "DFW", obj, nil), 404)
}

func TestLargeObjects(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("segs"), nil), 201)
	wantCode(t, s.do("PUT", "DFW", s.files("c"), nil), 201)
	seg := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 1<<20) }
	var all []byte
	var manifest []map[string]any
	var etags string
	for i := 0; i < 3; i++ {
		b := seg(i)
		if i == 2 {
			b = b[:1000] // the last segment may be small
		}
		wantCode(t, s.do("PUT", "DFW", fmt.Sprintf("%s/big/%05d", s.files("segs"), i), b), 201)
		all = append(all, b...)
		manifest = append(
			manifest,
			map[string]any{"path": fmt.Sprintf("/segs/big/%05d", i), "etag": md5hex(b), "size_bytes": len(b)},
		)
		etags += md5hex(b)
	}
	// DLO.
	wantCode(t, s.do("PUT", "DFW", s.files("c")+"/dlo", nil, "X-Object-Manifest", "segs/big/"), 201)
	dlo := s.do("GET", "DFW", s.files("c")+"/dlo", nil)
	if !bytes.Equal(dlo.body, all) || dlo.header.Get("ETag") != `"`+md5hex([]byte(etags))+`"` {
		t.Fatalf("dlo: %d bytes etag %s", len(dlo.body), dlo.header.Get("ETag"))
	}
	r := s.do("GET", "DFW", s.files("c")+"/dlo", nil, "Range", fmt.Sprintf("bytes=%d-%d", 1<<20-2, 1<<20+1))
	if string(r.body) != "aabb" {
		t.Fatalf("range across segments %q", r.body)
	}
	// SLO.
	wantCode(t, s.do("PUT", "DFW", s.files("c")+"/slo?multipart-manifest=put", manifest), 201)
	slo := s.do("GET", "DFW", s.files("c")+"/slo", nil)
	if !bytes.Equal(slo.body, all) || slo.header.Get("ETag") != `"`+md5hex([]byte(etags))+`"` ||
		slo.header.Get("X-Static-Large-Object") != "True" {
		t.Fatalf("slo: %d bytes headers %v", len(slo.body), slo.header)
	}
	var got []map[string]any
	_ = json.Unmarshal(s.do("GET", "DFW", s.files("c")+"/slo?multipart-manifest=get", nil).body, &got)
	if len(got) != 3 || got[0]["hash"] != md5hex(seg(0)) {
		t.Fatalf("manifest get %v", got)
	}
	// A manifest whose segment is a manifest is served whole, with the length it sends (issue 25:
	// it answered the nested manifest's length and closed after 0 bytes), and so is a DLO over it.
	nested := []map[string]any{{"path": "/c/slo"}, {"path": "/segs/big/00000"}}
	wantCode(t, s.do("PUT", "DFW", s.files("c")+"/nested?multipart-manifest=put", nested), 201)
	wantAll := append(append([]byte{}, all...), seg(0)...)
	for _, name := range []string{"nested", "dlo-of-nested"} {
		if name == "dlo-of-nested" {
			wantCode(t, s.do("PUT", "DFW", s.files("c")+"/"+name, nil, "X-Object-Manifest", "c/nested"), 201)
		}
		got := s.do("GET", "DFW", s.files("c")+"/"+name, nil)
		if !bytes.Equal(got.body, wantAll) || got.header.Get("Content-Length") != fmt.Sprint(len(wantAll)) {
			t.Fatalf("%s: %d bytes, Content-Length %s, want %d", name, len(got.body),
				got.header.Get("Content-Length"), len(wantAll))
		}
	}
	// A DLO whose prefix matches its own name is not its own segment.
	wantCode(t, s.do("PUT", "DFW", s.files("c")+"/self", nil, "X-Object-Manifest", "c/self"), 201)
	if r := s.do("GET", "DFW", s.files("c")+"/self", nil); r.code != 200 || len(r.body) != 0 {
		t.Fatalf("self-prefixed DLO: %d, %d bytes", r.code, len(r.body))
	}
	// Manifests of manifests past Swift's depth are refused when read, never cut short.
	prev := "/c/slo"
	for i := range objectstorage.MaxManifestDepth {
		name := fmt.Sprintf("deep-%d", i)
		wantCode(t, s.do("PUT", "DFW", s.files("c")+"/"+name+"?multipart-manifest=put",
			[]map[string]any{{"path": prev}}), 201)
		prev = "/c/" + name
	}
	wantFault(t, s.do("GET", "DFW", s.files("")+prev, nil), 409)
	// A small segment before the last is taken, as Swift 2.30 takes it (min_segment_size 1), and
	// served paced rather than refused.
	small := []map[string]any{{"path": "/segs/big/00002", "size_bytes": 1000}, {"path": "/segs/big/00000"}}
	wantCode(t, s.do("PUT", "DFW", s.files("c")+"/small-first?multipart-manifest=put", small), 201)
	wantFault(
		t,
		s.do("PUT", "DFW", s.files("c")+"/bad?multipart-manifest=put", []map[string]any{{"path": "/segs/nope"}}),
		400,
	)
	wantFault(
		t,
		s.do(
			"PUT",
			"DFW",
			s.files("c")+"/bad?multipart-manifest=put",
			[]map[string]any{{"path": "/segs/big/00000", "etag": "0"}},
		),
		400,
	)
	wantFault(t, s.do("PUT", "DFW", s.files("c")+"/bad?multipart-manifest=put", "[]"), 400)
	// Deleting the SLO with its segments.
	wantCode(t, s.do("DELETE", "DFW", s.files("c")+"/slo?multipart-manifest=delete", nil), 204)
	if n := s.do("HEAD", "DFW", s.files("segs"), nil).header.Get("X-Container-Object-Count"); n != "0" {
		t.Fatalf("segments left: %s", n)
	}
}

func TestBulkDelete(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("c"), nil), 201)
	wantCode(t, s.do("PUT", "DFW", s.files("empty"), nil), 201)
	for _, n := range []string{"a", "b c"} {
		wantCode(t, s.do("PUT", "DFW", s.files("c")+"/"+strings.ReplaceAll(n, " ", "%20"), "x"), 201)
	}
	r := s.do(
		"DELETE",
		"DFW",
		s.files("")+"?bulk-delete",
		"/c/a\n/c/b%20c\n/c/missing\n/empty\n",
		"Content-Type",
		"text/plain",
	)
	wantCode(t, r, 200)
	m := r.json(t)
	if m["Number Deleted"] != float64(3) || m["Number Not Found"] != float64(1) || m["Response Status"] != "200 OK" {
		t.Fatalf("bulk delete %v", m)
	}
}

func TestAccountListingPages(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	for _, c := range []string{"a", "b", "c", "d"} {
		wantCode(t, s.do("PUT", "DFW", s.files(c), nil), 201)
	}
	if got := string(s.do("GET", "DFW", s.files("")+"?marker=b&limit=1", nil).body); got != "c\n" {
		t.Fatalf("page after b: %q", got)
	}
	if code := s.do("GET", "DFW", s.files("")+"?marker=d", nil).code; code != 204 {
		t.Fatalf("past the end: %d", code)
	}
	if got := string(s.do("GET", "DFW", s.files("")+"?prefix=c", nil).body); got != "c\n" {
		t.Fatalf("prefix: %q", got)
	}
}

// TestTempURLs: a temporary URL signed with the account's key GETs one object without a token,
// until it expires; a wrong signature, an expired one, another method, a container, or an
// account without a key are refused.
func TestTempURLs(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("c"), nil), 201)
	wantCode(t, s.do("PUT", "DFW", s.files("c")+"/o", "temp bytes"), 201)
	path := s.files("c") + "/o"
	signed := func(key string, expires int64, p string) string {
		return fmt.Sprintf("%s%s?temp_url_sig=%s&temp_url_expires=%d", e.RegionURL("DFW"), p,
			hex.EncodeToString(objectstorage.TempURLSignature(key, "GET", expires, p)), expires)
	}
	get := func(method, u string) int {
		req, _ := http.NewRequest(method, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	later := time.Now().Add(time.Hour).Unix()
	if code := get("GET", signed("k1", later, path)); code != 401 {
		t.Fatalf("no key set, yet a signed URL answered %d", code)
	}
	wantCode(t, s.do("POST", "DFW", s.files(""), nil, "X-Account-Meta-Temp-Url-Key", "k1"), 204)
	if h := s.do("HEAD", "DFW", s.files(""), nil).header.Get("X-Account-Meta-Temp-Url-Key"); h != "k1" {
		t.Fatalf("account key reads %q", h)
	}
	resp, err := http.Get(signed("k1", later, path))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "temp bytes" {
		t.Fatalf("signed GET: %d %q", resp.StatusCode, body)
	}
	for what, code := range map[string]int{
		"a wrong key":      get("GET", signed("k2", later, path)),
		"an expired URL":   get("GET", signed("k1", time.Now().Add(-time.Second).Unix(), path)),
		"a PUT":            get("PUT", signed("k1", later, path)),
		"a container":      get("GET", signed("k1", later, s.files("c"))),
		"another account":  get("GET", signed("k1", later, "/v1/MossoCloudFS_100002/c/o")),
		"a DELETE, signed": get("DELETE", signed("k1", later, path)),
	} {
		if code != 401 {
			t.Errorf("%s answered %d, want 401", what, code)
		}
	}
	if got := s.do("GET", "DFW", path, nil); got.code != 200 {
		t.Fatalf("the object after the refusals: %d", got.code)
	}
}
