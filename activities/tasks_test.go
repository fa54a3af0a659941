package activities

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
)

// countTasks counts the account's tasks of a type in a region, whatever their status.
func countTasks(t *testing.T, a *Activities, region, typ string) int {
	t.Helper()
	ts, err := a.cloud.ListTasks(context.Background(), region)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tk := range ts {
		if tk.Type == typ {
			n++
		}
	}
	return n
}

// A retried ExportImage adopts the task the earlier attempt started: by the heartbeated id, and
// (when the attempt died before its first heartbeat) by looking for it. No second export runs.
func TestRetriedExportAdoptsItsTask(t *testing.T) {
	f := setup(t, func(c *emulator.Config) { c.TaskDuration = 800 * time.Millisecond })
	for _, c := range []string{"by-heartbeat", "by-search"} {
		if err := f.run(f.demo, f.demo.EnsureContainer, nil, ContainerInput{"DFW", c}); err != nil {
			t.Fatal(err)
		}
	}
	var first cloud.Task
	if err := f.run(f.demo, f.demo.StartExport, &first, ExportInput{Region: "DFW", ImageID: f.webID, Container: "by-heartbeat"}); err != nil ||
		first.Done() {
		t.Fatalf("start %+v %v", first, err)
	}
	env := f.suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.demo)
	env.SetHeartbeatDetails(TaskProgress{Region: "DFW", TaskID: first.ID, Type: "export", Status: first.Status})
	v, err := env.ExecuteActivity(
		f.demo.ExportImage,
		ExportInput{Region: "DFW", ImageID: f.webID, Container: "by-heartbeat"},
	)
	var got cloud.Task
	if err != nil || v.Get(&got) != nil || got.ID != first.ID || got.Status != "success" {
		t.Fatalf("retry by heartbeat: %+v %v, want task %s adopted", got, err, first.ID)
	}
	if err := f.run(f.demo, f.demo.StartExport, &first, ExportInput{Region: "DFW", ImageID: f.webID, Container: "by-search"}); err != nil {
		t.Fatal(err)
	}
	if err := f.run(f.demo, f.demo.ExportImage, &got, ExportInput{Region: "DFW", ImageID: f.webID, Container: "by-search"}); err != nil ||
		got.ID != first.ID {
		t.Fatalf("retry without heartbeat: %+v %v, want task %s adopted", got, err, first.ID)
	}
	if n := countTasks(t, f.demo, "DFW", "export"); n != 2 {
		t.Fatalf("%d export tasks for two exports, want 2", n)
	}
}

// A failed task the earlier attempt heartbeated is its outcome; it is not exported again.
func TestRetriedExportReportsItsFailedTask(t *testing.T) {
	f := setup(t)
	_ = f.emu.AddFault(
		emulator.Fault{
			Kind:     "task-failure",
			TaskType: "export",
			Image:    f.webID,
			Count:    1,
			Message:  "Error code 111: disk lost",
		},
	)
	if err := f.run(f.demo, f.demo.EnsureContainer, nil, ContainerInput{"DFW", "exports"}); err != nil {
		t.Fatal(err)
	}
	var first cloud.Task
	if err := f.run(f.demo, f.demo.StartExport, &first, ExportInput{Region: "DFW", ImageID: f.webID, Container: "exports"}); err != nil {
		t.Fatal(err)
	}
	env := f.suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.demo)
	env.SetHeartbeatDetails(TaskProgress{Region: "DFW", TaskID: first.ID})
	_, err := env.ExecuteActivity(
		f.demo.ExportImage,
		ExportInput{Region: "DFW", ImageID: f.webID, Container: "exports"},
	)
	wantAppErr(t, err, ErrTaskFailed, false, "disk lost")
	if n := countTasks(t, f.demo, "DFW", "export"); n != 1 {
		t.Fatalf("%d export tasks, want the one that failed", n)
	}
}

// Task polls answered 413 and 503 for a while are waited out, not returned as failures.
func TestWaitOutlastsPollFaults(t *testing.T) {
	f := setup(t, func(c *emulator.Config) { c.TaskDuration = time.Second })
	if err := f.run(f.demo, f.demo.EnsureContainer, nil, ContainerInput{"DFW", "exports"}); err != nil {
		t.Fatal(err)
	}
	_ = f.emu.AddFault(
		emulator.Fault{
			Kind:       "rate-limit",
			Region:     "DFW",
			Service:    "images",
			Method:     "GET",
			Path:       "/v2/tasks/",
			Count:      6,
			RetryAfter: 1,
		},
	)
	_ = f.emu.AddFault(
		emulator.Fault{Kind: "error", Region: "DFW", Service: "images", Method: "GET", Path: "/v2/tasks/", Count: 3},
	)
	var got cloud.Task
	if err := f.run(f.demo, f.demo.ExportImage, &got, ExportInput{Region: "DFW", ImageID: f.webID, Container: "exports"}); err != nil ||
		got.Status != "success" {
		t.Fatalf("export through poll faults: %+v %v", got, err)
	}
	if n := countTasks(t, f.demo, "DFW", "export"); n != 1 {
		t.Fatalf("%d export tasks, want 1", n)
	}
	if left := f.emu.Faults(); len(left) != 0 {
		t.Fatalf("the polls never met %d of the faults: %+v", len(left), left)
	}
}

