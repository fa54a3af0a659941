package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
)

func TestBulkMigrate(t *testing.T) {
	env := newEnv(t)
	var imgs []activities.Listed
	for i := 0; i < 5; i++ {
		imgs = append(imgs, activities.Listed{ID: fmt.Sprintf("img-%d", i)})
	}
	env.OnActivity(a.Authenticate, mock.Anything).Return(activities.Account{Tenant: "100001"}, nil)
	env.OnActivity(a.ListImageIDs, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.ListImagesInput) ([]activities.Listed, error) {
			if in.Filter.Owner != "100001" || in.Filter.Tags[0] != "web" {
				return nil, fmt.Errorf("filter %+v", in.Filter)
			}
			return imgs, nil
		})
	running, peak := 0, 0
	env.OnWorkflow(MigrateImageWorkflow, mock.Anything, mock.Anything).
		Return(func(ctx workflow.Context, in MigrateInput) (MigrateResult, error) {
			running++
			peak = max(peak, running)
			_ = workflow.Sleep(ctx, 1e9)
			running--
			if in.ImageID == "img-3" {
				return MigrateResult{}, temporal.NewNonRetryableApplicationError("licensed", "NotExportable", nil)
			}
			return MigrateResult{SourceImageID: in.ImageID}, nil
		})
	env.ExecuteWorkflow(
		BulkMigrate,
		BulkInput{
			BulkRequest: BulkRequest{
				SourceRegion:  "DFW",
				TargetRegions: []string{"IAD"},
				Filter:        cloud.ImageFilter{Tags: []string{"web"}},
				Concurrency:   2,
			},
		},
	)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var sum BulkSummary
	_ = env.GetWorkflowResult(&sum)
	if sum.Total != 5 || sum.Succeeded != 4 || sum.Failed != 1 || sum.Failures[0].ImageID != "img-3" || peak != 2 {
		t.Fatalf("summary %+v, peak concurrency %d", sum, peak)
	}
}

func TestBulkMigrateContinuesAsNew(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Authenticate, mock.Anything).Return(activities.Account{Tenant: "100001"}, nil)
	env.OnActivity(a.ListImageIDs, mock.Anything, mock.Anything).
		Return([]activities.Listed{{ID: "a"}, {ID: "b"}, {ID: "c"}}, nil)
	env.OnWorkflow(MigrateImageWorkflow, mock.Anything, mock.Anything).Return(MigrateResult{}, nil)
	env.ExecuteWorkflow(
		BulkMigrate,
		BulkInput{BulkRequest: BulkRequest{SourceRegion: "DFW", TargetRegions: []string{"IAD"}, BatchSize: 2}},
	)
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new after a batch, got %v", err)
	}
	var next BulkInput
	if err := converterGet(can, &next); err != nil {
		t.Fatal(err)
	}
	if !next.Listed || len(next.Pending) != 1 || next.Pending[0] != "c" || next.Summary.Succeeded != 2 ||
		next.Summary.Total != 3 {
		t.Fatalf("carried state %+v", next)
	}
	// The next run picks up where it stopped without listing again.
	env2 := newEnv(t)
	env2.OnActivity(a.Authenticate, mock.Anything).Return(activities.Account{Tenant: "100001"}, nil)
	env2.OnWorkflow(MigrateImageWorkflow, mock.Anything, mock.Anything).Return(MigrateResult{}, nil)
	env2.ExecuteWorkflow(BulkMigrate, next)
	var sum BulkSummary
	if err := env2.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	_ = env2.GetWorkflowResult(&sum)
	if sum.Total != 3 || sum.Succeeded != 3 || sum.Runs != 2 {
		t.Fatalf("final summary %+v", sum)
	}
}

func converterGet(can *workflow.ContinueAsNewError, out *BulkInput) error {
	return dataConverter.FromPayloads(can.Input, out)
}

var dataConverter = converter.GetDefaultDataConverter()

