package identity

import (
	"crypto/subtle"
	"github.com/imageflow/imageflow/emulator/internal/core"
	"net/http"
	"time"
)

type authRequest struct {
	Auth *struct {
		APIKey *struct {
			Username string `json:"username"`
			APIKey   string `json:"apiKey"`
		} `json:"RAX-KSKEY:apiKeyCredentials"`
		Password *struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"passwordCredentials"`
		TenantID   string `json:"tenantId"`
		TenantName string `json:"tenantName"`
	} `json:"auth"`
}

const badCredentials = "Unable to authenticate user with credentials provided."

func secretEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (s *Service) createToken(w http.ResponseWriter, r *http.Request) {
	var req authRequest
	if !core.ReadJSON(w, r, &req) {
		return
	}
	a := req.Auth
	switch {
	case a == nil:
		core.Fail(w, 400, "Invalid request: the body must hold an \"auth\" object.")
		return
	case a.APIKey == nil && a.Password == nil:
		core.Fail(w, 400, "Invalid request: auth needs RAX-KSKEY:apiKeyCredentials or passwordCredentials.")
		return
	case a.APIKey != nil && a.Password != nil:
		core.Fail(w, 400, "Invalid request: give either apiKeyCredentials or passwordCredentials, not both.")
		return
	case a.TenantID != "" && a.TenantName != "":
		core.Fail(w, 400, "Invalid request: give either tenantId or tenantName, not both.")
		return
	}
	var acct Account
	var ok bool
	if a.APIKey != nil {
		acct, ok = s.findAccount(a.APIKey.Username)
		ok = ok && secretEqual(a.APIKey.APIKey, acct.APIKey)
	} else {
		acct, ok = s.findAccount(a.Password.Username)
		ok = ok && secretEqual(a.Password.Password, acct.Password)
	}
	if tenant := a.TenantID + a.TenantName; ok && tenant != "" && tenant != acct.Tenant {
		ok = false
	}
	if !ok {
		core.Fail(w, 401, badCredentials)
		return
	}
	id, expires := s.issue(acct.Tenant, time.Now())
	core.WriteJSON(w, 200, map[string]any{"access": map[string]any{
		"token": map[string]any{
			"id": id, "expires": expires.Format(time.RFC3339),
			"tenant":                   map[string]any{"id": acct.Tenant, "name": acct.Tenant},
			"RAX-AUTH:authenticatedBy": []string{map[bool]string{true: "APIKEY", false: "PASSWORD"}[a.APIKey != nil]},
		},
		"user": map[string]any{
			"id": "user-" + acct.Tenant, "name": acct.Username,
			"roles": []any{
				map[string]any{"id": "3", "name": "identity:user-admin", "description": "User Admin Role."},
			},
			"RAX-AUTH:defaultRegion": acct.DefaultRegion,
		},
		"serviceCatalog": s.catalog(acct.Tenant, r.Host),
	}})
}

func tenantView(id string) map[string]any {
	return map[string]any{"id": id, "name": id, "enabled": true, "description": ""}
}

// listTenants answers GET /v2.0/tenants: the caller's own account only, as for a user.
func (s *Service) listTenants(w http.ResponseWriter, r *http.Request) {
	core.WriteJSON(w, 200, map[string]any{"tenants": []any{tenantView(core.Caller(r))}, "tenants_links": []any{}})
}

// getTenant answers GET /v2.0/tenants/{id}: the caller's own account; any other is for
// administrators (403), which is how a client learns to take another account's id as given.
func (s *Service) getTenant(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != core.Caller(r) {
		core.WriteJSON(w, 403, map[string]any{"forbidden": map[string]any{"code": 403,
			"message": "Not Authorized to read tenant " + id}})
		return
	}
	core.WriteJSON(w, 200, map[string]any{"tenant": tenantView(core.Caller(r))})
}

// identityVersion is Identity v2.0's version document.
func (s *Service) identityVersion(w http.ResponseWriter, r *http.Request) {
	core.WriteJSON(w, 200, map[string]any{"version": map[string]any{
		"id": "v2.0", "status": "stable", "updated": "2014-04-17T00:00:00Z",
		"links": []any{map[string]any{"rel": "self", "href": "http://" + r.Host + "/v2.0/"}},
	}})
}
