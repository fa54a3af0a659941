package cloud

import (
	"context"
	"strings"
	"testing"
)

// TestKeystoneV3: every v3 method authenticates against the emulator's Keystone, scoped to the
// account's project, and the regions come from the v3 catalog; wrong secrets, domains and
// projects are refused with the identity service's answer, never a secret.
func TestKeystoneV3(t *testing.T) {
	e := startEmu(t)
	ctx := context.Background()
	v3 := strings.TrimSuffix(e.IdentityURL(), "v2.0/") + "v3"
	good := []Credentials{
		{IdentityURL: v3, Username: "demo", Password: "demo-password", ProjectName: "100001"},
		{IdentityURL: v3, Username: "demo", Password: "demo-password", UserDomainName: "Default", ProjectID: "100001"},
		{IdentityURL: v3 + "/", Username: "demo", Password: "demo-password"}, // the user's default project
		{IdentityURL: v3, ApplicationCredentialID: "demo-appcred", ApplicationCredentialSecret: "demo-api-key"},
	}
	for _, cr := range good {
		c, err := New(ctx, cr, Options{})
		if err != nil {
			t.Fatalf("%v: %v", cr, err)
		}
		if c.Tenant() != "100001" || strings.Join(c.Regions(), ",") != "DFW,HKG,IAD,LON,ORD,SYD" {
			t.Fatalf("%v: tenant %s, regions %v", cr, c.Tenant(), c.Regions())
		}
		if _, err := c.ListImages(ctx, "IAD", ImageFilter{}); err != nil {
			t.Fatalf("%v: a v3 token does not reach Glance: %v", cr, err)
		}
		tok := c.provider.Token()
		byToken, err := New(ctx, Credentials{IdentityURL: v3, Token: tok, ProjectID: "100001"}, Options{})
		if err != nil || byToken.Tenant() != "100001" {
			t.Fatalf("token method: %v", err)
		}
		if _, err := c.GetImage(ctx, "RegionOne", "x"); err == nil ||
			!strings.Contains(
				err.Error(),
				`region "RegionOne" is not in account 100001's service catalog (it lists DFW`,
			) {
			t.Fatalf("unknown region: %v", err)
		}
	}
	bad := []Credentials{
		{IdentityURL: v3, Username: "demo", Password: "nope", ProjectName: "100001"},
		{IdentityURL: v3, Username: "demo", Password: "demo-password", UserDomainName: "Other"},
		{IdentityURL: v3, Username: "demo", Password: "demo-password", ProjectName: "100002"},
		{IdentityURL: v3, ApplicationCredentialID: "demo-appcred", ApplicationCredentialSecret: "wrong"},
		{IdentityURL: v3, Token: "forged", ProjectID: "100001"},
	}
	for _, cr := range bad {
		_, err := New(ctx, cr, Options{})
		if err == nil || !strings.Contains(err.Error(), "rejected the credentials") ||
			strings.Contains(err.Error(), "demo-password") || strings.Contains(err.Error(), "wrong") {
			t.Fatalf("%v: %v", cr, err)
		}
	}
	if _, err := New(ctx, Credentials{IdentityURL: v3, Username: "demo"}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "Keystone v3 need a username and password") {
		t.Fatalf("incomplete: %v", err)
	}
}