// TestBulkMigrateDeadline: children carry the deadline, and once it passes no more start; the
// images left count as failed, each saying why.
func TestBulkMigrateDeadline(t *testing.T) {
	env := newEnv(t)
	var imgs []activities.Listed
	for i := 0; i < 5; i++ {
		imgs = append(imgs, activities.Listed{ID: fmt.Sprintf("img-%d", i)})
	}
	deadline := env.Now().Add(90 * time.Minute)
	env.OnActivity(a.Authenticate, mock.Anything).Return(activities.Account{Tenant: "100001"}, nil)
	env.OnActivity(a.ListImageIDs, mock.Anything, mock.Anything).Return(imgs, nil)
	var started []string
	env.OnWorkflow(MigrateImageWorkflow, mock.Anything, mock.Anything).
		Return(func(ctx workflow.Context, in MigrateInput) (MigrateResult, error) {
			if !in.Deadline.Equal(deadline) {
				return MigrateResult{}, fmt.Errorf("child deadline %v, want %v", in.Deadline, deadline)
			}
			started = append(started, in.ImageID)
			return MigrateResult{}, workflow.Sleep(ctx, time.Hour)
		})
	env.ExecuteWorkflow(BulkMigrate, BulkInput{BulkRequest: BulkRequest{SourceRegion: "DFW",
		TargetRegions: []string{"IAD"}, Concurrency: 1, Deadline: deadline}})
	var sum BulkSummary
	if err := env.GetWorkflowError(); err != nil || env.GetWorkflowResult(&sum) != nil {
		t.Fatal(err)
	}
	if len(started) != 2 || sum.Succeeded != 2 || sum.Failed != 3 ||
		!strings.Contains(sum.Failures[0].Error, "deadline") {
		t.Fatalf("started %v, summary %+v", started, sum)
	}
}

// TestBulkMigrateCancelDrains: a cancelled bulk starts no more children and lets the running ones
// finish (a migration cut off mid-import would leave an image nothing recognises); it ends
// cancelled, its summary counting what was left, and its status saying so while it drains.
func TestBulkMigrateCancelDrains(t *testing.T) {
	env := newEnv(t)
	var imgs []activities.Listed
	for i := range 6 {
		imgs = append(imgs, activities.Listed{ID: fmt.Sprintf("img-%d", i)})
	}
	env.OnActivity(a.Authenticate, mock.Anything).Return(activities.Account{Tenant: "100001"}, nil)
	env.OnActivity(a.ListImageIDs, mock.Anything, mock.Anything).Return(imgs, nil)
	var started, finished []string
	env.OnWorkflow(MigrateImageWorkflow, mock.Anything, mock.Anything).
		Return(func(ctx workflow.Context, in MigrateInput) (MigrateResult, error) {
			started = append(started, in.ImageID)
			if err := workflow.Sleep(ctx, 10*time.Minute); err != nil {
				return MigrateResult{}, err // cancelled: the bulk must not do this to its children
			}
			finished = append(finished, in.ImageID)
			return MigrateResult{SourceImageID: in.ImageID}, nil
		})
	var draining BulkStatus
	env.RegisterDelayedCallback(env.CancelWorkflow, 15*time.Minute)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StatusQuery)
		if err == nil {
			err = v.Get(&draining)
		}
		if err != nil {
			t.Error(err)
		}
	}, 16*time.Minute)
	env.ExecuteWorkflow(BulkMigrate, BulkInput{BulkRequest: BulkRequest{SourceRegion: "DFW",
		TargetRegions: []string{"IAD"}, Concurrency: 2}})
	err := env.GetWorkflowError()
	var ce *temporal.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("want the bulk cancelled, got %v", err)
	}
	var sum BulkSummary
	if err := ce.Details(&sum); err != nil {
		t.Fatal(err)
	}
	if len(started) != 4 || len(finished) != 4 || sum.Succeeded != 4 || sum.NotStarted != 2 || sum.Failed != 0 {
		t.Fatalf("started %v, finished %v, summary %+v", started, finished, sum)
	}
	if draining.Step != "draining" || draining.Running != 2 || draining.Left != 2 {
		t.Fatalf("status while draining: %+v", draining)
	}
}

// TestBulkPace: the rate counts ended images since the bulk began; the ETA puts the rest at it.
func TestBulkPace(t *testing.T) {
	begin := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	st := BulkStatus{Running: 10, Left: 290, Summary: BulkSummary{Started: begin, Succeeded: 90, Failed: 10}}
	st.Pace(begin.Add(30 * time.Minute))
	if st.PerHour != 200 || !st.ETA.Equal(begin.Add(30*time.Minute+90*time.Minute)) {
		t.Fatalf("pace %.1f/h, ETA %v", st.PerHour, st.ETA)
	}
	st = BulkStatus{Left: 5, Summary: BulkSummary{Started: begin}}
	if st.Pace(begin.Add(time.Hour)); st.PerHour != 0 || !st.ETA.IsZero() {
		t.Fatalf("no image ended, yet pace %.1f/h, ETA %v", st.PerHour, st.ETA)
	}
}
