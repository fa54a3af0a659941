package main

import (
	"strings"
	"testing"
)

// TestKeysFromEnv: every tenant needs its own key and the operator one; a key two tenants share
// (one would open the other's namespace) and a tenant id that is not one are refused by name.
func TestKeysFromEnv(t *testing.T) {
	env := map[string]string{"TEMPORAL_API_KEY_ADMIN": "a", "TEMPORAL_API_KEY_100001": "k1",
		"TEMPORAL_API_KEY_100002": "k2", "TEMPORAL_API_KEY_100003": "k1"}
	get := func(k string) string { return env[k] }
	k, err := keysFromEnv("100001, 100002", get)
	if err != nil || k.Admin != "a" || k.Tenants["100001"] != "k1" || k.Tenants["100002"] != "k2" {
		t.Fatalf("%+v %v", k, err)
	}
	for tenants, want := range map[string]string{
		"":               "--tenants is required",
		"100001,100004":  "TEMPORAL_API_KEY_100004 is not set",
		"100001,100003":  "TEMPORAL_API_KEY_100003 is another's key too",
		"100001,x.y":     "--tenants",
		"100001,0100002": "--tenants",
	} {
		if _, err := keysFromEnv(tenants, get); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--tenants %q: %v (want %q)", tenants, err, want)
		}
	}
	delete(env, "TEMPORAL_API_KEY_ADMIN")
	if _, err := keysFromEnv("100001", get); err == nil || !strings.Contains(err.Error(), "TEMPORAL_API_KEY_ADMIN") {
		t.Errorf("no admin key: %v", err)
	}
}
