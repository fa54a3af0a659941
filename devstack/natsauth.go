package main

import (
	"fmt"
	"os"
	"path/filepath"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/imageflow/imageflow/events"
)

// authFile is the accounts configuration devstack writes for --nats-auth, to read and to copy.
const authFile = "nats-auth.conf"

// devstackTenants are the emulator's demo accounts.
var devstackTenants = []string{"100001", "100002"}

// demoNATSPassword is the password a devstack NATS user has unless its variable is set: a demo
// credential, like the emulator's demo-api-key, and never one to use elsewhere.
func demoNATSPassword(role, tenant string) string { return role + "-" + tenant + "-demo-password" }

// authOptions writes the accounts of the demo tenants into dir and loads it as nats-server
// would, with each password from its variable (set here to the demo one if unset). The admin's
// demo password is "admin-devstack-demo-password".
func authOptions(dir string) (*natsserver.Options, error) {
	if os.Getenv(events.AdminPasswordVar) == "" {
		_ = os.Setenv(events.AdminPasswordVar, demoNATSPassword("admin", "devstack"))
	}
	for _, t := range devstackTenants {
		for _, role := range []string{events.RoleWorker, events.RoleSender} {
			if os.Getenv(events.PasswordVar(role, t)) == "" {
				_ = os.Setenv(events.PasswordVar(role, t), demoNATSPassword(role, t))
			}
		}
	}
	path := filepath.Join(dir, authFile)
	if err := os.WriteFile(path, []byte(events.AccountsConfig(subjects, "IMAGEFLOW", devstackTenants)),
		0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	opts, err := natsserver.ProcessConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return opts, nil
}
