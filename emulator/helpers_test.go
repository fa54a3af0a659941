package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// startEmu runs an emulator on free ports with fast tasks, closed when the test ends.
func startEmu(t testing.TB, mod ...func(*Config)) *Emulator {
	t.Helper()
	cfg := Config{TaskDuration: 40 * time.Millisecond}
	for _, m := range mod {
		m(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// session is one account's view of the emulator, speaking raw HTTP.
type session struct {
	t      testing.TB
	e      *Emulator
	token  string
	tenant string
}

func login(t testing.TB, e *Emulator, user, apiKey string) *session {
	t.Helper()
	body := `{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"` + user + `","apiKey":"` + apiKey + `"}}}`
	resp, err := http.Post(e.IdentityURL()+"tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login %s: status %d", user, resp.StatusCode)
	}
	var out struct {
		Access struct {
			Token struct {
				ID     string
				Tenant struct{ ID string }
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return &session{t: t, e: e, token: out.Access.Token.ID, tenant: out.Access.Token.Tenant.ID}
}

func demo(t testing.TB, e *Emulator) *session    { return login(t, e, "demo", "demo-api-key") }
func partner(t testing.TB, e *Emulator) *session { return login(t, e, "partner", "partner-api-key") }

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends a request to region's host; path is absolute (/v2/... or /v1/...).
func (s *session) do(method, region, path string, body any, hdr ...string) reply {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.e.RegionURL(region)+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", s.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func (s *session) files(container string) string {
	p := "/v1/MossoCloudFS_" + s.tenant
	if container != "" {
		p += "/" + container
	}
	return p
}

// imageID finds an image by name in a region.
func (s *session) imageID(region, name string) string {
	s.t.Helper()
	r := s.do("GET", region, "/v2/images?name="+name, nil)
	imgs := r.json(s.t)["images"].([]any)
	if len(imgs) != 1 {
		s.t.Fatalf("want one image named %s in %s, got %d", name, region, len(imgs))
	}
	return imgs[0].(map[string]any)["id"].(string)
}

// waitTask polls a task until it ends and returns it.
func (s *session) waitTask(region, id string) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		tk := s.do("GET", region, "/v2/tasks/"+id, nil).json(s.t)
		if st := tk["status"]; st == "success" || st == "failure" {
			return tk
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("task %s did not finish", id)
	return nil
}

func (s *session) runTask(region string, body string) map[string]any {
	s.t.Helper()
	r := s.do("POST", region, "/v2/tasks", body)
	if r.code != 201 {
		s.t.Fatalf("create task: %d %s", r.code, r.body)
	}
	return s.waitTask(region, r.json(s.t)["id"].(string))
}

func wantCode(t testing.TB, r reply, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d: %s", r.code, code, r.body)
	}
}

// wantFault checks a Rackspace fault body {"<name>":{"code":N,"message":...}}.
func wantFault(t testing.TB, r reply, code int) string {
	t.Helper()
	wantCode(t, r, code)
	m := r.json(t)
	f, ok := m[core.FaultName(code)].(map[string]any)
	if !ok || int(f["code"].(float64)) != code || f["message"] == "" {
		t.Fatalf("fault body for %d is %s", code, r.body)
	}
	return f["message"].(string)
}

// download GETs path from region and hands over the body unread.
func (s *session) download(region, path string) io.ReadCloser {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.e.RegionURL(region)+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		s.t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	return resp.Body
}
