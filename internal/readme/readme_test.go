// Package readme tests the README's shell examples: the blocks marked
// "<!-- readme-test: emulator -->" run, as written, against a fresh emulator, so a reader who
// copies them meets no surprise.
package readme

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
)

// Markers of the README's tested blocks: against a bare emulator, or against the whole stack.
const (
	marker         = "<!-- readme-test: emulator -->"
	devstackMarker = "<!-- readme-test: devstack -->"
)

// blocks returns the fenced sh blocks that follow the marker.
func blocks(t *testing.T, marker string) []string {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	parts := strings.Split(string(b), marker)
	for _, p := range parts[1:] {
		p = strings.TrimLeft(p, "\n")
		if !strings.HasPrefix(p, "```sh\n") {
			t.Fatalf("a %s marker is not followed by a ```sh block", marker)
		}
		body, _, ok := strings.Cut(strings.TrimPrefix(p, "```sh\n"), "\n```")
		if !ok {
			t.Fatal("an unterminated block")
		}
		out = append(out, body)
	}
	return out
}

// devstackPorts are the README's addresses: identity on 8900, regions on 8901 to 8906.
var devstackPorts = regexp.MustCompile(`(localhost|127\.0\.0\.1):(890[0-6])`)

// retarget points the README's fixed ports at the test's emulator.
func retarget(block string, e *emulator.Emulator) string {
	hosts := map[string]string{"8900": e.BaseURL()}
	for i, r := range emulator.Regions {
		hosts[fmt.Sprint(8901+i)] = e.RegionURL(r)
	}
	return devstackPorts.ReplaceAllStringFunc(block, func(m string) string {
		port := devstackPorts.FindStringSubmatch(m)[2]
		return strings.TrimPrefix(hosts[port], "http://")
	})
}

func TestReadmeExamples(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README examples need %s on PATH", tool)
		}
	}
	bs := blocks(t, marker)
	if len(bs) < 2 {
		t.Fatalf("%d marked blocks in README.md, want the fault examples and the quickstart", len(bs))
	}
	e, err := emulator.New(emulator.Config{TaskDuration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i, b := range bs {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", retarget(b, e))
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README block %d failed: %v\n%s\n--- block ---\n%s", i+1, err, out, b)
		}
		if strings.Contains(string(out), `"code": 4`) || strings.Contains(string(out), `"code":4`) {
			t.Fatalf("README block %d got an error answer:\n%s", i+1, out)
		}
	}
	// What the blocks did is in the cloud: the fault examples were undone (a later block worked
	// with a fresh token), and the quickstart's patch, export and member happened.
	if left := e.Faults(); len(left) != 0 {
		t.Errorf("faults left after the README's undo steps: %+v", left)
	}
	c, err := cloud.New(context.Background(), cloud.Credentials{IdentityURL: e.IdentityURL(), Username: "demo",
		APIKey: "demo-api-key"}, cloud.Options{})
	if err != nil {
		t.Fatalf("after the README's token experiments a new token does not work: %v", err)
	}
	imgs, err := c.ListImages(context.Background(), "DFW", cloud.ImageFilter{Name: "demo-web-01"})
	if err != nil || len(imgs) != 1 || imgs[0].Properties["someAttribute"] != "someValue" {
		t.Fatalf("the quickstart's PATCH did not land: %+v %v", imgs, err)
	}
	if ms, err := c.ListMembers(context.Background(), "DFW", imgs[0].ID); err != nil || len(ms) != 1 {
		t.Fatalf("the quickstart's member: %+v %v", ms, err)
	}
	if ts, err := c.ListTasks(context.Background(), "DFW"); err != nil || len(ts) != 1 || ts[0].Type != "export" {
		t.Fatalf("the quickstart's export task: %+v %v", ts, err)
	}
}
