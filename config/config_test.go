package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func setEnv(t *testing.T, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

func TestLoadDefaultsAndValues(t *testing.T) {
	setEnv(t, "IMAGEFLOW_CLOUD_USERNAME", "demo", "IMAGEFLOW_CLOUD_API_KEY", "sekret-key",
		"IMAGEFLOW_WORKER_TRUSTED_PRODUCERS", "100001,100003", "IMAGEFLOW_NATS_ACK_WAIT", "45s")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Temporal.Address != "localhost:7233" || c.Temporal.TaskQueue != "imageflow" || c.NATS.AckWait != 45*time.Second ||
		c.Cloud.APIKey.Value() != "sekret-key" ||
		len(c.Worker.TrustedProducers) != 2 ||
		c.Worker.CopySegmentSize != 1<<30 ||
		c.Worker.CopyParallelism != 0 {
		t.Fatalf("%+v", c)
	}
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "sekret-key") {
			t.Fatalf("config prints its secret: %s", s)
		}
	}
}

func TestLoadRejectsBadInput(t *testing.T) {
	cases := []struct {
		env  []string
		want string
	}{
		{
			[]string{"IMAGEFLOW_CLOUD_USERNAME", "demo"},
			"IMAGEFLOW_CLOUD_API_KEY or IMAGEFLOW_CLOUD_PASSWORD is required",
		},
		{[]string{"IMAGEFLOW_CLOUD_API_KEY", "k"}, "IMAGEFLOW_CLOUD_USERNAME is required"},
		{
			[]string{
				"IMAGEFLOW_CLOUD_USERNAME",
				"demo",
				"IMAGEFLOW_CLOUD_API_KEY",
				"k",
				"IMAGEFLOW_NATS_MAX_DELIVER",
				"many",
			},
			`IMAGEFLOW_NATS_MAX_DELIVER="many" is not a valid int`,
		},
		{
			[]string{
				"IMAGEFLOW_CLOUD_USERNAME",
				"demo",
				"IMAGEFLOW_CLOUD_API_KEY",
				"k",
				"IMAGEFLOW_WORKER_TASK_POLL_INTERVAL",
				"soon",
			},
			"IMAGEFLOW_WORKER_TASK_POLL_INTERVAL",
		},
		{
			[]string{
				"IMAGEFLOW_CLOUD_USERNAME",
				"demo",
				"IMAGEFLOW_CLOUD_API_KEY",
				"k",
				"IMAGEFLOW_TEMPORAL_ADRESS",
				"x",
			},
			"unknown variable IMAGEFLOW_TEMPORAL_ADRESS (did you mean IMAGEFLOW_TEMPORAL_ADDRESS?)",
		},
		{
			[]string{
				"IMAGEFLOW_CLOUD_USERNAME",
				"demo",
				"IMAGEFLOW_CLOUD_API_KEY",
				"k",
				"IMAGEFLOW_WORKER_LOG_LEVEL",
				"loud",
			},
			"IMAGEFLOW_WORKER_LOG_LEVEL",
		},
		{
			[]string{
				"IMAGEFLOW_CLOUD_USERNAME",
				"demo",
				"IMAGEFLOW_CLOUD_API_KEY",
				"k",
				"IMAGEFLOW_TEMPORAL_TLS_CERT",
				"c.pem",
			},
			"go together",
		},
	}
	// Issue 43: a URL without its scheme is named at load, not met as "unsupported protocol scheme"
	// at the first call; the OpenStack clients' variables are said to be unread, not ignored.
	cases = append(cases, struct {
		env  []string
		want string
	}{[]string{"IMAGEFLOW_CLOUD_USERNAME", "demo", "IMAGEFLOW_CLOUD_API_KEY", "k",
		"IMAGEFLOW_CLOUD_IDENTITY_URL", "localhost:8900/v2.0/"},
		`IMAGEFLOW_CLOUD_IDENTITY_URL="localhost:8900/v2.0/" is not an http:// or https:// URL`,
	}, struct {
		env  []string
		want string
	}{[]string{"OS_AUTH_URL", "http://keystone:5000/v3", "OS_PASSWORD", "secret"},
		"OS_AUTH_URL, OS_PASSWORD set, but imageflow reads only OS_CLOUD",
	})
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			setEnv(t, c.env...)
			if _, err := Load(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestOSCloudIsRead: OS_CLOUD names the clouds.yaml cloud, as for the openstack CLI, unless
// an imageflow account variable says otherwise.
func TestOSCloudIsRead(t *testing.T) {
	setEnv(t, "OS_CLOUD", "ops")
	if c, err := LoadWithoutAccount(); err != nil || c.Cloud.Name != "ops" {
		t.Fatalf("OS_CLOUD alone: %q %v", c.Cloud.Name, err)
	}
	setEnv(t, "IMAGEFLOW_CLOUD_USERNAME", "demo")
	if c, err := LoadWithoutAccount(); err != nil || c.Cloud.Name != "" {
		t.Fatalf("OS_CLOUD beside IMAGEFLOW_CLOUD_USERNAME: %q %v (the imageflow variable wins)", c.Cloud.Name, err)
	}
}

// TestNoUnprefixedFallback guards the envconfig trap: a bare USERNAME must not fill the config.
func TestNoUnprefixedFallback(t *testing.T) {
	setEnv(t, "USERNAME", "intruder", "API_KEY", "x", "ADDRESS", "evil:1")
	c, err := Load()
	if err == nil || c.Cloud.Username != "" || c.Temporal.Address != "localhost:7233" {
		t.Fatalf("unprefixed variables leaked in: %+v %v", c, err)
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	var b strings.Builder
	Usage(&b)
	for _, v := range Vars() {
		if !strings.Contains(b.String(), v.Name) || v.Desc == "" {
			t.Fatalf("%s missing from usage or undocumented", v.Name)
		}
	}
	if len(Vars()) < 30 {
		t.Fatalf("only %d variables", len(Vars()))
	}
}

// TestReadmeConfigTable keeps the README's configuration table in step with the specs.
func TestReadmeConfigTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), Markdown()) {
		t.Fatalf("README.md's configuration table is out of date; replace it with:\n%s", Markdown())
	}
}

