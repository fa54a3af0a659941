package config

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// readmeServices parses the README's docker-compose table: service, ports, volume.
func readmeServices(t *testing.T) map[string][2][]string {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(b)
	i := strings.Index(section, "## Deploy with docker-compose")
	if i < 0 {
		t.Fatal("README has no \"## Deploy with docker-compose\" section")
	}
	section = section[i:]
	out := map[string][2][]string{}
	row := regexp.MustCompile("^\\| `([a-z-]+)` \\|[^|]*\\|([^|]*)\\|([^|]*)\\|")
	tick := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(section, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var ports, vols []string
		for _, p := range tick.FindAllStringSubmatch(m[2], -1) {
			ports = append(ports, p[1])
		}
		for _, v := range tick.FindAllStringSubmatch(m[3], -1) {
			vols = append(vols, v[1])
		}
		out[m[1]] = [2][]string{ports, vols}
	}
	if len(out) < 7 {
		t.Fatalf("README's compose table lists %d services", len(out))
	}
	return out
}

// TestDockerCompose loads docker-compose.yml with the compose-spec loader and checks that every
// service, port and volume the README promises is there, and that every IMAGEFLOW_ variable the
// workers get is one the worker knows.
func TestDockerCompose(t *testing.T) {
	project := loadCompose(t)
	known := map[string]bool{}
	for _, v := range Vars() {
		known[v.Name] = true
	}
	for name, want := range readmeServices(t) {
		svc, ok := project.Services[name]
		if !ok {
			t.Errorf("README promises service %s; docker-compose.yml lacks it", name)
			continue
		}
		for _, p := range want[0] {
			if !publishes(svc, p) {
				t.Errorf("%s does not publish port %s", name, p)
			}
		}
		for _, v := range want[1] {
			if !mounts(svc, v) {
				t.Errorf("%s does not mount volume %s", name, v)
			}
			if _, ok := project.Volumes[v]; !ok {
				t.Errorf("volume %s is not declared", v)
			}
		}
	}
	for _, name := range []string{"worker", "partner-worker"} {
		svc := project.Services[name]
		for _, must := range []string{"IMAGEFLOW_TEMPORAL_ADDRESS", "IMAGEFLOW_NATS_URL", "IMAGEFLOW_CLOUD_IDENTITY_URL", "IMAGEFLOW_CLOUD_USERNAME", "IMAGEFLOW_CLOUD_API_KEY", "IMAGEFLOW_TEMPORAL_TASK_QUEUE"} {
			if v := svc.Environment[must]; v == nil || *v == "" {
				t.Errorf("%s: %s is not set", name, must)
			}
		}
		for k := range svc.Environment {
			if strings.HasPrefix(k, "IMAGEFLOW_") && !known[k] {
				t.Errorf("%s sets %s, which the worker does not know", name, k)
			}
		}
		if svc.Build == nil {
			t.Errorf("%s is not built from the repository's Dockerfile", name)
		}
	}
	if q1, q2 := *project.Services["worker"].Environment["IMAGEFLOW_TEMPORAL_TASK_QUEUE"], *project.Services["partner-worker"].Environment["IMAGEFLOW_TEMPORAL_TASK_QUEUE"]; q1 == q2 {
		t.Errorf("both workers serve task queue %s: one account per queue", q1)
	}
	if _, err := os.Stat(filepath.Join("..", "Dockerfile")); err != nil {
		t.Error("no Dockerfile")
	}
}

func publishes(svc types.ServiceConfig, want string) bool {
	for _, p := range svc.Ports {
		if p.Published == want || strings.HasPrefix(want, p.Published+"-") || strings.HasPrefix(p.Published, want) {
			return true
		}
	}
	return false
}

func mounts(svc types.ServiceConfig, vol string) bool {
	for _, v := range svc.Volumes {
		if v.Source == vol {
			return true
		}
	}
	return false
}

