package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/workflows"
)

type scheduleState struct {
	Runs           int      `json:"runs"`
	SkippedOverlap int      `json:"skipped_overlap"`
	Running        []string `json:"running"`
	Paused         bool     `json:"paused"`
	Note           string   `json:"note"`
	Job            struct {
		Workflow string `json:"workflow"`
	} `json:"job"`
	Recent []struct {
		WorkflowID string `json:"workflow_id"`
	} `json:"recent"`
}

func (h *harness) describeSchedule(id string) scheduleState {
	h.t.Helper()
	code, out, errs := h.run("schedule", "describe", "--id", id)
	var st scheduleState
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		h.t.Fatalf("describe %s: %d\n%s\n%s", id, code, out, errs)
	}
	return st
}

// TestScheduleRunsSkipsPausesAndResumes: a share scheduled every 2 s whose runs last 8 s (a
// deadline nobody answers before), as a nightly job that outlasts its night would: the schedule
// starts runs, skips the starts that would overlap the run still going, stops while paused and
// starts again when unpaused; list, trigger and delete do what they say.
func TestScheduleRunsSkipsPausesAndResumes(t *testing.T) {
	h := setup(t)
	web := h.imageID("demo-web-01")
	code, out, errs := h.run("schedule", "create", "--id", "offers", "--every", "2s", "--note", "partner offers",
		"share", "--image", web, "--region", "DFW", "--members", "100002", "--deadline", "8s",
		"--on-timeout", "keep")
	if code != 0 || !strings.Contains(out, `"schedule_id": "offers"`) {
		t.Fatalf("create: %d\n%s\n%s", code, out, errs)
	}
	waitUntil(t, 30*time.Second, "a run and a skipped overlap", func() bool {
		st := h.describeSchedule("offers")
		return st.Runs >= 1 && st.SkippedOverlap >= 2
	})
	st := h.describeSchedule("offers")
	if len(st.Running) > 1 || st.Job.Workflow != "ShareImage" || st.Note != "partner offers" {
		t.Fatalf("overlap skip let %d runs go at once: %+v", len(st.Running), st)
	}
	if code, out, errs = h.run("schedule", "pause", "--id", "offers", "--note", "maintenance"); code != 0 {
		t.Fatalf("pause: %d %s %s", code, out, errs)
	}
	paused := h.describeSchedule("offers")
	time.Sleep(10 * time.Second) // five intervals, and past the last run's deadline
	if now := h.describeSchedule("offers"); now.Runs != paused.Runs || !now.Paused || now.Note != "maintenance" {
		t.Fatalf("a paused schedule ran: %+v then %+v", paused, now)
	}
	if code, _, errs = h.run("schedule", "unpause", "--id", "offers"); code != 0 {
		t.Fatalf("unpause: %s", errs)
	}
	waitUntil(t, 15*time.Second, "a run after unpausing", func() bool {
		return h.describeSchedule("offers").Runs > paused.Runs
	})
	code, out, _ = h.run("schedule", "list")
	if code != 0 || !strings.Contains(out, "offers") || !strings.Contains(out, "every 2s") {
		t.Fatalf("list:\n%s", out)
	}
	var runs []runRow
	h.jsonOut(&runs, "runs", "--kind", "share")
	if len(runs) == 0 || runs[0].Schedule != "offers" {
		t.Fatalf("runs does not name the schedule that started them: %+v", runs)
	}
	if code, _, errs = h.run("schedule", "delete", "--id", "offers"); code != 0 {
		t.Fatalf("delete: %s", errs)
	}
	if code, _, errs = h.run("schedule", "describe", "--id", "offers"); code != 1 ||
		!strings.Contains(errs, `no schedule "offers"`) {
		t.Fatalf("describe after delete: %d %s", code, errs)
	}
}