// TestNextPollLandsNearTheEnd: a 6-minute task polled with Rackspace's spacing (30 s doubling,
// at most 1 minute under a 2-minute heartbeat timeout) is noticed within seconds of its expected
// end, not up to a minute after it (the doubling backoff alone: 30, 90, 210, 330, 390 s).
func TestNextPollLandsNearTheEnd(t *testing.T) {
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	floor, ceiling := 30*time.Second, time.Minute
	ends := start.Add(6 * time.Minute)
	now, wait := start, floor
	var polls []time.Duration
	for now.Before(ends) {
		now = now.Add(nextPoll(now, ends, wait, floor, ceiling))
		polls = append(polls, now.Sub(start))
		wait = min(2*wait, ceiling)
	}
	if late := now.Sub(ends); late > 10*time.Second {
		t.Fatalf("the poll after the end came %s late (polls at %v)", late, polls)
	}
	for i := 1; i < len(polls); i++ {
		if gap := polls[i] - polls[i-1]; gap < floor {
			t.Fatalf("polls %s apart, closer than the cloud's %s (polls at %v)", gap, floor, polls)
		}
	}
	// Past the expected end, polls space out with the overrun, within floor and ceiling.
	for over, want := range map[time.Duration]time.Duration{time.Second: floor, 20 * time.Minute: floor,
		30 * time.Minute: 45 * time.Second, 10 * time.Hour: ceiling} {
		if got := nextPoll(ends.Add(over), ends, wait, floor, ceiling); got != want {
			t.Errorf("%s past the expected end: next poll in %s, want %s", over, got, want)
		}
	}
	// Whatever the task's phase against the polls, the poll after its end lands within seconds:
	// before, a poll that fell just short of the end forced the next a floor (30 s) later.
	for d := 5 * time.Minute; d <= 7*time.Minute; d += 700 * time.Millisecond {
		now, wait, prev := start, floor, start
		end := start.Add(d)
		for now.Before(end) {
			prev, now = now, now.Add(nextPoll(now, end, wait, floor, ceiling))
			if now.Sub(prev) < floor {
				t.Fatalf("a %s task: polls %s apart, closer than %s", d, now.Sub(prev), floor)
			}
			wait = min(2*wait, ceiling)
		}
		if late := now.Sub(end); late > floor/10+time.Millisecond {
			t.Errorf("a %s task: the poll after its end came %s late", d, late)
		}
	}
	if got := nextPoll(start, time.Time{}, 40*time.Second, floor, ceiling); got != 40*time.Second {
		t.Errorf("without an expected end the backoff's wait is kept; got %s", got)
	}
}

// TestWaitingFactOncePerDoubling: a step is announced once its wait passes the threshold, and
// again only as the wait doubles.
func TestWaitingFactOncePerDoubling(t *testing.T) {
	first := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	info := activity.Info{Attempt: 5, ScheduledTime: first, ActivityID: "7",
		WorkflowExecution: workflow.Execution{ID: "migrate-x", RunID: "r1"},
		WorkflowType:      &workflow.Type{Name: "MigrateImage"}, ActivityType: activity.Type{Name: "Copy"}}
	ids := map[string]bool{}
	for _, waited := range []time.Duration{5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 19 * time.Minute,
		20 * time.Minute, 45 * time.Minute} {
		if f, ok := waitingFact(info, 10*time.Minute, first.Add(waited)); ok {
			ids[f.ID] = true
		} else if waited >= 10*time.Minute {
			t.Fatalf("no fact after %s", waited)
		}
	}
	if len(ids) != 3 { // 10-20, 20-40, 40-80 minutes
		t.Fatalf("fact ids %v, want one per doubling (3)", ids)
	}
	info.Attempt = 1
	if _, ok := waitingFact(info, 10*time.Minute, first.Add(time.Hour)); ok {
		t.Fatal("a first attempt is not waiting out a fault")
	}
}
