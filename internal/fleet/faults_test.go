package fleet

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// Production's times, which the tests below divide by scale: 6-minute tasks polled from 30 s
// doubling to 2 minutes under a 2-minute heartbeat timeout, the backoff capped at 5 minutes, a
// down host probed every 5 s, and the goals: work resumed and migration.completed within 15 s.
const (
	prodTask      = 6 * time.Minute
	prodPoll      = 30 * time.Second
	prodPollMax   = 2 * time.Minute
	prodHeartbeat = 2 * time.Minute
	prodBackoff   = 5 * time.Minute
	prodProbe     = 5 * time.Second
	prodGoal      = 15 * time.Second
	// fixedCost is what does not scale with the times above: Temporal handing an activity to the
	// worker, a workflow task, the facts' publish. Tens of milliseconds each on an idle machine;
	// under CI's load (every package's tests at once on two cores) a resumption took 0.6 s. A wait
	// that fell back on the backoff instead of the shared probe resumes seconds late here.
	fixedCost = time.Second
)

// scale is how many times faster than production the tests run: 60, or 10 with
// IMAGEFLOW_LONG_TESTS=1 (a 6-minute outage lasts 36 s).
func scale() time.Duration {
	if os.Getenv("IMAGEFLOW_LONG_TESTS") == "1" {
		return 10
	}
	return 60
}

func scaled(d time.Duration) time.Duration { return d / scale() }

// faultRig is one migration of demo-web-01 (64 MiB) from DFW to IAD on a worker configured as in
// production (shared host health, task polls, heartbeats, backoff), scaled.
type faultRig struct {
	t    *testing.T
	env  *testenv.Env
	demo *cloud.Client
	cnt  *counter
	img  cloud.Image
	run  client.WorkflowRun
}

// newFaultRig starts the stack and the worker; the emulator's tasks take task.
func newFaultRig(t *testing.T, task time.Duration) *faultRig {
	const size = 64 << 20
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.ExportSegmentSize, c.TaskDuration = 16<<20, 0
		c.TaskBytesPerSecond = int64(float64(size) / task.Seconds())
	}})
	r := &faultRig{t: t, env: env, demo: env.Cloud("demo"), cnt: newCounter()}
	env.StartWorker("demo", testenv.WorkerOptions{Events: true, HostProbeEvery: scaled(prodProbe), Transport: r.cnt,
		Tune: func(c *activities.Config) {
			c.TaskPollInterval, c.TaskPollMaxInterval = scaled(prodPoll), scaled(prodPollMax)
			c.TaskRate = float64(size) / task.Seconds()
		}})
	imgs, err := r.demo.ListImages(context.Background(), "DFW", cloud.ImageFilter{Name: "demo-web-01"})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("demo-web-01: %v %v", imgs, err)
	}
	r.img = imgs[0]
	return r
}

// start starts the migration.
func (r *faultRig) start() {
	in := workflows.MigrateInput{ImageID: r.img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		HeartbeatTimeout: workflows.Duration(scaled(prodHeartbeat)),
		MaxRetryInterval: workflows.Duration(scaled(prodBackoff))}
	run, err := r.env.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: workflows.MigrateWorkflowID("100001", in), TaskQueue: testenv.TaskQueue("demo")},
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		r.t.Fatal(err)
	}
	r.run = run
}

// await polls the run's status until ok says so.
func (r *faultRig) await(what string, ok func(workflows.MigrateStatus) bool) workflows.MigrateStatus {
	r.t.Helper()
	deadline := time.Now().Add(3 * scaled(prodTask))
	for time.Now().Before(deadline) {
		var st workflows.MigrateStatus
		if v, err := r.env.Client.QueryWorkflow(context.Background(), r.run.GetID(), "", workflows.StatusQuery); err ==
			nil && v.Get(&st) == nil && ok(st) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("the migration never got to %s", what)
	return workflows.MigrateStatus{}
}

// inject adds a fault.
func (r *faultRig) inject(f emulator.Fault) {
	r.t.Helper()
	if err := r.env.Emulator.AddFault(f); err != nil {
		r.t.Fatal(err)
	}
}

// fault injects f for outage (see hold).
func (r *faultRig) fault(f emulator.Fault, outage time.Duration, prefix string) time.Time {
	r.t.Helper()
	r.inject(f)
	return r.hold(outage, prefix)
}

// hold keeps the faults for outage, and says, halfway through, that the run's status names the
// wait with prefix first, within the 300 characters `starter status` shows; it returns when the
// faults ended.
func (r *faultRig) hold(outage time.Duration, prefix string) time.Time {
	r.t.Helper()
	time.Sleep(outage / 2)
	st := r.await("its wait", func(st workflows.MigrateStatus) bool { return st.Waiting != nil })
	if text := st.Waiting.Text(); !strings.HasPrefix(text, prefix) || len(text) > 300 {
		r.t.Errorf("the run's wait during the outage: %q, want %q first, within 300 characters", text, prefix)
	}
	time.Sleep(outage - outage/2)
	r.env.Emulator.ClearFaults()
	return time.Now()
}

// finish waits for the migration and its cleanup and checks they left one image and no objects.
func (r *faultRig) finish() (workflows.MigrateResult, time.Time) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*scaled(prodTask)+time.Minute)
	defer cancel()
	var res workflows.MigrateResult
	if err := r.run.Get(ctx, &res); err != nil {
		r.t.Fatalf("migration: %v", err)
	}
	ended := time.Now()
	r.env.AwaitCleanup(res.Cleanup)
	imgs, err := r.demo.ListImages(ctx, "IAD", cloud.ImageFilter{Properties: map[string]string{
		"imageflow_source_image_id": r.img.ID}})
	if err != nil || len(imgs) != 1 {
		r.t.Errorf("%d images in IAD (%v), want 1", len(imgs), err)
	}
	for _, region := range []string{"DFW", "IAD"} {
		if n := testenv.Leftovers(r.t, r.demo, region); n != 0 {
			r.t.Errorf("%d intermediate objects left in %s", n, region)
		}
	}
	return res, ended
}

