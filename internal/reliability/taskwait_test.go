package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/internal/testenv"
	"github.com/imageflow/imageflow/workflows"
)

// TestTaskWaitsEndOnTime: at production's ratios (6-minute tasks, polls 30 s apart doubling to
// a minute under a 2-minute heartbeat timeout), scaled down 60 times (6 s tasks, 500 ms, 1 s,
// 2 s), a migration's export and import are each noticed within 5% of their duration after they
// end. A watcher polls the cloud every 20 ms to learn when each task ended; the workflow's
// history says when the worker noticed. The doubling backoff alone noticed a finished task up to
// a poll ceiling late (8% of a task on average here, 8.5% measured on devstack).
func TestTaskWaitsEndOnTime(t *testing.T) {
	const image = 8 << 20
	env := testenv.New(t, testenv.Options{Emulator: func(c *emulator.Config) {
		// 1 s fixed plus 5 s of processing: whole seconds, so the cloud's second-resolution
		// timestamps measure the task rate exactly, as minutes-long tasks make them in production.
		// A small image keeps the emulator's own work (copying and hashing the bytes, which is
		// not scaled) to a few milliseconds, as it is a negligible part of a real task.
		c.TaskDuration, c.TaskBytesPerSecond = time.Second, image/5
		c.Images = append(c.Images, emulator.SeedImage{Name: "small-01", Size: image})
	}})
	demo := env.Cloud("demo")
	img := findImage(t, demo, "DFW", "small-01")
	logs := &testenv.SyncBuffer{}
	startWorker(t, env, "demo", "rel-taskwait", logs, "IMAGEFLOW_NATS_DISABLED=true",
		"IMAGEFLOW_WORKER_TASK_POLL_INTERVAL=500ms", "IMAGEFLOW_WORKER_TASK_POLL_MAX_INTERVAL=2s",
		fmt.Sprintf("IMAGEFLOW_WORKER_ESTIMATE_TASK_RATE=%d", image/6))
	ended := watchTaskEnds(t, env, map[string]string{"DFW": "export", "IAD": "import"})
	in := workflows.MigrateInput{ImageID: img.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		HeartbeatTimeout: workflows.Duration(2 * time.Second)}
	ctx := context.Background()
	run, err := env.Client.ExecuteWorkflow(ctx, start(workflows.MigrateWorkflowID("100001", in), "rel-taskwait"),
		workflows.MigrateImageWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	noticed := activityEnds(t, env, run.GetID())
	for typ, activity := range map[string]string{"export": "ExportImage", "import": "ImportImage"} {
		end, ok := ended.at(typ)
		if !ok || noticed[activity].IsZero() {
			t.Fatalf("%s task ended %v (%v), %s completed %v", typ, end, ok, activity, noticed[activity])
		}
		late := noticed[activity].Sub(end)
		t.Logf("%s task noticed %s after it ended (%.1f%% of 6 s)", typ, late.Round(time.Millisecond),
			100*late.Seconds()/6)
		if late > 300*time.Millisecond { // 5% of 6 s
			t.Errorf("%s task noticed %s after it ended, more than 5%% of its 6 s", typ, late)
		}
	}
}

// taskEnds records when the watcher first saw each kind of task succeed.
type taskEnds struct {
	mu   sync.Mutex
	ends map[string]time.Time
}

func (e *taskEnds) at(typ string) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.ends[typ]
	return t, ok
}

// watchTaskEnds polls the demo account's tasks (region -> type) every 20 ms until the test ends.
func watchTaskEnds(t *testing.T, env *testenv.Env, kinds map[string]string) *taskEnds {
	e := &taskEnds{ends: map[string]time.Time{}}
	demo := env.Cloud("demo")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			for region, typ := range kinds {
				ts, err := demo.ListTasks(ctx, region)
				if err != nil {
					continue
				}
				for _, tk := range ts {
					if tk.Type == typ && tk.Status == "success" {
						e.mu.Lock()
						if _, seen := e.ends[typ]; !seen {
							e.ends[typ] = time.Now()
						}
						e.mu.Unlock()
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return e
}

// activityEnds maps each activity type of a run to when its (last) attempt completed.
func activityEnds(t *testing.T, env *testenv.Env, id string) map[string]time.Time {
	names := map[int64]string{}
	out := map[string]time.Time{}
	it := env.Client.GetWorkflowHistory(context.Background(), id, "", false,
		enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			names[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			out[names[a.GetScheduledEventId()]] = ev.GetEventTime().AsTime()
		}
	}
	return out
}