// TestScheduleRefusals: a schedule's own mistakes are named before anything is created.
func TestScheduleRefusals(t *testing.T) {
	h := setup(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"schedule"}, "schedule needs a verb"},
		{[]string{"schedule", "fly"}, `schedule verb "fly" is not one of`},
		{[]string{"schedule", "create", "--every", "1h", "migrate"}, "--id is required"},
		{[]string{"schedule", "create", "--id", "x y", "--every", "1h", "migrate"}, "use 1 to 200 letters"},
		{[]string{"schedule", "create", "--id", "x", "migrate"}, "give --cron or --every"},
		{[]string{"schedule", "create", "--id", "x", "--cron", "0 2 * *", "migrate"}, "want five fields"},
		{[]string{"schedule", "create", "--id", "x", "--every", "1h", "--time-zone", "Mars/Olympus", "migrate"},
			"not an IANA time zone"},
		{[]string{"schedule", "create", "--id", "x", "--every", "1h", "--overlap", "sometimes", "migrate"},
			`--overlap "sometimes"`},
		{[]string{"schedule", "create", "--id", "x", "--every", "1h", "list"}, "needs the job after its flags"},
		{[]string{"schedule", "create", "--id", "x", "--every", "1h", "migrate", "--image",
			"00000000-0000-4000-8000-000000000042", "--from", "DFW", "--to", "IAD", "--via", "nats"},
			"--via nats and --wait do not apply"},
	} {
		code, _, errs := h.run(c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("no %s within %s", what, limit)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// TestNightlyDRSchedule: the nightly disaster-recovery recipe, three nights scaled down (a
// night is a trigger, the window 5 s where production's is 25 h against a 24 h night): a paused
// schedule of bulk-migrate --created-within --lineage-keep 2 --keep 2. Each night a new snapshot
// of the server is taken and only it crosses; the first whole, the next two only their changed
// ranges; two copies stay in the target. Then prune --dry-run says what keeping one would delete,
// and prune does it.
func TestNightlyDRSchedule(t *testing.T) {
	h := setup(t)
	ctx := context.Background()
	web := h.imageID("demo-web-01")
	code, out, errs := h.run("schedule", "create", "--id", "dr-nightly", "--cron", "0 2 * * *", "--paused",
		"bulk-migrate", "--from", "DFW", "--to", "IAD", "--name-pattern", "web-night-*", "--created-within", "5s",
		"--lineage-keep", "2", "--keep", "2")
	if code != 0 {
		t.Fatalf("create: %d %s %s", code, out, errs)
	}
	if code, out, _ := h.run("schedule", "list"); code != 0 || !strings.Contains(out, "cron 0 2 * * * (UTC)") {
		t.Fatalf("schedule list does not show the cron as written:\n%s", out)
	}
	demo := h.env.Cloud("demo")
	src, err := demo.GetImage(ctx, "DFW", web)
	if err != nil {
		t.Fatal(err)
	}
	var sent []int64
	parent := web
	for night := 1; night <= 3; night++ {
		id, err := h.env.Emulator.Snapshot(emulator.SnapshotRequest{Region: "DFW", ImageID: parent,
			Name: fmt.Sprintf("web-night-%d", night), ChangedPercent: 5, Pattern: "clustered"})
		if err != nil {
			t.Fatal(err)
		}
		parent = id
		before := h.env.Emulator.BytesReceived("IAD")
		runs := h.describeSchedule("dr-nightly").Runs
		if code, _, errs := h.run("schedule", "trigger", "--id", "dr-nightly"); code != 0 {
			t.Fatalf("trigger: %s", errs)
		}
		waitUntil(t, 30*time.Second, "night's run", func() bool { return h.describeSchedule("dr-nightly").Runs > runs })
		d := h.describeSchedule("dr-nightly")
		var sum workflows.BulkSummary
		if err := h.env.Client.GetWorkflow(ctx, d.Recent[len(d.Recent)-1].WorkflowID, "").Get(ctx, &sum); err != nil ||
			sum.Total != 1 || sum.Succeeded != 1 {
			t.Fatalf("night %d: %+v %v (only that night's snapshot should cross)", night, sum, err)
		}
		sent = append(sent, h.env.Emulator.BytesReceived("IAD")-before)
		time.Sleep(6 * time.Second) // the night passes: this snapshot leaves the window
	}
	if sent[0] < src.Size || sent[1]*4 > src.Size || sent[2]*4 > src.Size {
		t.Fatalf("bytes sent per night %v for a %d-byte server: the first whole, then only changes", sent, src.Size)
	}
	lineage := src.Properties["instance_uuid"]
	copies := func() int {
		imgs, err := demo.ListImages(ctx, "IAD", cloud.ImageFilter{Properties: map[string]string{
			activities.PropLineage: lineage}})
		if err != nil {
			t.Fatal(err)
		}
		return len(imgs)
	}
	if n := copies(); n != 2 {
		t.Fatalf("%d copies of the server in IAD after three nights, want 2", n)
	}
	var plan []activities.PruneResult
	h.jsonOut(&plan, "prune", "--lineage", lineage, "--keep", "1", "--regions", "IAD", "--dry-run", "--json")
	if len(plan) != 1 || len(plan[0].Kept) != 1 || len(plan[0].Deleted) != 1 || copies() != 2 {
		t.Fatalf("dry run %+v changed something or planned wrong", plan)
	}
	if code, out, errs := h.run("prune", "--lineage", lineage, "--keep", "1", "--regions", "IAD", "--wait"); code != 0 {
		t.Fatalf("prune: %d %s %s", code, out, errs)
	}
	if n := copies(); n != 1 {
		t.Fatalf("%d copies after prune --keep 1", n)
	}
}

// TestSpecShowsTheCronWritten: a cron schedule lists as the cron it was made from (Temporal
// keeps it as a calendar, which printed as Go structs: "at [{2 2 1}]:[{0 0 1}] on [{0 6 1}]").
func TestSpecShowsTheCronWritten(t *testing.T) {
	r := func(start, end, step int) client.ScheduleRange {
		return client.ScheduleRange{Start: start, End: end, Step: step}
	}
	for want, spec := range map[string]client.ScheduleSpec{
		"cron 0 2 * * * (UTC)": {TimeZoneName: "UTC", Calendars: []client.ScheduleCalendarSpec{{
			Minute: []client.ScheduleRange{r(0, 0, 1)}, Hour: []client.ScheduleRange{r(2, 2, 1)},
			DayOfMonth: []client.ScheduleRange{r(1, 31, 1)}, Month: []client.ScheduleRange{r(1, 12, 1)},
			DayOfWeek: []client.ScheduleRange{r(0, 6, 1)}}}},
		"cron */15 9-17 * * 1-5": {Calendars: []client.ScheduleCalendarSpec{{
			Minute: []client.ScheduleRange{r(0, 59, 15)}, Hour: []client.ScheduleRange{r(9, 17, 1)},
			DayOfWeek: []client.ScheduleRange{r(1, 5, 0)}}}},
		"cron 30 0 1,15 * * every 1h0m0s": {Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}},
			Calendars: []client.ScheduleCalendarSpec{{Minute: []client.ScheduleRange{r(30, 0, 0)},
				DayOfMonth: []client.ScheduleRange{r(1, 0, 0), r(15, 0, 0)}}}},
	} {
		if got := specText(&spec); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