// TestTestSwitchIsNotASetting: a worker started from a shell that runs the long tests inherits
// IMAGEFLOW_LONG_TESTS and must still start; a misspelt switch is still refused.
func TestTestSwitchIsNotASetting(t *testing.T) {
	setEnv(t, "IMAGEFLOW_CLOUD_USERNAME", "demo", "IMAGEFLOW_CLOUD_API_KEY", "k", "IMAGEFLOW_LONG_TESTS", "1")
	if _, err := Load(); err != nil {
		t.Fatalf("the long-test switch stops the worker: %v", err)
	}
	setEnv(t, "IMAGEFLOW_LONG_TEST", "1")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "IMAGEFLOW_LONG_TEST ") {
		t.Fatalf("a misspelt switch was accepted: %v", err)
	}
}

// TestEnvFileSharedWithNATSServer: one env file may hold nats-server's password variables
// (NATS_PASSWORD_*, read by its accounts configuration) and the worker's; the worker used to
// stop on them as unknown IMAGEFLOW_ variables (issue 39).
func TestEnvFileSharedWithNATSServer(t *testing.T) {
	setEnv(t, "IMAGEFLOW_CLOUD_USERNAME", "demo", "IMAGEFLOW_CLOUD_API_KEY", "k",
		"IMAGEFLOW_NATS_USER", "worker-100001", "IMAGEFLOW_NATS_PASSWORD", "pw",
		"NATS_PASSWORD_ADMIN", "a", "NATS_PASSWORD_WORKER_100001", "pw", "NATS_PASSWORD_SENDER_100001", "s")
	c, err := Load()
	if err != nil {
		t.Fatalf("a worker beside nats-server's variables: %v", err)
	}
	if err := c.CheckTenant("100001"); err != nil {
		t.Errorf("worker-100001 for account 100001: %v", err)
	}
	if err := c.CheckTenant("100002"); err == nil || !strings.Contains(err.Error(), "IMAGEFLOW_NATS_USER worker-100001") {
		t.Errorf("worker-100001 for account 100002: %v", err)
	}
}