// TestComposeVolumesWritable: every named volume a service built from our Dockerfile mounts is a
// directory the image creates, owned by the user the image runs as. Docker seeds a new named
// volume from the image's directory at the mount point, so an image that lacks the directory
// hands the nonroot user a root-owned volume it cannot write.
func TestComposeVolumesWritable(t *testing.T) {
	project := loadCompose(t)
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	user, owned := dockerfileOwnership(string(b))
	if user == "" || user == "root" || user == "0" {
		t.Fatalf("the Dockerfile's final stage runs as %q; want a nonroot user", user)
	}
	checked := 0
	for name, svc := range project.Services {
		if svc.Build == nil {
			continue
		}
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			checked++
			if owner, ok := owned[v.Target]; !ok || owner != user {
				t.Errorf("%s mounts volume %s at %s, which the image does not create owned by %s (owner %q)",
					name, v.Source, v.Target, user, owner)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no service built from the Dockerfile mounts a volume; the check checked nothing")
	}
}

// dockerfileOwnership reads the final stage's USER and the directories it copies in with
// --chown, keyed by destination.
func dockerfileOwnership(dockerfile string) (user string, owned map[string]string) {
	owned = map[string]string{}
	chown := regexp.MustCompile(`^COPY\s+.*--chown=(\S+)\s+\S+\s+(\S+)\s*$`)
	for _, line := range strings.Split(dockerfile, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "FROM "):
			user, owned = "root", map[string]string{}
		case strings.HasPrefix(line, "USER "):
			user = strings.TrimSpace(strings.TrimPrefix(line, "USER "))
		default:
			if m := chown.FindStringSubmatch(line); m != nil {
				owned[strings.TrimSuffix(m[2], "/")] = m[1]
			}
		}
	}
	return user, owned
}

// loadCompose loads docker-compose.yml with the compose-spec loader, as docker compose would.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	path, _ := filepath.Abs(filepath.Join("..", "docker-compose.yml"))
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

// TestComposeKeepsTenantsApartInTemporal: compose runs the tenants-apart Temporal (a namespace
// per tenant, a key each, from the environment) and each worker in its own tenant's namespace with
// its own tenant's key; the UI, the operator's, talks to the internal frontend, which is not
// published.
func TestComposeKeepsTenantsApartInTemporal(t *testing.T) {
	project := loadCompose(t)
	tsvc := project.Services["temporal"]
	if len(tsvc.Command) != 3 || tsvc.Command[0] != "/temporal-server" || tsvc.Command[2] != "100001,100002" ||
		tsvc.Build == nil {
		t.Fatalf("the temporal service runs %v", tsvc.Command)
	}
	keys := map[string]bool{}
	for _, who := range []string{"ADMIN", "100001", "100002"} {
		v := tsvc.Environment["TEMPORAL_API_KEY_"+who]
		if v == nil || *v == "" || keys[*v] {
			t.Errorf("TEMPORAL_API_KEY_%s: %v (every key set, none shared)", who, v)
			continue
		}
		keys[*v] = true
	}
	for name, tenant := range map[string]string{"worker": "100001", "partner-worker": "100002"} {
		env := project.Services[name].Environment
		if ns := env["IMAGEFLOW_TEMPORAL_NAMESPACE"]; ns == nil || *ns != TenantNamespace(tenant) {
			t.Errorf("%s runs in namespace %v, not its tenant's", name, ns)
		}
		key := env["IMAGEFLOW_TEMPORAL_API_KEY"]
		if want := tsvc.Environment["TEMPORAL_API_KEY_"+tenant]; key == nil || want == nil || *key != *want {
			t.Errorf("%s's key is not tenant %s's", name, tenant)
		}
	}
	ui := project.Services["temporal-ui"]
	if a := ui.Environment["TEMPORAL_ADDRESS"]; a == nil || *a != "temporal:7236" {
		t.Errorf("the UI talks to %v, not the internal frontend", a)
	}
	for _, p := range tsvc.Ports {
		if p.Target == 7236 {
			t.Error("the internal frontend is published")
		}
	}
}
