package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/config"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

type harness struct {
	t   *testing.T
	env *testenv.Env
	cfg config.Config
}

func (h *harness) run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	a := newApp(h.cfg, &out, &errb, false)
	a.pollEvery = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := a.run(ctx, args)
	return code, out.String(), errb.String()
}

func setup(t *testing.T) *harness {
	env := testenv.New(t)
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	return harnessFor(t, env)
}

func harnessFor(t *testing.T, env *testenv.Env) *harness {
	return &harness{t: t, env: env, cfg: config.Config{
		Temporal: config.Temporal{
			Address:   env.TemporalAddr,
			Namespace: env.Namespace,
			TaskQueue: testenv.TaskQueue("demo"),
		},
		NATS:  config.NATS{URL: env.NATSURL, SubjectPrefix: "imageflow", Stream: "IMAGEFLOW"},
		Cloud: config.Cloud{IdentityURL: env.Emulator.IdentityURL(), Username: "demo", APIKey: "demo-api-key"},
	}}
}

func TestStarterCommands(t *testing.T) {
	h := setup(t)
	code, out, errs := h.run("list", "--tag", "web", "--json") // the account's default region, DFW
	var imgs []cloud.Image
	if code != 0 || json.Unmarshal([]byte(out), &imgs) != nil || len(imgs) != 1 || imgs[0].Name != "demo-web-01" {
		t.Fatalf("list: %d %s %s", code, out, errs)
	}
	web := imgs[0].ID
	// A member status asks about images shared with the account: the public images Glance lists
	// beside them are not pending shares (issue 43).
	var public, pending []cloud.Image
	h.jsonOut(&public, "list", "--region", "DFW", "--visibility", "public")
	h.jsonOut(&pending, "list", "--region", "DFW", "--member-status", "pending")
	if len(public) == 0 || len(pending) != 0 {
		t.Fatalf("%d public images, %d listed as pending shares (want some, and none)", len(public), len(pending))
	}

	code, out, errs = h.run("migrate", "--image", web, "--from", "DFW", "--to", "IAD", "--wait")
	if code != 0 || !strings.Contains(out, `"status": "succeeded"`) || !strings.Contains(errs, "MigrateImage") {
		t.Fatalf("migrate: %d\n%s\n%s", code, out, errs)
	}
	var res struct {
		WorkflowID string `json:"workflow_id"`
		Result     struct {
			Targets []struct {
				ImageID string `json:"image_id"`
			} `json:"targets"`
		} `json:"result"`
	}
	_ = json.Unmarshal([]byte(out), &res)
	// The same request joins the finished run instead of migrating again.
	// The same request after its run ended runs again, and finds the image the first run made.
	code, out2, errs2 := h.run("migrate", "--image", web, "--from", "DFW", "--to", "IAD", "--wait")
	if code != 0 || !strings.Contains(out2, res.Result.Targets[0].ImageID) ||
		!strings.Contains(out2, `"reused": true`) {
		t.Fatalf("repeat migrate: %d %s\n%s", code, out2, errs2)
	}
	// The status of a finished run carries its outcome, not only "Completed".
	code, out, _ = h.run("status", "--workflow-id", res.WorkflowID, "--json")
	if code != 0 || !strings.Contains(out, `"status": "Completed"`) ||
		!strings.Contains(out, res.Result.Targets[0].ImageID) ||
		!strings.Contains(out, `"closed"`) {
		t.Fatalf("status: %d %s", code, out)
	}
	// The new image ids are what the user came for: rows, not a cut-off JSON cell; the run is
	// found by a bare id or by its address in the UI, and wait follows any run to its end.
	newID := res.Result.Targets[0].ImageID
	if !strings.Contains(errs, "image IAD: "+newID+" (succeeded") {
		t.Fatalf("migrate --wait does not name the new image for people:\n%s", errs)
	}
	uiURL := "http://localhost:8233/namespaces/" + h.cfg.Temporal.Namespace + "/workflows/" +
		url.PathEscape(res.WorkflowID) + "/some-run/history"
	for _, args := range [][]string{{"status", res.WorkflowID}, {"status", uiURL}} {
		code, out, errs = h.run(args...)
		if code != 0 || !regexp.MustCompile(`image IAD +`+newID+` \(succeeded`).MatchString(out) {
			t.Fatalf("%v: %d\n%s\n%s", args, code, out, errs)
		}
	}
	code, out, errs = h.run("wait", res.WorkflowID)
	if code != 0 || !strings.Contains(out, newID) || !strings.Contains(errs, "image IAD: "+newID) {
		t.Fatalf("wait: %d\n%s\n%s", code, out, errs)
	}
	code, _, errs = h.run("status", "--follow", strings.Replace(uiURL, h.cfg.Temporal.Namespace, "other-ns", 1))
	if code != exitUsage || !strings.Contains(errs, `a run in namespace "other-ns"`) {
		t.Fatalf("a run of another namespace: %d\n%s", code, errs)
	}
	code, out, _ = h.run("get", "--region", "IAD", "--image", res.Result.Targets[0].ImageID, "--json")
	if code != 0 || !strings.Contains(out, `"imageflow_source_image_id": "`+web+`"`) {
		t.Fatalf("get: %d %s", code, out)
	}
	code, out, _ = h.run(
		"update",
		"--region",
		"IAD",
		"--image",
		res.Result.Targets[0].ImageID,
		"--set",
		"owner_team=ops",
		"--tag",
		"moved",
		"--json",
	)
	if code != 0 || !strings.Contains(out, `"owner_team": "ops"`) || !strings.Contains(out, `"moved"`) {
		t.Fatalf("update: %d %s", code, out)
	}
	// By event, waiting for the run the bridge starts; the image by its name.
	code, out, errs = h.run(
		"share",
		"--via",
		"nats",
		"--image",
		"demo-web-01",
		"--region",
		"DFW",
		"--members",
		"100002",
		"--deadline",
		"1s",
		"--wait",
	)
	if code != 0 || !strings.Contains(out, `"status": "expired"`) ||
		!strings.Contains(errs, `image "demo-web-01" in DFW is `+web) {
		t.Fatalf("share via nats: %d\n%s\n%s", code, out, errs)
	}
}

