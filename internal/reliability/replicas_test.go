package reliability

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestReplicasShareOneConsumer runs three worker processes of one account on one task queue and
// one durable consumer. A large migration and 16 small ones arrive by event; the replica running
// the large copy is killed (SIGKILL) in its middle; a fourth replica is added and 8 more
// migrations arrive. Checked: each command ran once (one run per workflow id, nothing
// dead-lettered), each image was exported by one task and imported once, the copy moved to
// another replica within its heartbeat timeout and resumed, and the added replica took work.
func TestReplicasShareOneConsumer(t *testing.T) {
	const small, later = 16, 8
	imgs := []emulator.SeedImage{{Name: "rep-big", Size: 256 << 20}}
	for i := range small + later {
		imgs = append(imgs, emulator.SeedImage{Name: fmt.Sprintf("rep-%02d", i), Size: 8 << 20})
	}
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.Images, c.ExportSegmentSize = imgs, 32<<20
	}})
	// A slow link into IAD (8 MiB/s per upload) keeps the large copy running long enough to
	// kill a replica under it.
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "bandwidth", Region: "IAD", Service: "files",
		Method: "PUT", BytesPerSecond: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	demo := env.Cloud("demo")
	logs := &testenv.SyncBuffer{}
	opts := []string{"IMAGEFLOW_WORKER_COPY_PARALLELISM=2", "IMAGEFLOW_WORKER_ACTIVITY_CONCURRENCY=8"}
	replicas := []*proc{}
	for range 3 {
		replicas = append(replicas, startWorker(t, env, "demo", "rel-replicas", logs, opts...))
	}
	ctx := context.Background()
	pub := events.NewPublisher(env.JetStream(), testenv.Subjects, "test")
	const heartbeat = 3 * time.Second
	migrate := func(name string) string {
		img := findImage(t, demo, "DFW", name)
		in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
			HeartbeatTimeout: workflows.Duration(heartbeat)}
		if err := pub.Command(ctx, events.CmdMigrate, "rep-"+name, "100001", in); err != nil {
			t.Fatal(err)
		}
		return workflows.MigrateWorkflowID("100001", in)
	}
	ids := []string{migrate("rep-big")}
	for i := range small {
		ids = append(ids, migrate(fmt.Sprintf("rep-%02d", i)))
	}

	// Kill whichever replica runs the large copy once it has finished two segments.
	wait(t, "two segments of the large copy", 2*time.Minute, func() bool {
		return copyProgress(t, env, ids[0]).BytesDone >= 64<<20
	})
	copier, _ := copyAttempt(t, env, ids[0])
	victim := replicaByIdentity(t, replicas, copier)
	atKill := copyProgress(t, env, ids[0])
	victim.kill()
	killed := time.Now()
	var handover time.Duration
	wait(t, "the copy on another replica", time.Minute, func() bool {
		who, attempt := copyAttempt(t, env, ids[0])
		if who != "" && who != copier && attempt > 1 {
			handover = time.Since(killed)
			return true
		}
		return handover == 0 && done(t, env, ids[0])
	})
	added := startWorker(t, env, "demo", "rel-replicas", logs, opts...)
	for i := small; i < small+later; i++ {
		ids = append(ids, migrate(fmt.Sprintf("rep-%02d", i)))
	}
	results := make([]workflows.MigrateResult, len(ids))
	for i, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		err := env.Client.GetWorkflow(cctx, id, "").Get(cctx, &results[i])
		cancel()
		if err != nil || results[i].Targets[0].Status != "succeeded" {
			t.Fatalf("%s: %+v %v\n%s", id, results[i], err, logs.String())
		}
	}
	// The copy resumed: the attempt after the kill sent no segment the killed one had finished
	// (the last heartbeat before the kill says which).
	if sent := results[0].Targets[0].BytesSent; atKill.BytesDone == 0 || sent > (256<<20)-atKill.BytesDone {
		t.Errorf("the copy's last attempt sent %d MiB; %d MiB were done at the kill", sent>>20, atKill.BytesDone>>20)
	}
	checkOnce(t, env, demo, ids, imgs)
	if handover == 0 || handover > 3*heartbeat+5*time.Second {
		t.Errorf("the copy moved to another replica %v after the kill (heartbeat timeout %v)", handover, heartbeat)
	}
	ran := activitiesBy(t, env, ids[1+small:], added)
	if ran == 0 {
		t.Errorf("the replica added under load ran no activity of the later migrations")
	}
	t.Logf("killed replica %s mid-copy; the copy resumed on another after %v; the added replica ran %d "+
		"activities of the %d later migrations", copier, handover.Round(100*time.Millisecond), ran, later)
}

