package config

import (
	"fmt"
	"strings"
)

// namespacePrefix starts every tenant's Temporal namespace when tenants are kept apart: each
// tenant's runs live in "imageflow-<tenant>", which only its API key opens.
const namespacePrefix = "imageflow-"

// TenantNamespace is tenant's Temporal namespace.
func TenantNamespace(tenant string) string { return namespacePrefix + tenant }

// NamespaceTenant is the tenant whose namespace ns is, or "" for a namespace that is no tenant's
// (the single-tenant "default").
func NamespaceTenant(ns string) string {
	t, ok := strings.CutPrefix(ns, namespacePrefix)
	if !ok || t == "" || strings.ContainsAny(t, ".-") {
		return ""
	}
	return t
}

// natsUserTenant is the tenant a NATS user of imageflow's accounts acts for ("sender-100001":
// "100001"), or "" for another user (admin, a creds file's).
func natsUserTenant(user string) string {
	for _, role := range []string{"worker-", "sender-"} {
		if t, ok := strings.CutPrefix(user, role); ok {
			return t
		}
	}
	return ""
}

// CredentialTenants are the tenants this configuration's credentials are bound to, by what
// names them: the Temporal namespace (its key opens only that one) and the NATS user (its account
// is that tenant's). The cloud account's tenant is found by logging in, so the caller adds it.
func (c Config) CredentialTenants() map[string]string {
	m := map[string]string{}
	if t := NamespaceTenant(c.Temporal.Namespace); t != "" {
		m["IMAGEFLOW_TEMPORAL_NAMESPACE "+c.Temporal.Namespace] = t
	}
	if t := natsUserTenant(c.NATS.User); t != "" && !c.NATS.Disabled {
		m["IMAGEFLOW_NATS_USER "+c.NATS.User] = t
	}
	return m
}

// CheckTenant says whether tenant is the one every credential that names a tenant is bound to:
// a starter or a worker may act only for the account its credentials belong to.
func (c Config) CheckTenant(tenant string) error {
	for what, t := range c.CredentialTenants() {
		if t != tenant {
			return fmt.Errorf("account %s is not the one %s belongs to (%s): credentials act only for their own "+
				"account", tenant, what, t)
		}
	}
	return nil
}
