package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
)

var source = cloud.Image{
	ID:       "img-1",
	Name:     "web-01",
	Status:   "active",
	Owner:    "100001",
	Checksum: "abc",
	Size:     64 << 20,
	Tags: []string{
		"web",
	},
	Properties: map[string]string{"app": "web", "image_type": "snapshot", "com.rackspace__1__options": "0"},
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	Register(env)
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

// calls records which activities ran with which inputs. The test environment runs a
// workflow's parallel activities (one per target) on goroutines of their own.
type calls struct {
	mu    sync.Mutex
	names []string
}

func (c *calls) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, s)
}

func (c *calls) has(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.names {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// mockMigration answers every migration activity; failCopy names regions whose copy fails and
// existing names regions that already hold this migration's image.
func mockMigration(
	env *testsuite.TestWorkflowEnvironment,
	c *calls,
	failCopy map[string]bool,
	existing map[string]string,
) {
	env.OnActivity(a.CheckExportable, mock.Anything, mock.Anything).Return(source, nil)
	mockFacts(env, c)
	env.OnActivity(a.DescribeRegions, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.DescribeInput) (map[string]activities.RegionInfo, error) {
			out := map[string]activities.RegionInfo{}
			for _, r := range in.Regions {
				out[r] = activities.RegionInfo{ObjectStore: true}
			}
			return out, nil
		}).
		Maybe()
	env.OnActivity(a.EstimateMigration, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.EstimateInput) (activities.Estimate, error) {
			return testRates.Estimate(in.Bytes, in.Export), nil
		}).
		Maybe()
	env.OnWorkflow(ShareImageWorkflow, mock.Anything, mock.Anything).
		Return(func(_ workflow.Context, in ShareInput) (ShareResult, error) {
			c.add("share " + in.Region + " " + strings.Join(in.Members, ","))
			return ShareResult{}, nil
		}).
		Maybe()
	env.OnActivity(a.FindImagesByProperty, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.FindImagesInput) (map[string]cloud.Image, error) {
			out := map[string]cloud.Image{}
			for _, r := range in.Regions {
				if id, ok := existing[r]; ok {
					out[r] = cloud.Image{ID: id, Checksum: "abc"}
				}
			}
			return out, nil
		}).
		Maybe()
	env.OnActivity(a.ExportImage, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.ExportInput) (cloud.Task, error) {
			c.add("export")
			return cloud.Task{
				ID:     "t-exp",
				Status: "success",
				Result: map[string]string{"export_location": "c/img-1.vhd"},
			}, nil
		}).
		Maybe()
	env.OnActivity(a.CopyObjectAcrossRegions, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.CopyInput) (cloud.CopyResult, error) {
			c.add("copy " + in.Target.Region)
			if failCopy[in.Target.Region] {
				return cloud.CopyResult{}, temporal.NewNonRetryableApplicationError("link down", "Unavailable", nil)
			}
			return cloud.CopyResult{Bytes: 64 << 20, BytesSent: 64 << 20, Segments: 1}, nil
		}).
		Maybe()
	env.OnActivity(a.ImportImage, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.ImportInput) (cloud.Task, error) {
			c.add("import " + in.Region)
			return cloud.Task{
				ID:     "t-imp-" + in.Region,
				Status: "success",
				Result: map[string]string{"image_id": "new-" + in.Region},
			}, nil
		}).
		Maybe()
	env.OnActivity(a.FinishTarget, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.FinishTargetInput) (cloud.Image, error) {
			u := in.Update
			c.add(
				"update " + u.Region + " " + u.Properties[PropMigrationID] + " app=" + u.Properties["app"] + " type=" + u.Properties["image_type"] + " tags=" + strings.Join(
					u.Tags,
					",",
				),
			)
			c.add("fact " + in.Fact.Type)
			c.add(fmt.Sprintf("fact %s reused=%v", u.Region, in.Fact.Data["reused"]))
			return cloud.Image{ID: u.ImageID, Checksum: "abc"}, nil
		}).
		Maybe()
	env.OnActivity(a.FinishMigration, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.FinishMigrationInput) (int, error) {
			c.add("fact " + in.Fact.Type)
			if in.Cleanup == nil {
				return 0, nil
			}
			for _, r := range in.Cleanup.Regions {
				c.add("cleanup " + r)
			}
			return 3 * len(in.Cleanup.Regions), nil
		}).
		Maybe()
}