// TestReplicaKilledMidActivity runs three replicas of one account with tasks ten times the
// heartbeat timeout. The replica waiting for the export task is killed (SIGKILL) while the task
// processes, then the one waiting for the import task, then the one in a quick call (carrying
// the properties to the new image, slowed to five times the heartbeat timeout); a supervisor's
// replacement starts after each kill. Each activity must move to a surviving replica within the
// heartbeat timeout (a quick call too: the worker heartbeats for it) and a wait must adopt its
// task there: one export task, one import task and one image.
func TestReplicaKilledMidActivity(t *testing.T) {
	// heartbeat 2 s; tasks of 4 s + 64 MiB in 16 s = 20 s, ten times the heartbeat timeout.
	tm := timing{heartbeat: 2 * time.Second, task: 4 * time.Second, rate: (64 << 20) / 16}
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.TaskDuration, c.TaskBytesPerSecond = tm.task, tm.rate
	}})
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-web-01")
	rs := &replicaSet{t: t, env: env, queue: "rel-replica-kills", logs: &testenv.SyncBuffer{}}
	for range 3 {
		rs.add()
	}
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		HeartbeatTimeout: workflows.Duration(tm.heartbeat)}
	id := workflows.MigrateWorkflowID("100001", in)
	pub := events.NewPublisher(env.JetStream(), testenv.Subjects, "test")
	if err := pub.Command(context.Background(), events.CmdMigrate, "replica-kills", "100001", in); err != nil {
		t.Fatal(err)
	}
	// ExportImage and ImportImage start a task (or adopt the one an earlier attempt started)
	// and wait for it, heartbeating.
	for _, step := range []struct{ region, typ, activity string }{
		{"DFW", "export", "ExportImage"}, {"IAD", "import", "ImportImage"},
	} {
		wait(t, "the "+step.typ+" task to be processing", 2*time.Minute,
			func() bool { return taskIn(t, demo, step.region, step.typ, "processing") })
		time.Sleep(tm.heartbeat / 2) // the waiting replica has polled and heartbeated
		rs.killRunner(id, step.activity, tm.heartbeat)
	}
	// FinishTarget is a quick call (a 2-minute limit) that never heartbeats itself.
	if err := env.Emulator.AddFault(emulator.Fault{Kind: "latency", Region: "IAD", Service: "images",
		Method: "PATCH", Latency: (5 * tm.heartbeat).String()}); err != nil {
		t.Fatal(err)
	}
	wait(t, "the properties to be carried", 2*time.Minute, func() bool {
		who, _ := runningAttempt(t, env, id, "FinishTarget")
		return who != ""
	})
	time.Sleep(tm.heartbeat / 2)
	rs.killRunner(id, "FinishTarget", tm.heartbeat)
	var res workflows.MigrateResult
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.Client.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatalf("migration: %v\n%s", err, rs.logs.String())
	}
	checkOnce(t, env, demo, []string{id}, []emulator.SeedImage{{Name: "demo-web-01"}})
	if n := countTasks(t, demo, "IAD", "import"); n != 1 {
		t.Errorf("%d import tasks in IAD, want 1", n)
	}
}

// replicaSet is a test's worker replicas of the demo account on one queue.
type replicaSet struct {
	t        *testing.T
	env      *testenv.Env
	queue    string
	logs     *testenv.SyncBuffer
	replicas []*proc
}

func (rs *replicaSet) add() {
	rs.replicas = append(rs.replicas, startWorker(rs.t, rs.env, "demo", rs.queue, rs.logs))
}

