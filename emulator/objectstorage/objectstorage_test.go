package objectstorage

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imageflow/imageflow/emulator/internal/core"
	"github.com/imageflow/imageflow/emulator/internal/seeded"
)

// newService serves tenant "t1" in region "R" behind a stand-in for identity that takes the
// tenant from the X-Auth-Token header itself.
func newService(t *testing.T) (*Service, *httptest.Server) {
	t.Helper()
	s := New(core.NewStore(t.TempDir(), nil), map[string]Files{"R": {}},
		map[string]map[string]map[string]string{"R": {}},
		Options{MaxObjectSize: 1 << 20, Generated: seeded.NewRegistry(nil)})
	mux := http.NewServeMux()
	s.Route(mux, "R")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, core.WithCaller(r, r.Header.Get("X-Auth-Token")))
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func call(t *testing.T, srv *httptest.Server, tenant, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	req.Header.Set("X-Auth-Token", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestTaskPathMeetsTheHTTPPath: what an export task writes through Put and PutManifest is one
// object to a Swift client, and what a client uploads is what an import task reads through Open.
func TestTaskPathMeetsTheHTTPPath(t *testing.T) {
	s, srv := newService(t)
	if code, _ := call(t, srv, "t1", "PUT", "/v1/MossoCloudFS_t1/exports", nil); code != 201 {
		t.Fatalf("create container: %d", code)
	}
	if found, obj := s.Lookup("R", "t1", "exports", "img.vhd"); !found || obj {
		t.Fatalf("Lookup before the export: container %v, object %v", found, obj)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	src := bytes.NewReader(data)
	for i, part := range []string{"img.vhd-00001", "img.vhd-00002"} {
		if err := s.Put("R", "t1", "exports", part, src, int64(len(data)/2)); err != nil {
			t.Fatalf("segment %d: %v", i+1, err)
		}
	}
	if err := s.PutManifest("R", "t1", "exports", "img.vhd", "img.vhd-"); err != nil {
		t.Fatal(err)
	}
	code, got := call(t, srv, "t1", "GET", "/v1/MossoCloudFS_t1/exports/img.vhd", nil)
	if code != 200 || !bytes.Equal(got, data) {
		t.Fatalf("GET the manifest: %d, %d bytes", code, len(got))
	}
	if code, _ := call(t, srv, "t1", "PUT", "/v1/MossoCloudFS_t1/exports/up.vhd", data[:1000]); code != 201 {
		t.Fatalf("upload: %d", code)
	}
	r, size, found, err := s.Open("R", "t1", "exports", "up.vhd")
	if err != nil || !found || size != 1000 {
		t.Fatalf("Open: %v %v %d", err, found, size)
	}
	b, _ := io.ReadAll(r)
	_ = r.Close()
	if !bytes.Equal(b, data[:1000]) {
		t.Fatal("Open read other bytes than were uploaded")
	}
	if _, _, found, _ := s.Open("R", "t2", "exports", "up.vhd"); found {
		t.Fatal("another tenant opened t1's object")
	}
	err = s.Put("R", "t1", "gone", "x", strings.NewReader("x"), 1)
	if !errors.Is(err, ErrNoContainer) {
		t.Fatalf("Put into a missing container: %v", err)
	}
}

// TestAnotherAccountIsForbidden: a token opens only its own account's files.
func TestAnotherAccountIsForbidden(t *testing.T) {
	_, srv := newService(t)
	if code, _ := call(t, srv, "t2", "PUT", "/v1/MossoCloudFS_t1/c", nil); code != 403 {
		t.Fatalf("t2 on t1's account: %d", code)
	}
}