// mockFacts records the facts a migration publishes and, at its end (Conclude), the fact and the
// regions whose objects it hands to its cleanup run.
func mockFacts(env *testsuite.TestWorkflowEnvironment, c *calls) {
	env.OnActivity(a.PublishFact, mock.Anything, mock.Anything).
		Return(func(_ context.Context, f activities.Fact) error {
			c.add("fact " + f.Type)
			return nil
		}).Maybe()
	env.OnActivity(a.Conclude, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.ConcludeInput) (string, error) {
			c.add("fact " + in.Fact.Type)
			if in.Then == nil {
				return "", nil
			}
			var req CleanupRequest
			if err := json.Unmarshal(in.Then.Input, &req); err != nil {
				return "", err
			}
			for _, part := range []*activities.CleanupInput{req.Own, req.Peer} {
				if part != nil {
					for _, r := range part.Regions {
						c.add("cleanup " + r)
					}
				}
			}
			return in.Then.WorkflowID, nil
		}).Maybe()
}

// testRates make the 64 MiB source take 64 s to export, 32 s to copy and 64 s to import.
var testRates = activities.Rates{CopyBytesPerSecond: 2 << 20, TaskBytesPerSecond: 1 << 20, Basis: "configured"}

func migrateInput() MigrateInput {
	return MigrateInput{
		ImageID:       "img-1",
		SourceRegion:  "dfw",
		TargetRegions: []string{"IAD", "lon"},
		ShareWith:     []string{"100002"},
	}
}

func TestMigrateSucceeds(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	mockMigration(env, c, nil, nil)
	env.SetStartWorkflowOptions(clientStart("migrate-100001-x"))
	env.ExecuteWorkflow(MigrateImage, migrateInput())
	var res MigrateResult
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	_ = env.GetWorkflowResult(&res)
	if len(res.Targets) != 2 || res.Targets[0].ImageID != "new-IAD" || res.Targets[1].ImageID != "new-LON" ||
		!strings.HasPrefix(res.Cleanup, "cleanup--migrate-100001-x@") ||
		res.Checksum != "abc" {
		t.Fatalf("result %+v", res)
	}
	for _, want := range []string{"export", "copy IAD", "copy LON", "import IAD", "import LON",
		"update IAD migrate-100001-x app=web type= tags=web", "update LON migrate-100001-x app=web type= tags=web",
		"share IAD 100002", "share LON 100002", "cleanup DFW", "cleanup IAD", "cleanup LON",
		"fact migration.started", "fact migration.target-completed", "fact migration.completed"} {
		if c.has(want) == 0 {
			t.Errorf("no %q among %v", want, c.names)
		}
	}
	var st MigrateStatus
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil || v.Get(&st) != nil || st.Step != "done" || st.Targets["IAD"] != "done" {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestMigrateValidationFailsAtOnce(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	env.OnActivity(a.CheckExportable, mock.Anything, mock.Anything).Return(cloud.Image{},
		temporal.NewNonRetryableApplicationError("image img-1 (rhel) in DFW carries licensed software", activities.ErrNotExportable, nil),
	)
	mockFacts(env, c)
	env.ExecuteWorkflow(MigrateImage, migrateInput())
	err := env.GetWorkflowError()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != activities.ErrNotExportable ||
		!strings.Contains(err.Error(), "licensed software") {
		t.Fatalf("error %v", err)
	}
	if c.has("fact migration.failed") != 1 || c.has("fact migration.started") != 0 {
		t.Fatalf("facts %v", c.names)
	}
}

func TestMigrateRejectsBadRequests(t *testing.T) {
	for _, in := range []MigrateInput{
		{SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
		{ImageID: "x", SourceRegion: "MARS/1", TargetRegions: []string{"IAD"}},
		{ImageID: "x", SourceRegion: "DFW"},
		{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"DFW"}},
		{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"IAD", "iad"}},
		{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"IAD"}, Policy: "most"},
		{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"IAD"}, Cleanup: "sometimes"},
	} {
		env := newEnv(t)
		env.ExecuteWorkflow(MigrateImage, in)
		var ae *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != ErrInvalidRequest {
			t.Errorf("%+v: %v", in, err)
		}
	}
}

func TestMigrateAllPolicyFailsOnOneTarget(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	mockMigration(env, c, map[string]bool{"IAD": true}, nil)
	env.ExecuteWorkflow(MigrateImage, migrateInput())
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "IAD: copy") || !strings.Contains(err.Error(), "link down") {
		t.Fatalf("error %v", err)
	}
	if c.has("cleanup") != 0 || c.has("fact migration.failed") != 1 {
		t.Fatalf("on-success cleanup ran after a failure, or no failed fact: %v", c.names)
	}
}

