package events_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/imageflow/imageflow/events"
)

// composeTenants are docker-compose's two accounts, by the emulator user each worker acts as.
var composeTenants = map[string]string{"demo": "100001", "partner": "100002"}

// TestComposeRunsTheAccounts: docker-compose's NATS loads the accounts events.AccountsConfig writes
// (the file is its output, unchanged) and, started from that very configuration, takes the
// operator's step as each account's admin and a worker's start as each account's worker; each
// compose worker logs in as its own account's worker, after its account's setup service ran.
func TestComposeRunsTheAccounts(t *testing.T) {
	b, err := os.ReadFile("../deploy/nats/imageflow-accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	tenants := []string{"100001", "100002"}
	if string(b) != events.AccountsConfig(subjects, "IMAGEFLOW", tenants) {
		t.Fatal("deploy/nats/imageflow-accounts.conf is not events.AccountsConfig's for 100001 and 100002; " +
			"write it again")
	}
	project := loadComposeFile(t)
	natsSvc := project.Services["nats"]
	pw := map[string]string{events.AdminPasswordVar: "compose-admin-pw"}
	for _, tn := range tenants {
		for _, role := range []string{events.RoleWorker, events.RoleSender} {
			pw[events.PasswordVar(role, tn)] = "compose-" + role + "-" + tn + "-pw"
		}
	}
	for v, p := range pw {
		if natsSvc.Environment[v] == nil {
			t.Errorf("the nats service does not pass %s to nats-server", v)
		}
		t.Setenv(v, p)
	}
	for user, tn := range composeTenants {
		svc := project.Services[map[string]string{"demo": "worker", "partner": "partner-worker"}[user]]
		if u := svc.Environment["IMAGEFLOW_NATS_USER"]; u == nil || *u != events.UserName(events.RoleWorker, tn) {
			t.Errorf("the worker of %s logs in to NATS as %v", user, u)
		}
		setup := "nats-setup-" + tn
		if dep, ok := svc.DependsOn[setup]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("the worker of %s does not wait for %s", user, setup)
		}
		s := project.Services[setup]
		if u := s.Environment["IMAGEFLOW_NATS_USER"]; u == nil || *u != events.UserName(events.RoleAdmin, tn) ||
			len(s.Command) != 2 || s.Command[1] != "setup-stream" {
			t.Errorf("%s: user %v, command %v", setup, u, s.Command)
		}
	}
	url := serveComposeNATS(t)
	if err := events.SetUpAccounts(context.Background(), url, subjects, "IMAGEFLOW", 1, tenants,
		pw[events.AdminPasswordVar]); err != nil {
		t.Fatalf("the operator's step on compose's NATS: %v", err)
	}
	for _, tn := range tenants {
		nc, err := nats.Connect(url, nats.UserInfo(events.UserName(events.RoleWorker, tn),
			pw[events.PasswordVar(events.RoleWorker, tn)]), nats.CustomInboxPrefix(events.InboxPrefix(tn)))
		if err != nil {
			t.Fatal(err)
		}
		err = events.ProveWorker(context.Background(), nc, subjects, tn)
		nc.Close()
		if err != nil {
			t.Errorf("the worker of %s on compose's NATS: %v", tn, err)
		}
	}
}

// serveComposeNATS starts nats-server from deploy/nats/nats.conf, as the compose service does,
// storing in a temporary folder and listening on a free port.
func serveComposeNATS(t *testing.T) string {
	t.Helper()
	opts, err := natsserver.ProcessConfigFile("../deploy/nats/nats.conf")
	if err != nil {
		t.Fatalf("deploy/nats/nats.conf: %v", err)
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.StoreDir = "127.0.0.1", -1, 0, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("compose's NATS did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

func loadComposeFile(t *testing.T) *types.Project {
	t.Helper()
	path, _ := filepath.Abs("../docker-compose.yml")
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("imageflow", true) })
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return project
}