func TestStarterErrors(t *testing.T) {
	h := setup(t)
	// Image ids no image has (an id is checked by the run or the bridge; a name by the starter).
	const missing, missingToo = "00000000-0000-4000-8000-00000000dead", "00000000-0000-4000-8000-00000000beef"
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fly"}, 2, `unknown command "fly"`},
		{nil, 2, "usage: starter <command>"},
		{[]string{"migrate", "--from", "DFW", "--to", "IAD"}, 2, "image_id is required"},
		{
			[]string{"migrate", "--image", "x", "--from", "DFW", "--to", "MARS"},
			2,
			`region "MARS" is not in account 100001's service catalog (it lists DFW, HKG`,
		},
		{
			[]string{"migrate", "--image", "x", "--from", "DFW", "--to", "MARS/1"},
			2,
			`target region "MARS/1" is not a region name`,
		},
		{
			[]string{"migrate", "--image", "x", "--from", "DFW", "--to", "IAD", "--via", "carrier-pigeon"},
			2,
			"--via must be temporal or nats",
		},
		{[]string{"migrate", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"accept", "--image", "x", "--region", "DFW", "--producer", "100001", "--via", "nats"}, 2,
			"cannot force an acceptance"},
		{
			[]string{"get", "--region", "DFW", "--image", "nope"},
			1,
			"image nope was not found in DFW for account 100001",
		},
		{
			[]string{"migrate", "--image", missing, "--from", "DFW", "--to", "IAD", "--wait"},
			1,
			"image " + missing + " was not found",
		},
		// Issue 43: a name is taken where it is one image's, else refused before anything starts.
		{[]string{"migrate", "--image", "demo-web-99", "--from", "DFW", "--to", "IAD"}, 2,
			`--image "demo-web-99" is neither an image id nor the name of an image of account 100001 in DFW`},
		{[]string{"migrate", "--image", "demo-web-99", "--from", "DFW", "--to", "IAD", "--via", "nats"}, 2,
			`--image "demo-web-99" is neither an image id`},
		{[]string{"distribute", "--image", missing, "--from", "DFW", "--family", "web", "--version", "1",
			"--to", "IAD,iad"}, 2, "region IAD is listed twice"},
		{[]string{"distribute", "--image", missing, "--from", "DFW", "--family", "web", "--version", "1",
			"--to", "IAD", "--accounts", "100001"}, 2, "tenant 100001 is the account the request is for"},
		{[]string{"share", "--image", missing, "--region", "DFW", "--members", "100001", "--via", "nats"}, 2,
			"tenant 100001 is the account the request is for"},
		{[]string{"migrate", "--image", missing, "--from", "DFW", "--to", "IAD", "--share-with", "100001"}, 2,
			"tenant 100001 is the account the request is for"},
		{[]string{"prune", "--family", "web", "--keep", "1", "--regions", "IAD", "--via", "nats"}, 2,
			"flag provided but not defined: -via"},
		{[]string{"status", "--workflow-id", "nothing-here"}, 1, `no run with workflow id "nothing-here"`},
		{[]string{"update", "--region", "DFW", "--image", "x", "--set", "novalue"}, 2, "--set wants key=value"},
		{[]string{"migrate", "--image", "x", "--from", "DFW", "--to", "IAD", "--deadline", "-1h"}, 2,
			"a deadline must be in the future"},
		{[]string{"migrate", "--image", "x", "--from", "DFW", "--to", "IAD", "--deadline", "2020-01-01T00:00:00Z"}, 2,
			"has passed"},
		{[]string{"migrate", "--image", "x", "--from", "DFW", "--to", "IAD", "--deadline", "soon"}, 2,
			"want a duration from now"},
		// Issue 25: impossible durations are refused, not run as the default.
		{[]string{"share", "--image", "x", "--region", "DFW", "--members", "100002", "--deadline", "-1h"}, 2,
			"-1h must be more than zero"},
		{[]string{"share", "--image", "x", "--region", "DFW", "--members", "100002", "--deadline", "0s"}, 2,
			"0s must be more than zero"},
		{[]string{"share", "--image", "x", "--region", "DFW", "--members", "100002", "--deadline", "90000h"}, 2,
			"at most 366 days"},
		{[]string{"share", "--image", "x", "--region", "DFW", "--members", "0100002"}, 2, "not a tenant id"},
		{[]string{"migrate", "--image", "x", "--from", "DFW", "--to", "IAD", "--deadline", "9999-01-01T00:00:00Z"},
			2, "more than 366 days away"},
		{[]string{"migrate", "--image", "x", "--from", "DFW", "--to", "IAD", "--name", "web\u2028forged"},
			2, "U+2028"},
		{[]string{"share", "--image", "x", "--region", "DFW", "--members", "100002", "--via", "nats",
			"--event-id", "a\r\nNats-Expected-Stream: other"}, 2, "--event-id: id must be 1 to 256 characters"},
		// Issue 39: a --tenant the configured account's credentials do not belong to is refused.
		{[]string{"share", "--image", missing, "--region", "DFW", "--members", "100002", "--via", "nats",
			"--tenant", "100777"}, 2, "the configured cloud account is 100001's"},
		// Issue 25: a request the bridge dead-letters ends the wait with its reason.
		{[]string{"migrate", "--image", missingToo, "--from", "DFW", "--to", "IAD", "--via", "nats", "--wait"}, 1,
			"was refused and dead-lettered (imageflow.dlq."},
		{
			[]string{"bulk-migrate", "--from", "DFW", "--to", "IAD", "--property", "app"},
			2,
			"--property wants key=value",
		},
		{[]string{"bulk-migrate", "--from", "DFW", "--to", "IAD", "--name-pattern", "[web"}, 2, "not a shell pattern"},
		{[]string{"bulk-migrate", "--from", "DFW", "--to", "IAD", "--created-before", "last week"}, 2,
			"want a duration back from now"},
		{[]string{"bulk-migrate", "--from", "DFW", "--to", "IAD", "--concurrency", "500"}, 2, "concurrency must be"},
		{[]string{"bulk-migrate", "--from", "DFW", "--to", "IAD", "--deadline", "1s", "--tag", "web"}, 1,
			"cannot meet its deadline"},
		{[]string{"runs", "--image", "x' OR WorkflowType != '"}, 2, "cannot hold quotes"},
		{[]string{"runs", "--kind", "party"}, 2, "--kind must be"},
		{[]string{"runs", "--limit", "0"}, 2, "--limit must be 1 to 1000"},
		{[]string{"cancel"}, 2, "which run? give its workflow id"},
		{[]string{"cancel", "--workflow-id", "nothing-here"}, 1, `no run with workflow id "nothing-here"`},
		{[]string{"delete", "--region", "DFW", "--image", "nope", "--yes"}, 1, "image nope was not found"},
		{[]string{"unshare", "--region", "DFW", "--image", "x"}, 2, "--members is required"},
		{[]string{"export", "--region", "DFW", "--image", "nope"}, 1, "image nope was not found"},
		{[]string{"import", "--region", "DFW", "--container", "c"}, 2, "--object and --name are required"},
		{[]string{"members", "--image", "x"}, 2, "--image and --region are required"},
	}
	for _, c := range cases {
		code, _, errs := h.run(c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
	// Issue 26: an event no worker would read is refused up front, not left to wait unread (a
	// starter with no cloud account takes --tenant as its only word on the account).
	bare := *h
	bare.cfg.Cloud = config.Cloud{}
	if code, _, errs := bare.run("share", "--image", missing, "--region", "DFW", "--members", "100002", "--via",
		"nats", "--tenant", "100777"); code != 2 || !strings.Contains(errs, "no worker reads account 100777's commands") {
		t.Errorf("--tenant with no worker: exit %d, %s", code, errs)
	}
	// A name two images share is refused with both ids to choose from.
	web := imageIDOf(t, h, "demo-web-01")
	twin, err := h.env.Emulator.Snapshot(emulator.SnapshotRequest{Region: "DFW", ImageID: web, Name: "demo-web-01",
		ChangedPercent: 1, Pattern: "clustered"})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := h.run("migrate", "--image", "demo-web-01", "--from", "DFW", "--to", "IAD")
	if code != exitUsage || !strings.Contains(errs, `2 images of account 100001 in DFW are named "demo-web-01"`) ||
		!strings.Contains(errs, web) || !strings.Contains(errs, twin) {
		t.Fatalf("an ambiguous name: %d %s", code, errs)
	}
}

// TestProgressLineNamesRegions: with two copies at once, each bar says which region it is.
func TestProgressLineNamesRegions(t *testing.T) {
	st := runStatus{Type: "MigrateImage", Status: "Running", Copies: map[string]copyStatus{
		"LON": {Region: "LON", BytesDone: 16 << 20, BytesTotal: 64 << 20},
		"IAD": {Region: "IAD", BytesDone: 1 << 20, BytesTotal: 64 << 20},
	}}
	line := progressLine(st)
	iad, lon := strings.Index(line, "IAD ["), strings.Index(line, "LON [")
	if iad < 0 || lon < iad || !strings.Contains(line, "1/64 MiB") || !strings.Contains(line, " 25%") {
		t.Fatalf("progress line %q: want IAD then LON, each labelled, from the first MiB", line)
	}
}

// TestStatusShowsAWaitOutAFault: while a migration waits out a regional outage, status names the
// step that waits, its attempt, the cloud's last answer and the next try (issue 24: it showed an
// ETA in the past and nothing else).
func TestStatusShowsAWaitOutAFault(t *testing.T) {
	h := setup(t)
	if err := h.env.Emulator.AddFault(emulator.Fault{Kind: "error", Region: "IAD", Service: "files",
		Status: 503}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := h.run("list", "--region", "DFW", "--tag", "web", "--json")
	var imgs []cloud.Image
	if code != 0 || json.Unmarshal([]byte(out), &imgs) != nil || len(imgs) != 1 {
		t.Fatalf("list: %d %s %s", code, out, errs)
	}
	code, out, errs = h.run("migrate", "--image", imgs[0].ID, "--from", "DFW", "--to", "IAD")
	var started map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
		t.Fatalf("migrate: %d %s %s", code, out, errs)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, errs = h.run("status", "--workflow-id", started["workflow_id"])
		if code == 0 && strings.Contains(out, "waiting") && strings.Contains(out, "attempt ") &&
			strings.Contains(out, "503") && strings.Contains(out, "next try") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the wait: %d\n%s\n%s", code, out, errs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("status while waiting:\n%s", out)
	code, out, errs = h.run("status", "--workflow-id", started["workflow_id"], "--json")
	if code != 0 || !strings.Contains(out, `"waiting"`) || !strings.Contains(out, `"last_error"`) {
		t.Fatalf("status --json: %d %s %s", code, out, errs)
	}
	h.env.Emulator.ClearFaults()
}

// TestForgottenTaskQueueIsSaid: with the default queue, which no devstack worker serves, a start
// is refused naming the queue and what to set (it hung in "Running" before, silently); started
// anyway, status says no worker polls it, and cancel --wait returns instead of hanging.
func TestForgottenTaskQueueIsSaid(t *testing.T) {
	h := setup(t)
	h.cfg.Temporal.TaskQueue = "imageflow"
	start := time.Now()
	code, _, errs := h.run("migrate", "--image", "00000000-0000-4000-8000-000000000042", "--from", "DFW", "--to", "IAD", "--wait")
	if code != 2 || !strings.Contains(errs, `no worker polls task queue "imageflow"`) ||
		!strings.Contains(errs, "IMAGEFLOW_TEMPORAL_TASK_QUEUE") {
		t.Fatalf("start on an unserved queue: %d %s", code, errs)
	}
	code, out, errs := h.run("migrate", "--image", "00000000-0000-4000-8000-000000000042", "--from", "DFW", "--to", "IAD", "--start-without-worker")
	var started map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
		t.Fatalf("start anyway: %d %s %s", code, out, errs)
	}
	code, out, _ = h.run("status", "--workflow-id", started["workflow_id"])
	if code != 0 || !strings.Contains(out, `no worker polls task queue "imageflow"`) {
		t.Fatalf("status of a run nobody serves: %d %s", code, out)
	}
	code, _, errs = h.run("cancel", "--workflow-id", started["workflow_id"], "--wait")
	if code != 1 || !strings.Contains(errs, "will cancel when a worker takes it up") {
		t.Fatalf("cancel --wait of a run nobody serves: %d %s", code, errs)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("took %s", took)
	}
}

// TestCtrlCOnWaitDetaches: interrupting --wait leaves the job running and says so, with an exit
// code of its own (it said "context canceled" and exited 1, "the job failed").
func TestCtrlCOnWaitDetaches(t *testing.T) {
	h := setup(t)
	if err := h.env.Emulator.AddFault(emulator.Fault{Kind: "error", Region: "IAD", Service: "files",
		Status: 503}); err != nil {
		t.Fatal(err)
	}
	defer h.env.Emulator.ClearFaults()
	web := imageIDOf(t, h, "demo-web-01")
	var out, errb bytes.Buffer
	a := newApp(h.cfg, &out, &errb, false)
	a.pollEvery = 100 * time.Millisecond
	ctx, interrupt := context.WithCancel(context.Background())
	time.AfterFunc(2*time.Second, interrupt) // the user's Ctrl-C
	code := a.run(ctx, []string{"migrate", "--image", web, "--from", "DFW", "--to", "IAD", "--wait"})
	if code != exitDetached || !strings.Contains(errb.String(), "the job goes on") ||
		!strings.Contains(errb.String(), "starter wait migrate-100001-DFW-") {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
}

func imageIDOf(t *testing.T, h *harness, name string) string {
	t.Helper()
	code, out, errs := h.run("list", "--region", "DFW", "--name", name, "--json")
	var imgs []cloud.Image
	if code != 0 || json.Unmarshal([]byte(out), &imgs) != nil || len(imgs) != 1 {
		t.Fatalf("list %s: %d %s %s", name, code, out, errs)
	}
	return imgs[0].ID
}

// TestWrongKeyIsSaidOnce: a configured account whose key identity refuses is told as that, with
// the identity address once (it said "set --tenant, or configure the cloud account").
func TestWrongKeyIsSaidOnce(t *testing.T) {
	h := setup(t)
	h.cfg.Cloud.APIKey = "wrong-key"
	code, _, errs := h.run("migrate", "--image", "x", "--from", "DFW", "--to", "IAD")
	if code != 1 || !strings.Contains(errs, "rejected the credentials") || strings.Contains(errs, "--tenant") ||
		strings.Count(errs, h.env.Emulator.IdentityURL()) != 1 || strings.Contains(errs, "wrong-key") {
		t.Fatalf("migrate with a wrong key: %d %s", code, errs)
	}
	code, _, errs = h.run("list", "--region", "DFW")
	if code != 1 || strings.Count(errs, h.env.Emulator.IdentityURL()) != 1 {
		t.Fatalf("list with a wrong key: %d %s", code, errs)
	}
}

// TestOneCopyPerRegion: a second request for the same image and region, differing only in its
// policies, reuses the copy the first made (it made a second identical image); --new-copy makes
// another on purpose.
func TestOneCopyPerRegion(t *testing.T) {
	h := setup(t)
	web := imageIDOf(t, h, "demo-web-01")
	target := func(args ...string) workflows.TargetResult {
		t.Helper()
		args = append([]string{"migrate", "--image", web, "--from", "DFW", "--to", "IAD", "--wait"}, args...)
		code, out, errs := h.run(args...)
		var res struct {
			Result workflows.MigrateResult `json:"result"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Result.Targets) != 1 {
			t.Fatalf("%v: %d %s %s", args, code, out, errs)
		}
		return res.Result.Targets[0]
	}
	first := target()
	second := target("--policy", "best-effort", "--cleanup", "always")
	if !second.Reused || second.ImageID != first.ImageID {
		t.Fatalf("second request: %+v, want the first's image %s reused", second, first.ImageID)
	}
	copies := func() int {
		imgs, err := h.env.Cloud("demo").ListImages(context.Background(), "IAD",
			cloud.ImageFilter{Name: "demo-web-01", Owner: "100001"})
		if err != nil {
			t.Fatal(err)
		}
		return len(imgs)
	}
	if n := copies(); n != 1 {
		t.Fatalf("%d copies in IAD after two requests, want 1", n)
	}
	if third := target("--new-copy"); third.Reused || third.ImageID == first.ImageID {
		t.Fatalf("--new-copy: %+v", third)
	}
	if n := copies(); n != 2 {
		t.Fatalf("%d copies in IAD after --new-copy, want 2", n)
	}
}

// TestProgressMovesDuringASlowCopy: a copy slowed to 1 MiB/s per request shows its bytes moving in
// status, where the user reads them, several times before it ends (the SDK sent heartbeat
// details once a minute, so the bar sat at 0% and jumped to 98%), and a rate and an ETA before
// its first segment is done (the rate counted finished segments only, so the first 16 s of a
// slow copy showed none). The 256 MiB image keeps the kernel's socket buffers (about 5 MiB per
// connection, counted as sent the moment they take the bytes) a small part of the copy, as they
// are of a real one: with 64 MiB they took two thirds of it at once and a loaded machine saw
// the count move only twice.
func TestProgressMovesDuringASlowCopy(t *testing.T) {
	h := setup(t)
	if err := h.env.Emulator.AddFault(emulator.Fault{Kind: "bandwidth", Region: "IAD", Service: "files",
		Method: "PUT", BytesPerSecond: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	db := imageIDOf(t, h, "demo-db-01")
	code, out, errs := h.run("migrate", "--image", db, "--from", "DFW", "--to", "IAD")
	var started map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
		t.Fatalf("migrate: %d %s %s", code, out, errs)
	}
	seen := map[int64]bool{}
	var ratedEarly bool
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		code, out, _ = h.run("status", "--workflow-id", started["workflow_id"], "--json")
		var st runStatus
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("status: %d %s", code, out)
		}
		if st.Status != "Running" {
			break
		}
		if c, ok := st.Copies["IAD"]; ok && c.BytesDone > 0 && c.BytesDone < c.BytesTotal {
			seen[c.BytesDone] = true
			ratedEarly = ratedEarly || c.Segments == 0 && c.Rate > 0 && c.ETA != ""
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !ratedEarly {
		t.Error("status showed no rate and ETA before the copy's first segment was done")
	}
	t.Logf("%d distinct partial byte counts", len(seen))
	if len(seen) < 3 {
		t.Fatalf("status showed %d distinct partial byte counts during a slow copy, want at least 3: %v",
			len(seen), seen)
	}
}

// TestRunsCarryASummary: runs started by the starter and by an event carry the UI's summary and
// details (what, from where, to where, who asked); the UI read "No summary available".
func TestRunsCarryASummary(t *testing.T) {
	h := setup(t)
	web := imageIDOf(t, h, "demo-web-01")
	for via, to := range map[string]string{"temporal": "ORD", "nats": "SYD"} {
		code, out, errs := h.run("migrate", "--image", web, "--from", "DFW", "--to", to, "--via", via)
		var started map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
			t.Fatalf("migrate via %s: %d %s %s", via, code, out, errs)
		}
		id, _ := started["workflow_id"].(string)
		var summary, details string
		deadline := time.Now().Add(time.Minute)
		for summary == "" && time.Now().Before(deadline) {
			d, err := h.env.Client.DescribeWorkflowExecution(context.Background(), id, "")
			if err == nil {
				md := d.GetExecutionConfig().GetUserMetadata()
				_ = converter.GetDefaultDataConverter().FromPayload(md.GetSummary(), &summary)
				_ = converter.GetDefaultDataConverter().FromPayload(md.GetDetails(), &details)
			}
			time.Sleep(100 * time.Millisecond)
		}
		asker := map[string]string{"temporal": "asked by: the starter, as ", "nats": "asked by: event starter-"}[via]
		if summary != "migrate "+web+" from DFW to "+to || !strings.Contains(details, "to: "+to) ||
			!strings.Contains(details, asker) {
			t.Fatalf("via %s: summary %q, details %q", via, summary, details)
		}
	}
}

// TestAcceptKnowsTheProducer: the account that offered an image is its owner, so accept and
// reject need no --producer (issue 43).
func TestAcceptKnowsTheProducer(t *testing.T) {
	env := testenv.New(t)
	env.StartWorker("partner", testenv.WorkerOptions{})
	h := harnessFor(t, env)
	h.cfg.Cloud.Username, h.cfg.Cloud.APIKey = "partner", "partner-api-key"
	h.cfg.Temporal.TaskQueue = testenv.TaskQueue("partner")
	ctx := context.Background()
	demo := env.Cloud("demo")
	imgs, err := demo.ListImages(ctx, "DFW", cloud.ImageFilter{Name: "demo-web-01", Owner: demo.Tenant()})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("demo-web-01: %v %v", imgs, err)
	}
	if _, err := demo.AddMember(ctx, "DFW", imgs[0].ID, "100002"); err != nil {
		t.Fatal(err)
	}
	code, out, errs := h.run("reject", "--image", imgs[0].ID, "--region", "DFW", "--wait")
	if code != 0 || !strings.Contains(errs, "was offered by its owner, 100001") ||
		!strings.Contains(out, `"decision": "rejected"`) || !strings.Contains(out, `"producer": "100001"`) {
		t.Fatalf("reject without --producer: %d\n%s\n%s", code, out, errs)
	}
}

// TestTenantIsProven: --tenant is refused when the credentials name another account, whichever
// names it (the Temporal namespace, the NATS user, the cloud account), before anything is sent;
// issue 39's `starter --tenant 999999` ran as 100001.
func TestTenantIsProven(t *testing.T) {
	env := testenv.New(t)
	imgs, err := env.Cloud("demo").ListImages(context.Background(), "DFW", cloud.ImageFilter{Name: "demo-web-01"})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("demo-web-01: %v %v", imgs, err)
	}
	cases := []struct {
		tenant string
		set    func(*config.Config)
		want   string
	}{
		{"999999", func(c *config.Config) { c.Temporal.Namespace = "imageflow-100001" },
			"IMAGEFLOW_TEMPORAL_NAMESPACE imageflow-100001 belongs to (100001)"},
		{"100001", func(c *config.Config) { c.NATS.User = "sender-100002" },
			"IMAGEFLOW_NATS_USER sender-100002 belongs to (100002)"},
		{"100002", func(*config.Config) {}, "the configured cloud account is 100001's"},
	}
	for _, c := range cases {
		h := harnessFor(t, env)
		c.set(&h.cfg)
		code, _, errs := h.run("migrate", "--image", imgs[0].ID, "--from", "DFW", "--to", "IAD", "--tenant", c.tenant,
			"--start-without-worker")
		if code != exitUsage || !strings.Contains(errs, "--tenant "+c.tenant) || !strings.Contains(errs, c.want) {
			t.Errorf("--tenant %s: exit %d, %s (want %q)", c.tenant, code, errs, c.want)
		}
	}
	resp, err := env.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: env.Namespace})
	if err != nil || len(resp.Executions) != 0 {
		t.Errorf("runs started for refused tenants: %v %v", resp, err)
	}
}
