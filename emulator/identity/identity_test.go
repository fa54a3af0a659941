package identity

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

func newService(t *testing.T) (*Service, *httptest.Server) {
	t.Helper()
	store := core.NewStore(t.TempDir(), nil)
	regions := func() []Region {
		return []Region{{Name: "DFW", URL: "http://dfw", ObjectStore: true}, {Name: "RegionOne", URL: "http://one",
			Generic: true}}
	}
	self := func() string { return "http://id/v2.0/" }
	s := New(store, Config{Accounts: DefaultAccounts(), TokenTTL: time.Hour, URL: self, Regions: regions},
		map[string]*Token{})
	mux := http.NewServeMux()
	s.Route(mux)
	mux.Handle("/whoami", s.Authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(core.Caller(r)))
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv
}

func whoami(t *testing.T, srv *httptest.Server, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/whoami", nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTokensNameTheirTenant: a v3 password token carries its account to the services behind
// Authenticated; an expired or unknown one is refused; the catalog lists an object store only
// where a region has one, and Glance at a generic region's root.
func TestTokensNameTheirTenant(t *testing.T) {
	s, srv := newService(t)
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"partner",` +
		`"domain":{"id":"default"},"password":"partner-password"}}}}}`
	resp, err := http.Post(srv.URL+"/v3/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token struct {
			Catalog []struct {
				Type      string
				Endpoints []struct{ Region, URL, Interface string }
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 201 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	token := resp.Header.Get("X-Subject-Token")
	if code, tenant := whoami(t, srv, token); code != 200 || tenant != "100002" {
		t.Fatalf("whoami: %d %q", code, tenant)
	}
	urls := map[string]string{}
	for _, svc := range out.Token.Catalog {
		for _, ep := range svc.Endpoints {
			if ep.Interface == "public" {
				urls[svc.Type+"/"+ep.Region] = ep.URL
			}
		}
	}
	if urls["image/DFW"] != "http://dfw/v2" || urls["image/RegionOne"] != "http://one" ||
		urls["object-store/DFW"] != "http://dfw/v1/MossoCloudFS_100002" || urls["object-store/RegionOne"] != "" {
		t.Fatalf("catalog: %v", urls)
	}
	if code, _ := whoami(t, srv, "no-such-token"); code != 401 {
		t.Fatalf("unknown token: %d", code)
	}
	s.ExpireTokens()
	if code, _ := whoami(t, srv, token); code != 401 {
		t.Fatalf("expired token: %d", code)
	}
}
