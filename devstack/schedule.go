package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/workflows"
)

// demoSchedule is the standing policy the demo leaves behind, paused: README's nightly DR copy.
const demoSchedule = "demo-dr-nightly"

// createDemoSchedule makes the demo's paused nightly DR schedule, once (a restarted stack finds
// it there), and says how to switch it on.
func (s *stack) createDemoSchedule(ctx context.Context) {
	req := workflows.BulkRequest{SourceRegion: "DFW", TargetRegions: []string{"ORD"},
		Filter: cloud.ImageFilter{Tags: []string{"db"}}, CreatedWithin: workflows.Duration(25 * time.Hour),
		LineageKeep: 7, Keep: 7}
	if err := req.Normalize(); err != nil {
		fmt.Fprintf(s.out, "  schedule %s not created: %v\n", demoSchedule, err)
		return
	}
	in := workflows.BulkInput{BulkRequest: req}
	action := &client.ScheduleWorkflowAction{ID: workflows.BulkWorkflowID("100001", req),
		Workflow: workflows.BulkMigrateWorkflow, Args: []any{in}, TaskQueue: producerQueue}
	action.StaticSummary, action.StaticDetails = workflows.Describe(in, "the schedule "+demoSchedule+" (devstack)")
	_, err := s.client.ScheduleClient().Create(ctx, client.ScheduleOptions{ID: demoSchedule,
		Spec:   client.ScheduleSpec{CronExpressions: []string{"0 2 * * *"}, TimeZoneName: "UTC"},
		Action: action, CatchupWindow: time.Hour, Paused: true,
		Note: "devstack's nightly DR copy of the db servers to ORD, a week kept; unpause to switch it on"})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		fmt.Fprintf(s.out, "  schedule %s not created: %v\n", demoSchedule, err)
		return
	}
	fmt.Fprintf(s.out, "\n  Schedule %s (paused): bulk-migrate DFW -> ORD of the db servers' snapshots, nightly at "+
		"02:00 UTC\n    switch it on: go run ./starter schedule unpause --id %s\n", demoSchedule, demoSchedule)
}
