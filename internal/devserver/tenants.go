package devserver

import (
	"crypto/subtle"
	"errors"
	"strings"

	"go.temporal.io/server/common/authorization"

	"github.com/imageflow/imageflow/config"
)

// Keys make the embedded server serve tenants apart: each tenant has its own namespace
// (NamespaceOf) and an API key that opens only that namespace; the admin key opens everything.
// With Keys the public frontend refuses every call without a key; the server's own worker
// service (schedules) and the operator's UI use an internal frontend that only listens on the
// server's host.
type Keys struct {
	// Admin is the operator's key: every namespace, and the cluster's calls.
	Admin string
	// Tenants maps each tenant to its key.
	Tenants map[string]string
}

// NamespaceOf is tenant's Temporal namespace: the only one its key opens.
func NamespaceOf(tenant string) string { return config.TenantNamespace(tenant) }

// errUnknownKey is a key that is no tenant's and not the admin's.
var errUnknownKey = errors.New("the API key is not one this server knows")

// keyClaims maps a caller's API key to what it may do: a claim mapper for Temporal's default
// authorizer, which then allows a namespace's calls only to its tenant (writer) and cluster calls
// (listing namespaces among them) only to the admin.
type keyClaims struct{ keys Keys }

// GetClaims reads "Bearer <key>" from the call. No key is no claim (the authorizer refuses all but
// health checks); a key it does not know is an error (the caller is told it is unauthenticated).
func (k keyClaims) GetClaims(info *authorization.AuthInfo) (*authorization.Claims, error) {
	key, ok := strings.CutPrefix(info.AuthToken, "Bearer ")
	if !ok || key == "" {
		return &authorization.Claims{}, nil
	}
	if same(key, k.keys.Admin) {
		return &authorization.Claims{Subject: "admin", System: authorization.RoleAdmin}, nil
	}
	for tenant, tk := range k.keys.Tenants {
		if same(key, tk) {
			return &authorization.Claims{Subject: "tenant-" + tenant,
				Namespaces: map[string]authorization.Role{NamespaceOf(tenant): authorization.RoleWriter}}, nil
		}
	}
	return nil, errUnknownKey
}

// same compares keys in constant time; an empty key is never a match.
func same(a, b string) bool {
	return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