// TestMigrateMendsACopyOnce: an import whose checksum is not the source's is answered by one
// recheck of the copy and one more import (which must not adopt the first import's task); when
// that one fails its check too, the target fails and its image is left for inspection.
func TestMigrateMendsACopyOnce(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	var imports []activities.ImportInput
	var copies []activities.CopyInput
	env.OnActivity(a.CopyObjectAcrossRegions, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.CopyInput) (cloud.CopyResult, error) {
			copies = append(copies, in)
			return cloud.CopyResult{Bytes: 64 << 20, BytesSent: 64 << 20, Segments: 4}, nil
		})
	env.OnActivity(a.ImportImage, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.ImportInput) (cloud.Task, error) {
			imports = append(imports, in)
			n := fmt.Sprint(len(imports))
			return cloud.Task{}, temporal.NewNonRetryableApplicationError("checksum", activities.ErrIntegrity, nil,
				activities.IntegrityFailure{ImageID: "bad-" + n, TaskID: "t-" + n, Deleted: in.DeleteMismatch})
		})
	mockMigration(env, c, nil, nil)
	in := migrateInput()
	in.TargetRegions, in.ShareWith = []string{"IAD"}, nil
	env.ExecuteWorkflow(MigrateImage, in)
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "IAD: import") {
		t.Fatalf("error %v, want the second import's failure", err)
	}
	if len(copies) != 2 || !copies[0].ProvenAtEnd || copies[0].Recheck || !copies[1].Recheck {
		t.Fatalf("copies %+v: want a proven copy, then one recheck", copies)
	}
	if len(imports) != 2 || !imports[0].DeleteMismatch || imports[1].DeleteMismatch || imports[1].NotTask != "t-1" {
		t.Fatalf("imports %+v: want the first's image deleted, the second kept and not adopting t-1", imports)
	}
}

