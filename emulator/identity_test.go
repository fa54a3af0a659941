package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

func postToken(t *testing.T, e *Emulator, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(e.IdentityURL()+"tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("token answer is not JSON: %s", b)
	}
	return resp.StatusCode, m
}

func TestIdentity(t *testing.T) {
	e := startEmu(t)
	cases := []struct {
		name, body string
		code       int
		tenant     string
	}{
		{
			"api key",
			`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"demo","apiKey":"demo-api-key"}}}`,
			200,
			"100001",
		},
		{
			"password",
			`{"auth":{"passwordCredentials":{"username":"partner","password":"partner-password"}}}`,
			200,
			"100002",
		},
		{
			"password with tenantId",
			`{"auth":{"passwordCredentials":{"username":"demo","password":"demo-password"},"tenantId":"100001"}}`,
			200,
			"100001",
		},
		{
			"password with other tenant",
			`{"auth":{"passwordCredentials":{"username":"demo","password":"demo-password"},"tenantName":"100002"}}`,
			401,
			"",
		},
		{
			"tenantId and tenantName",
			`{"auth":{"passwordCredentials":{"username":"demo","password":"demo-password"},"tenantId":"100001","tenantName":"100001"}}`,
			400,
			"",
		},
		{
			"wrong key",
			`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"demo","apiKey":"partner-api-key"}}}`,
			401,
			"",
		},
		{"unknown user", `{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"nobody","apiKey":"x"}}}`, 401, ""},
		{"empty key", `{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"demo","apiKey":""}}}`, 401, ""},
		{
			"both credentials",
			`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"demo","apiKey":"demo-api-key"},"passwordCredentials":{"username":"demo","password":"demo-password"}}}`,
			400,
			"",
		},
		{"no credentials", `{"auth":{}}`, 400, ""},
		{"no auth", `{}`, 400, ""},
		{"malformed", `{"auth":`, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, m := postToken(t, e, c.body)
			if code != c.code {
				t.Fatalf("status %d, want %d: %v", code, c.code, m)
			}
			if code != 200 {
				f, ok := m[core.FaultName(code)].(map[string]any)
				if !ok || f["message"] == "" {
					t.Fatalf("fault body: %v", m)
				}
				if code == 401 && f["message"] != "Unable to authenticate user with credentials provided." {
					t.Fatalf("401 message %q", f["message"])
				}
				return
			}
			access := m["access"].(map[string]any)
			tok := access["token"].(map[string]any)
			if tok["tenant"].(map[string]any)["id"] != c.tenant {
				t.Fatalf("tenant %v, want %s", tok["tenant"], c.tenant)
			}
			exp, err := time.Parse(time.RFC3339, tok["expires"].(string))
			if err != nil || exp.Before(time.Now().Add(23*time.Hour)) {
				t.Fatalf("expires %v (%v), want about 24h ahead", tok["expires"], err)
			}
			checkCatalog(t, e, access["serviceCatalog"].([]any), c.tenant)
		})
	}
}

func checkCatalog(t *testing.T, e *Emulator, cat []any, tenant string) {
	t.Helper()
	found := map[string]int{}
	for _, s := range cat {
		svc := s.(map[string]any)
		for _, ep := range svc["endpoints"].([]any) {
			m := ep.(map[string]any)
			region := m["region"].(string)
			switch svc["type"] {
			case "image":
				if svc["name"] != "cloudImages" || m["publicURL"] != e.RegionURL(region)+"/v2" ||
					m["tenantId"] != tenant {
					t.Fatalf("image endpoint %v", m)
				}
			case "object-store":
				if svc["name"] != "cloudFiles" || m["publicURL"] != e.RegionURL(region)+"/v1/MossoCloudFS_"+tenant ||
					m["tenantId"] != "MossoCloudFS_"+tenant {
					t.Fatalf("object-store endpoint %v", m)
				}
			}
			found[svc["type"].(string)]++
		}
	}
	if found["image"] != len(Regions) || found["object-store"] != len(Regions) {
		t.Fatalf("catalog has %v endpoints, want %d of each", found, len(Regions))
	}
}

func TestTokensGuardEveryService(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	for _, p := range []string{"/v2/images", "/v2/tasks", s.files(""), s.files("c")} {
		for _, tok := range []string{"", "not-a-token"} {
			bad := &session{t: t, e: e, token: tok, tenant: s.tenant}
			wantFault(t, bad.do("GET", "DFW", p, nil), 401)
		}
	}
	e.SetTokenTTL(150 * time.Millisecond)
	short := demo(t, e)
	wantCode(t, short.do("GET", "DFW", "/v2/images", nil), 200)
	time.Sleep(250 * time.Millisecond)
	wantFault(t, short.do("GET", "DFW", "/v2/images", nil), 401)
	wantCode(t, s.do("GET", "DFW", "/v2/images", nil), 200) // older, long-lived token still works
	e.ExpireTokens()
	wantFault(t, s.do("GET", "DFW", "/v2/images", nil), 401)
}

// TestCatalogNamesTheHostCalled: one emulator serves clients that reach it by different names
// (a worker in the compose network by "emulator", a starter on the docker host by "localhost"):
// each catalog lists the regions on the host name that client used, with the regions' ports.
// Before, the catalog named one configured host, and a starter on the host met "lookup
// emulator: no such host" (issue 43).
func TestCatalogNamesTheHostCalled(t *testing.T) {
	e := startEmu(t, func(c *Config) { c.PublicHost = "emulator" })
	body := `{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"demo","apiKey":"demo-api-key"}}}`
	identity, err := url.Parse(e.IdentityURL()) // http://emulator:port/v2.0/
	if err != nil {
		t.Fatal(err)
	}
	dfw, err := url.Parse(e.RegionURL("DFW"))
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "emulator", "[::1]"} {
		req, err := http.NewRequest("POST", "http://127.0.0.1:"+identity.Port()+"/v2.0/tokens", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host + ":" + identity.Port()
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			Access struct {
				ServiceCatalog []struct {
					Type      string `json:"type"`
					Endpoints []struct {
						Region    string `json:"region"`
						PublicURL string `json:"publicURL"`
					} `json:"endpoints"`
				} `json:"serviceCatalog"`
			} `json:"access"`
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := "http://" + host + ":" + dfw.Port() + "/v2"
		var got string
		for _, svc := range tok.Access.ServiceCatalog {
			for _, ep := range svc.Endpoints {
				if svc.Type == "image" && ep.Region == "DFW" {
					got = ep.PublicURL
				}
			}
		}
		if got != want {
			t.Errorf("called as %s: DFW's images at %q, want %q", host, got, want)
		}
	}
}
