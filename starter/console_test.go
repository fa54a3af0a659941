package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// jsonOut runs a command that must succeed and decodes its --json output.
func (h *harness) jsonOut(v any, args ...string) string {
	h.t.Helper()
	code, out, errs := h.run(append(args, "--json")...)
	if code != 0 {
		h.t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errs)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("%v: %v in %s", args, err, out)
	}
	return errs
}

func (h *harness) imageID(name string) string {
	h.t.Helper()
	var imgs []cloud.Image
	h.jsonOut(&imgs, "list", "--region", "DFW", "--name", name)
	if len(imgs) != 1 {
		h.t.Fatalf("%d images named %s", len(imgs), name)
	}
	return imgs[0].ID
}

// TestQuickstartOperations: every operation of the quickstart is one command, printing a table
// by default and JSON with --json: export, import, tags, members, unshare, delete.
func TestQuickstartOperations(t *testing.T) {
	h := setup(t)
	code, out, _ := h.run("list", "--region", "DFW", "--name-pattern", "demo-*-01")
	if code != 0 || !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "demo-web-01") ||
		!strings.Contains(out, "64.0 MiB") || strings.Contains(out, "Ubuntu") {
		t.Fatalf("list table: %d\n%s", code, out)
	}
	web := h.imageID("demo-web-01")
	var img cloud.Image
	h.jsonOut(&img, "get", "--region", "DFW", "--image", web)

	var task cloud.Task
	errs := h.jsonOut(&task, "export", "--region", "DFW", "--image", web, "--container", "exp",
		"--poll-interval", "50ms")
	if task.Status != "success" || task.Result["export_location"] != "exp/"+web+".vhd" ||
		!strings.Contains(errs, "export of demo-web-01") {
		t.Fatalf("export: %+v\n%s", task, errs)
	}
	// A rate-limited task poll is waited out inside the client, and said (it was silent, so a
	// poll the cloud held off looked like a hung export).
	if err := h.env.Emulator.AddFault(emulator.Fault{Kind: "rate-limit", Region: "DFW", Service: "images",
		Method: "GET", Path: "/v2/tasks/", RetryAfter: 1, Count: 1}); err != nil {
		t.Fatal(err)
	}
	errs = h.jsonOut(&task, "export", "--region", "DFW", "--image", web, "--container", "exp2",
		"--poll-interval", "50ms")
	if task.Status != "success" || !strings.Contains(errs, "is rate-limiting this account; waiting 1s as it asked") {
		t.Fatalf("rate-limited export: %+v\n%s", task, errs)
	}
	h.jsonOut(&task, "import", "--region", "DFW", "--container", "exp", "--object", web+".vhd",
		"--name", "web-copy", "--checksum", img.Checksum, "--poll-interval", "50ms")
	copyID := task.Result["image_id"]
	if task.Status != "success" || copyID == "" {
		t.Fatalf("import: %+v", task)
	}
	if code, _, errs := h.run("import", "--region", "DFW", "--container", "exp", "--object", "nope.vhd",
		"--name", "x"); code != 1 || !strings.Contains(errs, "no object exp/nope.vhd in DFW") {
		t.Fatalf("import of a missing object: %d %s", code, errs)
	}

	var tags []string
	h.jsonOut(&tags, "tags", "--region", "DFW", "--image", copyID, "--add", "blue,green", "--remove", "green,never")
	if strings.Join(tags, ",") != "blue" {
		t.Fatalf("tags %v, want [blue]", tags)
	}

	h.env.Cloud("demo").AddMember(context.Background(), "DFW", copyID, "100002")
	var ms []cloud.Member
	h.jsonOut(&ms, "members", "--region", "DFW", "--image", copyID)
	if len(ms) != 1 || ms[0].MemberID != "100002" || ms[0].Status != "pending" {
		t.Fatalf("members %+v", ms)
	}
	code, out, _ = h.run("members", "--region", "DFW", "--image", copyID)
	if code != 0 || !strings.Contains(out, "MEMBER") || !strings.Contains(out, "100002  pending") {
		t.Fatalf("members table: %d\n%s", code, out)
	}
	if code, _, errs := h.run("unshare", "--region", "DFW", "--image", copyID, "--members", "100002,100003"); code != 0 ||
		!strings.Contains(errs, "removed tenant 100002") ||
		!strings.Contains(errs, "100003 was not a member") {
		t.Fatalf("unshare: %d %s", code, errs)
	}
	if code, _, errs := h.run("members", "--region", "DFW", "--image", copyID, "--member", "100002"); code != 1 ||
		!strings.Contains(errs, "not a member") {
		t.Fatalf("member after unshare: %d %s", code, errs)
	}

	// Delete: a script must say --yes; a protected image is refused either way.
	if code, _, errs := h.run("delete", "--region", "DFW", "--image", copyID); code != 2 ||
		!strings.Contains(errs, "needs --yes") {
		t.Fatalf("delete without --yes: %d %s", code, errs)
	}
	if _, err := h.env.Cloud("demo").PatchImage(context.Background(), "DFW", web,
		[]cloud.PatchOp{{Op: "replace", Path: "/protected", Value: true}}); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := h.run("delete", "--region", "DFW", "--image", web, "--yes"); code != 1 ||
		!strings.Contains(errs, "is protected") {
		t.Fatalf("delete of a protected image: %d %s", code, errs)
	}
	if code, _, errs := h.run("delete", "--region", "DFW", "--image", copyID, "--yes"); code != 0 ||
		!strings.Contains(errs, "deleted image "+copyID) {
		t.Fatalf("delete: %d %s", code, errs)
	}
	if code, _, errs := h.run("get", "--region", "DFW", "--image", copyID); code != 1 ||
		!strings.Contains(errs, "was not found") {
		t.Fatalf("get after delete: %d %s", code, errs)
	}
}

