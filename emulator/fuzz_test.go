package emulator

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/, so plain `go test` runs them;
// `go test -fuzz=FuzzX ./emulator/` explores further.

func FuzzParseVHDFooter(f *testing.F) {
	f.Add(MakeVHDFooter(1<<20, vhdDiskFixed, [16]byte{9}))
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
		if footer.UniqueID == [16]byte{} || (footer.DiskType != vhdDiskFixed && footer.DiskType != vhdDiskDynamic) {
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
		img := &image{ID: "id", Name: "n", Status: "active", Owner: "1", Checksum: "c", Size: 5,
			Props: map[string]string{"app": "web"}, Tags: []string{"t"}, Members: map[string]*member{}}
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
		if len(next.Props) > maxProps {
			t.Fatal("patch went past the property quota")
		}
	})
}

// FuzzRequestBodies sends arbitrary bodies to every endpoint that reads one: a client mistake must
// get a 4xx, never a 5xx or a panic.
func FuzzRequestBodies(f *testing.F) {
	f.Add(uint8(0), []byte(`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"demo","apiKey":"demo-api-key"}}}`))
	f.Add(uint8(1), []byte(`[{"op":"add","path":"/a","value":"b"}]`))
	f.Add(uint8(2), []byte(`{"member":"100002"}`))
	f.Add(uint8(4), []byte(`{"type":"import","input":{"import_from":"c/o"}}`))
	f.Add(uint8(5), []byte(`[{"path":"/c/o"}]`))
	e, err := New(Config{TaskDuration: 1})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	e.mu.Lock()
	e.st.Tokens["tok"] = &token{Tenant: "100001", Expires: now().Add(1e12)}
	e.st.Tokens["ptok"] = &token{Tenant: "100002", Expires: now().Add(1e12)}
	e.mu.Unlock()
	id := stableID("DFW/100001/demo-web-01")
	ident, dfw := e.IdentityHandler(), e.RegionHandler("DFW")
	targets := []struct {
		h                   http.Handler
		method, path, token string
		ct                  string
	}{
		{ident, "POST", "/v2.0/tokens", "", "application/json"},
		{dfw, "PATCH", "/v2/images/" + id, "tok", "application/openstack-images-v2.1-json-patch"},
		{dfw, "POST", "/v2/images/" + id + "/members", "tok", "application/json"},
		{dfw, "PUT", "/v2/images/" + id + "/members/100002", "ptok", "application/json"},
		{dfw, "POST", "/v2/tasks", "tok", "application/json"},
		{dfw, "PUT", "/v1/MossoCloudFS_100001/c/slo?multipart-manifest=put", "tok", "application/json"},
		{dfw, "POST", "/v1/MossoCloudFS_100001?bulk-delete", "tok", "text/plain"},
		{ident, "POST", "/_emulator/faults", "", "application/json"},
	}
	put := httptest.NewRequest("PUT", "/v1/MossoCloudFS_100001/c", nil)
	put.Header.Set("X-Auth-Token", "tok")
	dfw.ServeHTTP(httptest.NewRecorder(), put)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		tg := targets[int(which)%len(targets)]
		if tg.path == "/_emulator/faults" {
			defer e.ClearFaults() // a fuzzed fault must not disturb the next input
		}
		req := httptest.NewRequest(tg.method, tg.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", tg.ct)
		if tg.token != "" {
			req.Header.Set("X-Auth-Token", tg.token)
		}
		rec := httptest.NewRecorder()
		tg.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s answered %d to %q: %s", tg.method, tg.path, rec.Code, body, rec.Body)
		}
	})
}
