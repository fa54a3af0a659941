package reliability

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestPartitionsFromTemporalAndNATS cuts a worker process off the network, as a partition does
// (connections left open, nothing moving), first from Temporal while it waits on an export task,
// then from NATS while a command is published and facts are due. Production's cut is 2 minutes
// against a 2-minute heartbeat timeout; scaled, 6 s against 3 s (twice the heartbeat timeout,
// so Temporal gives the waiting activity up and hands it on). Nothing may be lost (each command
// runs, each migration ends with its facts) and nothing done twice (one export task, one
// import task and one image per target; one run per command).
func TestPartitionsFromTemporalAndNATS(t *testing.T) {
	heartbeat, cut := 3*time.Second, 6*time.Second
	if long() {
		heartbeat, cut = 2*time.Minute, 2*time.Minute
	}
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		c.TaskDuration, c.TaskBytesPerSecond = 4*heartbeat, 0
	}})
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "demo-web-01")
	toTemporal := testenv.NewPartition(t, env.TemporalAddr)
	toNATS := testenv.NewPartition(t, strings.TrimPrefix(env.NATSURL, "nats://"))
	logs := &testenv.SyncBuffer{}
	startWorker(t, env, "demo", testenv.TaskQueue("demo"), logs,
		"IMAGEFLOW_TEMPORAL_ADDRESS="+toTemporal.Addr(), "IMAGEFLOW_NATS_URL=nats://"+toNATS.Addr())
	pub := events.NewPublisher(env.JetStream(), testenv.Subjects, "partition-test")
	ctx := context.Background()
	migrate := func(id, to string) workflows.MigrateInput {
		in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{to},
			HeartbeatTimeout: workflows.Duration(heartbeat), MaxRetryInterval: workflows.Duration(heartbeat / 2)}
		if err := pub.Command(ctx, events.CmdMigrate, id, "100001", in); err != nil {
			t.Fatal(err)
		}
		return in
	}
	budget := 2*time.Minute + 10*cut

	// Cut from Temporal while the worker waits on the export task.
	first := migrate("part-1", "IAD")
	wait(t, "the export to be processing", budget, func() bool { return taskIn(t, demo, "DFW", "export", "processing") })
	toTemporal.Cut()
	time.Sleep(cut)
	toTemporal.Heal()
	waitDone(t, env, workflows.MigrateWorkflowID("100001", first), budget, logs)

	// Cut from NATS while a command is published and the first migration's facts are due.
	toNATS.Cut()
	second := migrate("part-2", "ORD")
	time.Sleep(cut)
	toNATS.Heal()
	waitDone(t, env, workflows.MigrateWorkflowID("100001", second), budget, logs)

	// Each migration exports into a container of its own: one export each, two in all.
	counts := map[string]int{"DFW export": countTasks(t, demo, "DFW", "export") - 1,
		"IAD import": countTasks(t, demo, "IAD", "import"), "ORD import": countTasks(t, demo, "ORD", "import"),
		"IAD image": countImages(t, demo, "IAD", img.ID), "ORD image": countImages(t, demo, "ORD", img.ID)}
	for what, n := range counts {
		if n != 1 {
			t.Errorf("%d of %s, want exactly 1 per migration", n, what)
		}
	}
	for _, in := range []workflows.MigrateInput{first, second} {
		id := workflows.MigrateWorkflowID("100001", in)
		if n := env.Runs(id); n != 1 {
			t.Errorf("%d runs of %s, want 1", n, id)
		}
	}
	if n := factsIn(t, env, testenv.Subjects.AllFacts("migration.completed")); n != 2 {
		t.Errorf("%d migration.completed facts in the stream, want 2 (one per migration)", n)
	}
	t.Logf("counts %v after a %s cut from Temporal and one from NATS", counts, cut)
	scanForSecrets(t, env, logs.String())
}

// waitDone waits for the run id to exist and complete successfully.
func waitDone(t *testing.T, env *testenv.Env, id string, budget time.Duration, logs *testenv.SyncBuffer) {
	t.Helper()
	wait(t, "run "+id+" to start", budget, func() bool { return env.Runs(id) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	if err := env.Client.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
		t.Fatalf("run %s: %v\n%s", id, err, logs.String())
	}
}

// factsIn counts the stream's messages on subject.
func factsIn(t *testing.T, env *testenv.Env, subject string) uint64 {
	t.Helper()
	st, err := env.JetStream().Stream(context.Background(), "IMAGEFLOW")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, count := range info.State.Subjects { // subject may be a wildcard: every match counts
		n += count
	}
	return n
}