// TestBulkDryRunRunsAndChain: a bulk dry run plans without starting anything; the real run
// does the plan; a second dry run finds it all done. Runs list by kind and image; migrate
// --share-with chains to the partner's auto-accept through a ShareImage run.
func TestBulkDryRunRunsAndChain(t *testing.T) {
	h := setup(t)
	h.env.StartWorker("partner", testenv.WorkerOptions{Events: true, AutoAccept: true,
		AcceptPolicy: workflows.AcceptPolicy{TrustedProducers: []string{"100001"}}})
	var plan bulkPlan
	h.jsonOut(&plan, "bulk-migrate", "--from", "DFW", "--to", "IAD", "--name-pattern", "demo-*", "--dry-run")
	if len(plan.Images) != 3 || plan.ToMigrate != 2 || plan.WillFail != 1 || plan.AlreadyDone != 0 ||
		plan.Bytes != (64+256)<<20 || plan.Estimate.TotalSeconds <= 0 || plan.Estimate.Rates.Basis != "configured" {
		t.Fatalf("plan %+v", plan)
	}
	code, out, _ := h.run("bulk-migrate", "--from", "DFW", "--to", "IAD", "--name-pattern", "demo-*", "--dry-run")
	if code != 0 || !strings.Contains(out, "3 images: 2 to migrate, 0 already done, 1 would fail") ||
		!strings.Contains(out, "licensed") {
		t.Fatalf("plan table: %d\n%s", code, out)
	}
	if rows := h.runsOf("--kind", "bulk"); len(rows) != 0 {
		t.Fatalf("a dry run started %d runs", len(rows))
	}
	code, out, errs := h.run("bulk-migrate", "--from", "DFW", "--to", "IAD", "--name-pattern", "demo-*", "--wait")
	if code != 0 || !strings.Contains(out, `"succeeded": 2`) || !strings.Contains(out, `"failed": 1`) ||
		!strings.Contains(errs, "images: 2 succeeded, 1 failed of 3") || strings.Count(errs, "copies of ") != 2 {
		t.Fatalf("bulk: %d\n%s\n%s", code, out, errs)
	}
	var ended struct {
		Images map[string][]madeImage `json:"images"` // every copy by region, not only the summary's first 500
	}
	if json.Unmarshal([]byte(out), &ended) != nil || len(ended.Images["IAD"]) != 2 ||
		ended.Images["IAD"][0].ImageID == "" || !strings.Contains(errs, "IAD: 2 of 3 images have their copy") {
		t.Fatalf("bulk --wait's copies by region: %s\n%s", out, errs)
	}
	for _, kind := range []string{"bulk-migrate", "bulk"} { // the command's name, and the older one
		if rows := h.runsOf("--kind", kind); len(rows) != 1 {
			t.Fatalf("runs --kind %s: %+v", kind, rows)
		}
	}
	h.jsonOut(&plan, "bulk-migrate", "--from", "DFW", "--to", "IAD", "--name-pattern", "demo-*", "--dry-run")
	if plan.AlreadyDone != 2 || plan.ToMigrate != 0 || plan.Bytes != 0 ||
		!strings.HasPrefix(plan.Estimate.Rates.Basis, "measured over the last 2 migration(s)") {
		t.Fatalf("plan after the run %+v", plan)
	}

	web := h.imageID("demo-web-01")
	if rows := h.runsOf("--kind", "migrate", "--image", web); len(rows) != 1 || rows[0].JobStatus != "Succeeded" {
		t.Fatalf("migrate runs of %s: %+v", web, rows)
	}
	if rows := h.runsOf("--region", "IAD", "--status", "completed"); len(rows) != 3 {
		t.Fatalf("completed runs to IAD: %+v", rows) // the bulk run and its two children
	}
	if code, _, errs := h.run("runs", "--status", "exploded"); code != 2 || !strings.Contains(errs, "exploded") {
		t.Fatalf("bad status: %d %s", code, errs)
	}

	// migrate --share-with: the new image is offered by a ShareImage run the partner answers.
	code, out, errs = h.run("migrate", "--image", web, "--from", "DFW", "--to", "ORD", "--share-with", "100002",
		"--wait")
	var res struct {
		Result workflows.MigrateResult `json:"result"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Result.Targets[0].ShareWorkflowID == "" {
		t.Fatalf("migrate --share-with: %d\n%s\n%s", code, out, errs)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var st runStatus
		h.jsonOut(&st, "status", "--workflow-id", res.Result.Targets[0].ShareWorkflowID)
		if st.Status == "Completed" && strings.Contains(string(mustJSON(st.Result)), `"accepted"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the share run never saw the partner accept: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (h *harness) runsOf(args ...string) []runRow {
	h.t.Helper()
	var rows []runRow
	h.jsonOut(&rows, append([]string{"runs"}, args...)...)
	return rows
}

// TestCancelMigrationCleansUp: a migration cancelled during a long export ends as cancelled and
// leaves no intermediate container behind (cleanup on-success covers a cancel).
func TestCancelMigrationCleansUp(t *testing.T) {
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) { c.TaskDuration = time.Hour }})
	env.StartWorker("demo", testenv.WorkerOptions{Events: true})
	h := harnessFor(t, env)
	web := h.imageID("demo-web-01")
	var started map[string]string
	h.jsonOut(&started, "migrate", "--image", web, "--from", "DFW", "--to", "IAD")
	id := started["workflow_id"]
	deadline := time.Now().Add(time.Minute)
	for {
		var st runStatus
		h.jsonOut(&st, "status", "--workflow-id", id)
		if strings.Contains(string(mustJSON(st.Step)), `"exporting"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never exporting: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, out, errs := h.run("cancel", "--workflow-id", id, "--wait")
	if code != 0 || !strings.Contains(out, `"status": "Cancelled"`) {
		t.Fatalf("cancel: %d\n%s\n%s", code, out, errs)
	}
	cs, err := env.Cloud("demo").ListContainers(context.Background(), "DFW")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if strings.HasPrefix(c.Name, "imageflow-") {
			t.Fatalf("container %s outlived the cancelled migration", c.Name)
		}
	}
	if code, _, errs := h.run("cancel", "--workflow-id", id); code != 1 || !strings.Contains(errs, "already ended") {
		t.Fatalf("second cancel: %d %s", code, errs)
	}
}
