package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/events"
)

// TestResultRowsShowTheNewImages: each shape of result shows what the run made as rows.
func TestResultRowsShowTheNewImages(t *testing.T) {
	cases := []struct{ result, want string }{
		{`{"migration_id":"m","targets":[{"region":"HKG","status":"succeeded","image_id":"i-1","path":"staged"},` +
			`{"region":"SYD","status":"failed","error":"quota"}]}`,
			"image HKG=i-1 (succeeded, staged)|image SYD=- (failed, quota)"},
		{`{"family":"web","regions":[{"region":"IAD","status":"distributed","image_id":"i-2",` +
			`"members":[{"member":"100002","status":"accepted"}]}]}`,
			"image IAD=i-2 (distributed)|member 100002=IAD accepted"},
		{`{"image_id":"i-3","members":[{"member":"100002","status":"expired"}]}`, "member 100002=expired"},
		{`{"decision":"rejected","reason":"not on the list"}`, "decision=rejected (not on the list)"},
		{`{"total":3,"succeeded":2,"failed":1,"failures":[{"image_id":"s-3","error":"gone"}],` +
			`"made":[{"source_image_id":"s-1","images":{"LON":"l-1","IAD":"i-1"}}]}`,
			"images=2 succeeded, 1 failed of 3|failed s-3=gone|copies of s-1=IAD i-1, LON l-1"},
		{`{"something":"else"}`, ""},
	}
	for _, c := range cases {
		var v any
		if err := json.Unmarshal([]byte(c.result), &v); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range resultRows(v) {
			got = append(got, r[0]+"="+r[1])
		}
		if strings.Join(got, "|") != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.result, strings.Join(got, "|"), c.want)
		}
	}
}

// TestRunAddresses: a run is named by its id or by its page in the Temporal UI, never silently
// by a page of another namespace.
func TestRunAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"migrate-100001-DFW-abc": "migrate-100001-DFW-abc",
		"http://localhost:8233/namespaces/default/workflows/migrate-100001-DFW-abc/0b7e/history": "migrate-100001-DFW-abc",
		"http://localhost:8233/namespaces/default/workflows/share%2F100001":                      "share/100001",
	} {
		if got, err := workflowIDOf(in, "default"); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"http://localhost:8233/namespaces/tenant-b/workflows/x/y/history": `namespace "tenant-b"`,
		"http://localhost:8233/namespaces/default/schedules/nightly":      "not a run's address",
	} {
		if _, err := workflowIDOf(in, "default"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", in, err, want)
		}
	}
}

// TestMissingAccountSaysWhatIsMissing: a job without --tenant and without an account says which
// variables are missing, as list does (it said only "configure the cloud account").
func TestMissingAccountSaysWhatIsMissing(t *testing.T) {
	var out, errb bytes.Buffer
	a := newApp(config.Config{}, &out, &errb, false)
	code := a.run(context.Background(), []string{"migrate", "--image", "00000000-0000-4000-8000-000000000001",
		"--from", "DFW", "--to", "IAD"})
	if code != exitUsage || !strings.Contains(errb.String(), "set --tenant, or configure the cloud account") ||
		!strings.Contains(errb.String(), "IMAGEFLOW_CLOUD_USERNAME is required") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// TestHelpSaysEachDefaultOnce: -h shows a default once, never "(default 0s)" for an unset span
// nor a second "(default 72h0m0s)" after the text's own.
func TestHelpSaysEachDefaultOnce(t *testing.T) {
	twice := regexp.MustCompile(`\(default [^)]*\)[^\n]*\(default `)
	for _, cmd := range []string{"migrate", "share", "distribute", "bulk-migrate", "prune", "accept", "status", "wait"} {
		var out, errb bytes.Buffer
		if code := newApp(config.Config{}, &out, &errb, false).run(context.Background(), []string{cmd, "-h"}); code != 0 {
			t.Fatalf("%s -h: exit %d", cmd, code)
		}
		help := errb.String()
		if strings.Contains(help, "(default 0s)") || twice.MatchString(help) {
			t.Errorf("%s -h:\n%s", cmd, help)
		}
		if cmd == "prune" && strings.Contains(help, "-via") {
			t.Errorf("prune -h offers --via, which it cannot take:\n%s", help)
		}
	}
}

// TestUnreadCommandsAreSeen: a raw publish with a mistyped tenant is stored and never read; the
// operator's `unread` names it, and not the accounts whose workers read theirs (issue 43).
func TestUnreadCommandsAreSeen(t *testing.T) {
	h := setup(t)
	nc, err := nats.Connect(h.env.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := js.Publish(context.Background(), "imageflow.cmd.10001.migrate", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	var list []events.UnreadCommands
	h.jsonOut(&list, "unread")
	if len(list) != 1 || list[0].Tenant != "10001" || list[0].Subjects["imageflow.cmd.10001.migrate"] != 2 {
		t.Fatalf("unread: %+v", list)
	}
	code, out, _ := h.run("unread")
	if code != 0 || !regexp.MustCompile(`10001 +imageflow.cmd.10001.migrate +2`).MatchString(out) {
		t.Fatalf("unread table: %d\n%s", code, out)
	}
}

// TestETANotes: an ETA gone by says "passed"; during a wait it says it is on hold, not passed
// (issue 40: a waiting job's ETA read as a broken promise); one ahead says nothing more.
func TestETANotes(t *testing.T) {
	past, ahead := time.Now().Add(-time.Minute).UTC(), time.Now().Add(time.Hour).UTC()
	for _, c := range []struct {
		step any
		want string
	}{
		{map[string]any{"step": "migrating", "eta": past.Format(time.RFC3339)}, ", passed)"},
		{map[string]any{"step": "migrating", "eta": past.Format(time.RFC3339),
			"waiting": map[string]any{"step": "PollTask"}}, ", on hold: waiting out a fault)"},
		{map[string]any{"step": "migrating", "eta": ahead.Format(time.RFC3339)}, ahead.Format("15:04:05") + " UTC)"},
	} {
		if got := stepText(c.step); !strings.Contains(got, c.want) {
			t.Errorf("%v: %q, want it to say %q", c.step, got, c.want)
		}
	}
}
