package identity

import (
	"github.com/imageflow/imageflow/emulator/internal/core"
	"net/http"
	"strings"
	"time"
)

// Keystone v3 beside Rackspace's Identity v2.0, as a private OpenStack cloud offers it: password
// (user by name in the Default domain, or by id), application credential and token methods, a
// project scope, and the catalog in v3 form. Projects are the accounts: id and name are the
// tenant id (the username is accepted as the name too). An account's application credential is
// "<username>-appcred" with its API key as the secret.

type authV3Request struct {
	Auth *struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User v3User `json:"user"`
			} `json:"password"`
			AppCred *struct {
				ID     string `json:"id"`
				Secret string `json:"secret"`
			} `json:"application_credential"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope *struct {
			Project *struct {
				ID     string    `json:"id"`
				Name   string    `json:"name"`
				Domain *v3Domain `json:"domain"`
			} `json:"project"`
		} `json:"scope"`
	} `json:"auth"`
}

type v3User struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Password string    `json:"password"`
	Domain   *v3Domain `json:"domain"`
}

type v3Domain struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// defaultDomain is the only domain: Keystone's "default" (id) / "Default" (name).
func (d *v3Domain) isDefault() bool {
	return d == nil || strings.EqualFold(d.ID, "default") || strings.EqualFold(d.Name, "default")
}

// createTokenV3 serves POST /v3/auth/tokens: 201 with X-Subject-Token.
func (s *Service) createTokenV3(w http.ResponseWriter, r *http.Request) {
	var req authV3Request
	if !core.ReadJSON(w, r, &req) {
		return
	}
	if req.Auth == nil || len(req.Auth.Identity.Methods) != 1 {
		core.Fail(
			w,
			400,
			"Invalid request: auth.identity needs exactly one method (password, application_credential or token).",
		)
		return
	}
	acct, ok, msg := s.v3Identity(req)
	if msg != "" {
		core.Fail(w, 400, "Invalid request: %s", msg)
		return
	}
	if ok && req.Auth.Scope != nil && req.Auth.Scope.Project != nil {
		p := req.Auth.Scope.Project
		name := p.ID + p.Name
		ok = p.Domain.isDefault() && (name == acct.Tenant || (p.ID == "" && p.Name == acct.Username))
	}
	if !ok {
		core.Fail(w, 401, "The request you have made requires authentication.")
		return
	}
	issued := time.Now().UTC()
	id, expires := s.issue(acct.Tenant, issued)
	domain := map[string]any{"id": "default", "name": "Default"}
	w.Header().Set("X-Subject-Token", id)
	core.WriteJSON(w, 201, map[string]any{"token": map[string]any{
		"methods": req.Auth.Identity.Methods, "issued_at": issued.Format(time.RFC3339Nano),
		"expires_at": expires.Format(time.RFC3339Nano),
		"user":       map[string]any{"id": "user-" + acct.Tenant, "name": acct.Username, "domain": domain},
		"project":    map[string]any{"id": acct.Tenant, "name": acct.Tenant, "domain": domain},
		"roles":      []any{map[string]any{"id": "member", "name": "member"}},
		"catalog":    s.catalogV3(acct.Tenant, r.Host),
	}})
}

// v3Identity checks the one method given; msg is set when the request is malformed.
func (s *Service) v3Identity(req authV3Request) (acct Account, ok bool, msg string) {
	id := req.Auth.Identity
	switch id.Methods[0] {
	case "password":
		if id.Password == nil {
			return acct, false, "method password needs auth.identity.password"
		}
		u := id.Password.User
		for _, a := range s.cfg.Accounts {
			if (u.ID == "user-"+a.Tenant || (u.ID == "" && u.Name == a.Username && u.Domain.isDefault())) &&
				secretEqual(u.Password, a.Password) {
				return a, true, ""
			}
		}
	case "application_credential":
		if id.AppCred == nil {
			return acct, false, "method application_credential needs auth.identity.application_credential"
		}
		for _, a := range s.cfg.Accounts {
			if id.AppCred.ID == a.Username+"-appcred" && secretEqual(id.AppCred.Secret, a.APIKey) {
				return a, true, ""
			}
		}
	case "token":
		if id.Token == nil {
			return acct, false, "method token needs auth.identity.token"
		}
		if t := s.valid(id.Token.ID); t != nil {
			for _, a := range s.cfg.Accounts {
				if a.Tenant == t.Tenant {
					return a, true, ""
				}
			}
		}
	default:
		return acct, false, "unknown method " + id.Methods[0]
	}
	return acct, false, ""
}

// catalogV3 is the v2 catalog in v3 form: one endpoint per region and interface.
func (s *Service) catalogV3(tenant, host string) []any {
	var out []any
	for _, svc := range s.catalog(tenant, host) {
		s := svc.(map[string]any)
		var eps []any
		for _, ep := range s["endpoints"].([]any) {
			m := ep.(map[string]any)
			for _, iface := range []string{"public", "internal"} {
				url := m[iface+"URL"].(string)
				if s["type"] == "identity" {
					url = strings.TrimSuffix(url, "/v2.0") + "/v3"
				}
				eps = append(eps, map[string]any{"id": core.StableID(url + iface), "interface": iface,
					"region": m["region"], "region_id": m["region"], "url": url})
			}
		}
		out = append(out, map[string]any{"id": core.StableID(s["name"].(string)), "type": s["type"], "name": s["name"],
			"endpoints": eps})
	}
	return out
}

// identityVersionV3 is Keystone's v3 version document (keystoneauth discovers it).
func (s *Service) identityVersionV3(w http.ResponseWriter, r *http.Request) {
	core.WriteJSON(w, 200, map[string]any{"version": map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links": []any{map[string]any{"rel": "self", "href": "http://" + r.Host + "/v3/"}},
		"media-types": []any{
			map[string]any{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"},
		},
	}})
}