// resumed is how long after recovery the jobs' first own request to a service succeeded; it must
// come within production's goal, scaled.
func (r *faultRig) resumed(service string, recovered time.Time) time.Duration {
	r.t.Helper()
	first := r.cnt.firstOwnOK(service, recovered)
	if first.IsZero() {
		r.t.Fatalf("no request to %s succeeded after the recovery", service)
	}
	if d := first.Sub(recovered); d > scaled(prodGoal)+fixedCost {
		r.t.Errorf("work resumed %s after the recovery, want within %s (production's %s) and %s", d,
			scaled(prodGoal), prodGoal, fixedCost)
	}
	return first.Sub(recovered)
}

// TestSourceResetsWaitedOutInTheCopy: the source's storage (DFW) breaks every read off after 4
// MiB for 3 minutes of production's time. The copy waits inside its attempt, the run saying
// "DFW files: ..." (it used to blame IAD, the PUT's side), and its pieces resume within a probe
// interval of the recovery (it resumed 98 s after, at Temporal's backoff).
func TestSourceResetsWaitedOutInTheCopy(t *testing.T) {
	r := newFaultRig(t, scaled(time.Minute))
	// From the start: the export is the cloud's own work, and a copy on loopback is over in a blink.
	r.inject(emulator.Fault{Kind: "reset", Region: "DFW", Service: "files", Method: "GET", AfterBytes: 4 << 20})
	r.start()
	r.await("the copy", func(st workflows.MigrateStatus) bool { return st.Targets["IAD"] == "copying" })
	recovered := r.hold(scaled(3*time.Minute), "DFW files:")
	r.finish()
	d := r.resumed(serviceOf(t, r.demo, "DFW", "files"), recovered)
	t.Logf("source reads resumed %s after a %s outage of resets (production: %s)", d, scaled(3*time.Minute),
		d*scale())
}

// TestImagesOutageDuringTheImportPollAsAFleet: IAD's images service answers 503 for 6 minutes of
// production's time while the worker polls a 6-minute import task. After three failures one
// probe watches IAD's images, the run says "IAD images: ...", and the poll answers within a
// probe interval of the recovery.
func TestImagesOutageDuringTheImportPollAsAFleet(t *testing.T) {
	r := newFaultRig(t, scaled(prodTask))
	r.start()
	r.await("the import", func(st workflows.MigrateStatus) bool { return st.Targets["IAD"] == "importing" })
	recovered := r.fault(emulator.Fault{Kind: "error", Region: "IAD", Service: "images", Status: 503},
		scaled(prodTask), "IAD images:")
	r.finish()
	d := r.resumed(serviceOf(t, r.demo, "IAD", "images"), recovered)
	t.Logf("the import's poll answered %s after a %s outage (production: %s)", d, scaled(prodTask), d*scale())
}

// TestStorageOutageDuringCleanupAsAFleet: DFW's storage answers 503 for 5 minutes of production's
// time from the import on. migration.completed comes when the worker sees the image active,
// within production's 15 s scaled (cleanup held it 8.5 minutes); the cleanup run waits, its deletes
// resume within a probe interval of the recovery, and nothing is left.
func TestStorageOutageDuringCleanupAsAFleet(t *testing.T) {
	r := newFaultRig(t, scaled(time.Minute))
	completed := r.env.Collect(testenv.Subjects.AllFacts(activities.FactMigrationCompleted))
	r.start()
	r.await("the import", func(st workflows.MigrateStatus) bool { return st.Targets["IAD"] == "importing" })
	if err := r.env.Emulator.AddFault(emulator.Fault{Kind: "error", Region: "DFW", Service: "files",
		Status: 503}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	ctx := context.Background()
	var res workflows.MigrateResult
	if err := r.run.Get(ctx, &res); err != nil {
		t.Fatalf("migration: %v", err)
	}
	active := importSeen(t, r)
	for len(completed.All()) == 0 && time.Since(active) < 2*scaled(prodGoal)+fixedCost {
		time.Sleep(5 * time.Millisecond)
	}
	held := time.Since(active)
	if n := len(completed.All()); held > scaled(prodGoal)+fixedCost || n != 1 {
		t.Errorf("%d migration.completed facts, %s after the worker saw the image active; want one within %s "+
			"and %s", n, held, scaled(prodGoal), fixedCost)
	}
	time.Sleep(scaled(5*time.Minute) - time.Since(began))
	r.env.Emulator.ClearFaults()
	recovered := time.Now()
	cleaned := r.env.AwaitCleanup(res.Cleanup)
	d := r.resumed(serviceOf(t, r.demo, "DFW", "files"), recovered)
	if cleaned.ObjectsDeleted == 0 {
		t.Error("the cleanup run deleted nothing")
	}
	r.finish()
	t.Logf("migration.completed %s after the image was active; cleanup's deletes resumed %s after the "+
		"recovery (production: %s)", held.Round(time.Millisecond), d, d*scale())
}

// importSeen is when the worker's poll first saw the migration's import task ended (its image
// active), by the emulator's clock: how soon a poll notices is TestTaskWaitsEndOnTime's concern.
func importSeen(t *testing.T, r *faultRig) time.Time {
	ts, err := r.demo.ListTasks(context.Background(), "IAD")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if tk.Type == "import" {
			_, seen := r.env.Emulator.TaskEnds("IAD", tk.ID)
			return seen
		}
	}
	t.Fatalf("no import task in IAD among %d", len(ts))
	return time.Time{}
}