func TestMigrateBestEffortAndCleanupAlways(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	mockMigration(env, c, map[string]bool{"IAD": true}, nil)
	in := migrateInput()
	in.Policy, in.Cleanup = PolicyBestEffort, CleanupAlways
	env.ExecuteWorkflow(MigrateImage, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res MigrateResult
	_ = env.GetWorkflowResult(&res)
	if res.Targets[0].Status != "failed" || res.Targets[1].Status != "succeeded" || c.has("cleanup") != 3 {
		t.Fatalf("result %+v calls %v", res, c.names)
	}
	// Both targets failing fails the migration even under best effort, and cleanup never keeps objects.
	env = newEnv(t)
	c = &calls{}
	mockMigration(env, c, map[string]bool{"IAD": true, "LON": true}, nil)
	in.Cleanup = CleanupNever
	env.ExecuteWorkflow(MigrateImage, in)
	if err := env.GetWorkflowError(); err == nil || c.has("cleanup") != 0 {
		t.Fatalf("all targets failed: %v %v", err, c.names)
	}
}

func TestMigrateRerunReusesImages(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	mockMigration(env, c, nil, map[string]string{"IAD": "old-iad", "LON": "old-lon"})
	env.ExecuteWorkflow(MigrateImage, migrateInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res MigrateResult
	_ = env.GetWorkflowResult(&res)
	if c.has("export") != 0 || c.has("copy") != 0 || c.has("import") != 0 {
		t.Fatalf("a re-run exported or imported again: %v", c.names)
	}
	if !res.Targets[0].Reused || res.Targets[0].ImageID != "old-iad" || c.has("update") != 2 {
		t.Fatalf("result %+v calls %v", res, c.names)
	}
	// The target-completed fact says the copy was reused, not a copy of nothing (issue 43).
	if c.has("fact IAD reused=true") != 1 || c.has("fact LON reused=true") != 1 {
		t.Fatalf("target-completed facts do not say reused: %v", c.names)
	}
}

func TestMigrateOneTargetAlreadyDone(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	mockMigration(env, c, nil, map[string]string{"IAD": "old-iad"})
	env.ExecuteWorkflow(MigrateImage, migrateInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if c.has("export") != 1 || c.has("copy IAD") != 0 || c.has("copy LON") != 1 {
		t.Fatalf("calls %v", c.names)
	}
}

func TestMigrateWorkflowIDIsStable(t *testing.T) {
	a := MigrateWorkflowID(
		"100001",
		MigrateInput{ImageID: "x", SourceRegion: "dfw", TargetRegions: []string{"LON", "iad"}},
	)
	b := MigrateWorkflowID(
		"100001",
		MigrateInput{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"IAD", "LON"}},
	)
	if a != b || !strings.HasPrefix(a, "migrate-100001-DFW-x-to-IAD+LON-") {
		t.Fatalf("%s vs %s", a, b)
	}
	// A request that changes the outcome is another job; defaults spelled out are the same one.
	named := MigrateWorkflowID(
		"100001",
		MigrateInput{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"IAD", "LON"},
			TargetName: "web (copy)"},
	)
	spelled := MigrateWorkflowID(
		"100001",
		MigrateInput{ImageID: "x", SourceRegion: "DFW", TargetRegions: []string{"IAD", "LON"},
			Policy: PolicyAll, Cleanup: CleanupOnSuccess},
	)
	if named == a || spelled != a {
		t.Fatalf("target_name did not change the id (%s) or spelled-out defaults did (%s vs %s)", named, spelled, a)
	}
	// A deadline is a time ("6h" from each start): part of the id, every repeat would be a new job.
	// The README's table says a request differing only in it joins the run going (issue 40).
	deadlined := MigrateWorkflowID("100001", MigrateInput{ImageID: "x", SourceRegion: "DFW",
		TargetRegions: []string{"IAD", "LON"}, Deadline: time.Date(2026, 12, 7, 4, 20, 0, 0, time.UTC),
		OutageTolerance: Duration(time.Hour)})
	if deadlined != a {
		t.Fatalf("a deadline made another job: %s vs %s", deadlined, a)
	}
	long := MigrateWorkflowID(
		"1",
		MigrateInput{ImageID: strings.Repeat("x", 300), SourceRegion: "DFW", TargetRegions: []string{"IAD"}},
	)
	if len(long) > 200 {
		t.Fatalf("id of %d chars", len(long))
	}
	if migrationContainer(a) != migrationContainer(b) || !strings.HasPrefix(migrationContainer(a), "imageflow-") {
		t.Fatal("container name unstable")
	}
}

func clientStart(id string) client.StartWorkflowOptions { return client.StartWorkflowOptions{ID: id} }

// TestMigrateDeadlineUnreachable: a deadline the estimate cannot meet fails the run before any
// export, and the error says how long the work needs.
func TestMigrateDeadlineUnreachable(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	mockMigration(env, c, nil, nil)
	in := migrateInput()
	in.Deadline = env.Now().Add(2 * time.Minute) // the work needs 160 s
	env.ExecuteWorkflow(MigrateImage, in)
	var ae *temporal.ApplicationError
	err := env.GetWorkflowError()
	if !errors.As(err, &ae) || ae.Type() != ErrDeadlineUnreachable || !strings.Contains(err.Error(), "about 2m40s") {
		t.Fatalf("error %v", err)
	}
	if c.has("export") != 0 || c.has("fact migration.failed") != 1 {
		t.Fatalf("calls %v", c.names)
	}
}

// TestMigrateDeadlinePassesDuringCopy: a copy that outlasts its estimate is cancelled when the
// deadline passes; the run fails saying so, and on-success cleanup still removes the export.
func TestMigrateDeadlinePassesDuringCopy(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	env.OnActivity(a.CopyObjectAcrossRegions, mock.Anything, mock.Anything).After(time.Hour).
		Return(cloud.CopyResult{Bytes: 64 << 20}, nil)
	mockMigration(env, c, nil, nil) // after: the first matching mock answers
	in := migrateInput()
	in.Deadline = env.Now().Add(10 * time.Minute)
	env.ExecuteWorkflow(MigrateImage, in)
	var ae *temporal.ApplicationError
	err := env.GetWorkflowError()
	if !errors.As(err, &ae) || ae.Type() != ErrDeadlinePassed ||
		!strings.Contains(err.Error(), "while migrating (IAD: copying") {
		t.Fatalf("error %v", err)
	}
	if c.has("cleanup DFW") != 1 || c.has("import") != 0 || c.has("fact migration.failed") != 1 {
		t.Fatalf("calls %v", c.names)
	}
}

// TestMigrateCancelCleansUp: a cancelled migration ends as cancelled, not failed, and tidies up
// its intermediate objects under the on-success policy.
func TestMigrateCancelCleansUp(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	env.OnActivity(a.CopyObjectAcrossRegions, mock.Anything, mock.Anything).After(time.Hour).
		Return(cloud.CopyResult{Bytes: 64 << 20}, nil)
	mockMigration(env, c, nil, nil) // after: the first matching mock answers
	env.RegisterDelayedCallback(env.CancelWorkflow, 5*time.Minute)
	env.ExecuteWorkflow(MigrateImage, migrateInput())
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("error %v, want cancelled", err)
	}
	if c.has("cleanup DFW") != 1 || c.has("cleanup IAD") != 1 || c.has("import") != 0 {
		t.Fatalf("calls %v", c.names)
	}
}
