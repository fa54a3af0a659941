package emulator

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator/identity"
	"github.com/imageflow/imageflow/emulator/internal/core"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/, so plain `go test` runs them;
// `go test -fuzz=FuzzX ./emulator/` explores further (the images package has its own).

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
	e.store.Lock()
	e.st.Tokens["tok"] = &identity.Token{Tenant: "100001", Expires: time.Now().Add(1e12)}
	e.st.Tokens["ptok"] = &identity.Token{Tenant: "100002", Expires: time.Now().Add(1e12)}
	e.store.Unlock()
	id := core.StableID("DFW/100001/demo-web-01")
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