// killRunner kills the replica running the run's started activity, starts a replacement, and
// checks that another replica took the activity over within the heartbeat timeout (with room
// for the retry's backoff and a poll).
func (rs *replicaSet) killRunner(id, activity string, heartbeat time.Duration) {
	t := rs.t
	runner, attempt := runningAttempt(t, rs.env, id, activity)
	if runner == "" {
		t.Fatalf("no replica runs %s", activity)
	}
	replicaByIdentity(t, rs.replicas, runner).kill()
	killed := time.Now()
	rs.add()
	wait(t, activity+" on another replica", time.Minute, func() bool {
		who, n := runningAttempt(t, rs.env, id, activity)
		return who != "" && who != runner && n > attempt
	})
	took := time.Since(killed)
	if took > 2*heartbeat+5*time.Second {
		t.Errorf("%s moved %v after the kill (heartbeat timeout %v)", activity, took, heartbeat)
	}
	t.Logf("%s: replica %s killed; taken over after %v", activity, runner, took.Round(100*time.Millisecond))
}

// copyProgress is the copy's last heartbeat; zero before the run or the copy starts.
func copyProgress(t *testing.T, env *testenv.Env, id string) cloud.CopyProgress {
	var p cloud.CopyProgress
	d, err := env.Client.DescribeWorkflowExecution(context.Background(), id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return p
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range d.PendingActivities {
		if a.ActivityType.GetName() == "CopyObjectAcrossRegions" && a.HeartbeatDetails != nil {
			if err := converter.GetDefaultDataConverter().FromPayloads(a.HeartbeatDetails, &p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p
}

// copyAttempt is who runs the copy of a migration now, and which attempt it is.
func copyAttempt(t *testing.T, env *testenv.Env, id string) (string, int32) {
	return runningAttempt(t, env, id, "CopyObjectAcrossRegions")
}

// runningAttempt is who runs a migration's started activity of a type now, and which attempt.
func runningAttempt(t *testing.T, env *testenv.Env, id, activity string) (string, int32) {
	d, err := env.Client.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range d.PendingActivities {
		if a.ActivityType.GetName() == activity && a.State == enums.PENDING_ACTIVITY_STATE_STARTED {
			return a.LastWorkerIdentity, a.Attempt
		}
	}
	return "", 0
}

func done(t *testing.T, env *testenv.Env, id string) bool {
	d, err := env.Client.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	return d.WorkflowExecutionInfo.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// replicaByIdentity finds the worker process behind a Temporal worker identity ("pid@host@").
func replicaByIdentity(t *testing.T, replicas []*proc, identity string) *proc {
	for _, p := range replicas {
		if strings.HasPrefix(identity, fmt.Sprintf("%d@", p.cmd.Process.Pid)) {
			return p
		}
	}
	t.Fatalf("no replica has identity %q", identity)
	return nil
}

// checkOnce asserts each migration ran once and made one export and one image.
func checkOnce(t *testing.T, env *testenv.Env, demo *cloud.Client, ids []string, imgs []emulator.SeedImage) {
	ctx := context.Background()
	for _, id := range ids {
		resp, err := env.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: env.Namespace, Query: fmt.Sprintf("WorkflowId = '%s'", id)})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.Executions); n != 1 {
			t.Errorf("%s ran %d times", id, n)
		}
	}
	tasks, err := demo.ListTasks(ctx, "DFW")
	if err != nil {
		t.Fatal(err)
	}
	exports := 0
	for _, tk := range tasks {
		if tk.Type == "export" {
			exports++
		}
	}
	if exports != len(ids) {
		t.Errorf("%d export tasks for %d migrations", exports, len(ids))
	}
	for _, s := range imgs[:len(ids)] {
		if n := countImages(t, demo, "IAD", findImage(t, demo, "DFW", s.Name).ID); n != 1 {
			t.Errorf("%d images in IAD for %s, want 1", n, s.Name)
		}
	}
	if dead := deadLetters(t, env); dead != 0 {
		t.Errorf("%d dead letters", dead)
	}
}

// deadLetters counts the messages on the dead-letter subject.
func deadLetters(t *testing.T, env *testenv.Env) uint64 {
	st, err := env.JetStream().Stream(context.Background(), "IMAGEFLOW")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(testenv.Subjects.DLQ()))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, count := range info.State.Subjects {
		n += count
	}
	return n
}

// activitiesBy counts activity attempts the process p started in the runs ids.
func activitiesBy(t *testing.T, env *testenv.Env, ids []string, p *proc) int {
	prefix := fmt.Sprintf("%d@", p.cmd.Process.Pid)
	n := 0
	for _, id := range ids {
		it := env.Client.GetWorkflowHistory(context.Background(), id, "", false,
			enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && strings.HasPrefix(a.Identity, prefix) {
				n++
			}
		}
	}
	return n
}
