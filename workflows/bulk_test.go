package workflows

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
)

func TestBulkMigrate(t *testing.T) {
	env := newEnv(t)
	var imgs []cloud.Image
	for i := 0; i < 5; i++ {
		imgs = append(imgs, cloud.Image{ID: fmt.Sprintf("img-%d", i)})
	}
	env.OnActivity(a.Authenticate, mock.Anything).Return(activities.Account{Tenant: "100001"}, nil)
	env.OnActivity(a.ListImages, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.ListImagesInput) ([]cloud.Image, error) {
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
	env.OnActivity(a.ListImages, mock.Anything, mock.Anything).
		Return([]cloud.Image{{ID: "a"}, {ID: "b"}, {ID: "c"}}, nil)
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
