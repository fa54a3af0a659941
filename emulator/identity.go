package emulator

import (
	"crypto/subtle"
	"net/http"
	"strings"
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

func (e *Emulator) createToken(w http.ResponseWriter, r *http.Request) {
	var req authRequest
	if !readJSON(w, r, &req) {
		return
	}
	a := req.Auth
	switch {
	case a == nil:
		fail(w, 400, "Invalid request: the body must hold an \"auth\" object.")
		return
	case a.APIKey == nil && a.Password == nil:
		fail(w, 400, "Invalid request: auth needs RAX-KSKEY:apiKeyCredentials or passwordCredentials.")
		return
	case a.APIKey != nil && a.Password != nil:
		fail(w, 400, "Invalid request: give either apiKeyCredentials or passwordCredentials, not both.")
		return
	case a.TenantID != "" && a.TenantName != "":
		fail(w, 400, "Invalid request: give either tenantId or tenantName, not both.")
		return
	}
	var acct Account
	var ok bool
	if a.APIKey != nil {
		acct, ok = e.findAccount(a.APIKey.Username)
		ok = ok && secretEqual(a.APIKey.APIKey, acct.APIKey)
	} else {
		acct, ok = e.findAccount(a.Password.Username)
		ok = ok && secretEqual(a.Password.Password, acct.Password)
	}
	if tenant := a.TenantID + a.TenantName; ok && tenant != "" && tenant != acct.Tenant {
		ok = false
	}
	if !ok {
		fail(w, 401, badCredentials)
		return
	}
	id, expires := newID(), time.Now().Add(e.tokenTTL()).UTC()
	e.mu.Lock()
	e.st.Tokens[id] = &token{Tenant: acct.Tenant, Expires: expires}
	e.pruneTokensLocked()
	e.commit()
	e.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access": map[string]any{
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
		"serviceCatalog": e.catalog(acct.Tenant),
	}})
}

func (e *Emulator) findAccount(username string) (Account, bool) {
	for _, a := range e.cfg.Accounts {
		if a.Username == username {
			return a, true
		}
	}
	return Account{}, false
}

// pruneTokensLocked drops expired tokens so state.json does not grow without bound.
func (e *Emulator) pruneTokensLocked() {
	n := time.Now()
	for id, t := range e.st.Tokens {
		if n.After(t.Expires) {
			delete(e.st.Tokens, id)
		}
	}
}

func (e *Emulator) catalog(tenant string) []any {
	var imgs, files, ids []any
	identity := strings.TrimSuffix(e.IdentityURL(), "/")
	for _, name := range Regions {
		base := e.RegionURL(name)
		// Clients look up the identity service in the region they work in (openstack image add
		// project resolves the project through it), so it is listed in every region.
		ids = append(ids, map[string]any{"region": name, "tenantId": tenant, "publicURL": identity,
			"internalURL": identity})
		imgs = append(imgs, map[string]any{
			"region": name, "tenantId": tenant,
			"publicURL": base + "/v2", "internalURL": base + "/v2",
		})
		files = append(files, map[string]any{
			"region": name, "tenantId": "MossoCloudFS_" + tenant,
			"publicURL": base + "/v1/MossoCloudFS_" + tenant, "internalURL": base + "/v1/MossoCloudFS_" + tenant,
		})
	}
	for _, name := range e.cfg.GenericRegions {
		img, id := genericCatalog(name, e.RegionURL(name), identity)
		imgs, ids = append(imgs, img), append(ids, id)
		if e.hasFiles(name) {
			files = append(files, map[string]any{"region": name, "tenantId": "MossoCloudFS_" + tenant,
				"publicURL":   e.RegionURL(name) + "/v1/MossoCloudFS_" + tenant,
				"internalURL": e.RegionURL(name) + "/v1/MossoCloudFS_" + tenant})
		}
	}
	return []any{
		map[string]any{"name": "cloudImages", "type": "image", "endpoints": imgs},
		map[string]any{"name": "cloudFiles", "type": "object-store", "endpoints": files},
		map[string]any{"name": "cloudIdentity", "type": "identity", "endpoints": ids},
	}
}

func tenantView(id string) map[string]any {
	return map[string]any{"id": id, "name": id, "enabled": true, "description": ""}
}

// listTenants answers GET /v2.0/tenants: the caller's own account only, as for a user.
func (e *Emulator) listTenants(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"tenants": []any{tenantView(caller(r))}, "tenants_links": []any{}})
}

// getTenant answers GET /v2.0/tenants/{id}: the caller's own account; any other is for
// administrators (403), which is how a client learns to take another account's id as given.
func (e *Emulator) getTenant(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != caller(r) {
		writeJSON(w, 403, map[string]any{"forbidden": map[string]any{"code": 403,
			"message": "Not Authorized to read tenant " + id}})
		return
	}
	writeJSON(w, 200, map[string]any{"tenant": tenantView(caller(r))})
}
