package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/emulator"
	"github.com/imageflow/imageflow/workflows"
)

// Row 13: a region evacuated by one bulk-migrate on one worker: every image of the account, small
// and generated, DFW -> IAD; then again (other images) with the cloud's image API allowing half
// the request rate the first run used, answering the rest 429 with Retry-After.

const evacuateSize = 64 << 10

func evacuateName(set string, i int) string { return fmt.Sprintf("bench-%s-%05d", set, i) }

// evacuateSeeds are row 13's images: the unlimited set and the rate-limited one.
func evacuateSeeds(sz sizes) []emulator.SeedImage {
	var imgs []emulator.SeedImage
	for set, n := range map[string]int{"evac": sz.evacuate, "evrl": sz.evacuateLimited} {
		for i := range n {
			imgs = append(imgs, emulator.SeedImage{Name: evacuateName(set, i), Size: evacuateSize, Tags: []string{set}})
		}
	}
	return imgs
}

// evacuation is one bulk's measurements.
type evacuation struct {
	images        int
	took          time.Duration
	rssMiB        float64
	runs          int
	maxEvents     int64
	maxBytes      int64
	failed        int
	missed, twice int
	passed        int64 // image API requests in DFW the counting fault let through
	refused       int64
}

func (v evacuation) perHour() float64 { return float64(v.images) / v.took.Hours() }

func (e *env) evacuate(ctx context.Context) ([]row, error) {
	base := e.oneReplicaPerHour
	if base == 0 { // row 8 did not run before this one: its one-replica batch is the baseline
		var err error
		if base, _, _, err = e.scaleOutRun(ctx, 1); err != nil {
			return nil, fmt.Errorf("baseline (row 8, one replica): %w", err)
		}
	}
	// A rate the first run never meets counts its requests: the demand the limit is set against.
	if err := e.emu.ReplaceFaults([]emulator.Fault{{Kind: "rate-limit", Region: "DFW", Service: "images",
		RequestsPerSecond: 1e9}}); err != nil {
		return nil, err
	}
	free, err := e.evacuateRun(ctx, "evac", e.sz.evacuate)
	if err != nil {
		return nil, fmt.Errorf("unlimited: %w", err)
	}
	demand := float64(free.passed) / free.took.Seconds()
	allowed := demand / 2
	if err := e.emu.ReplaceFaults([]emulator.Fault{{Kind: "rate-limit", Region: "DFW", Service: "images",
		Status: 429, RetryAfter: 1, RequestsPerSecond: allowed}}); err != nil {
		return nil, err
	}
	limited, err := e.evacuateRun(ctx, "evrl", e.sz.evacuateLimited)
	e.emu.ClearFaults()
	if err != nil {
		return nil, fmt.Errorf("rate-limited: %w", err)
	}
	return evacuationRows(free, limited, base, demand, allowed), nil
}

func evacuationRows(free, limited evacuation, base, demand, allowed float64) []row {
	whole := func(v evacuation) bool {
		return v.failed == 0 && v.missed == 0 && v.twice == 0
	}
	took := float64(limited.passed) / limited.took.Seconds()
	refusedPer := float64(limited.refused) / float64(max(limited.passed, 1))
	return []row{{n: 13,
		name: fmt.Sprintf("region evacuation: %d images (%d KiB) DFW -> IAD by one bulk-migrate, one worker",
			free.images, evacuateSize>>10),
		measured: fmt.Sprintf("%.0f images/h; %.0f MiB RSS; %d runs (largest %d events, %.0f KiB); "+
			"%d failed, %d missed, %d made twice", free.perHour(), free.rssMiB, free.runs, free.maxEvents,
			float64(free.maxBytes)/1024, free.failed, free.missed, free.twice),
		baseline: fmt.Sprintf("row 8 (one replica): %.0f migrations/h", base),
		ratio:    fmt.Sprintf("%.2fx", free.perHour()/base),
		goal:     "RSS <= 256 MiB, none missed or doubled",
		met:      free.rssMiB <= 256 && whole(free),
		note: fmt.Sprintf("the image API in DFW took %.1f requests/s from the bulk (%d in %s)", demand,
			free.passed, free.took.Round(time.Second)),
	}, {n: 13,
		name: fmt.Sprintf("the same, %d images, DFW's image API allowing %.1f requests/s (half the above), "+
			"429 with Retry-After beyond", limited.images, allowed),
		measured: fmt.Sprintf("%.1f requests/s accepted (%.2f of allowed), %.3f refused per accepted; %.0f images/h; "+
			"%d failed, %d missed, %d made twice", took, took/allowed, refusedPer, limited.perHour(), limited.failed,
			limited.missed, limited.twice),
		baseline: fmt.Sprintf("allowed: %.1f requests/s", allowed),
		ratio:    fmt.Sprintf("%.2fx", took/allowed),
		goal:     "within 10% of allowed, refused <= 0.1 per accepted, none failed",
		met:      took >= 0.9*allowed && took <= 1.1*allowed && refusedPer <= 0.1 && whole(limited),
	}}
}

// evacuateRun moves set's n images with one bulk on a new worker and checks what it made.
func (e *env) evacuateRun(ctx context.Context, set string, n int) (evacuation, error) {
	v := evacuation{images: n}
	// Profiles on a known port: `go tool pprof http://127.0.0.1:9470/debug/pprof/heap` while it runs.
	w, err := e.startWorker("demo", "bench-"+set, "IMAGEFLOW_WORKER_HTTP_ADDR=127.0.0.1:9470",
		"IMAGEFLOW_WORKER_PROFILES=true")
	if err != nil {
		return v, err
	}
	defer w.shutdown()
	in := workflows.BulkRequest{SourceRegion: "DFW", TargetRegions: []string{"IAD"},
		Filter: cloud.ImageFilter{Tags: []string{set}}, Concurrency: 64, Cleanup: workflows.CleanupAlways}
	if err := in.Normalize(); err != nil {
		return v, err
	}
	id := workflows.BulkWorkflowID("100001", in)
	start := time.Now()
	run, err := e.tc.ExecuteWorkflow(ctx, workflows.StartOptions(id, "bench-"+set), workflows.BulkMigrateWorkflow,
		workflows.BulkInput{BulkRequest: in})
	if err != nil {
		return v, err
	}
	var sum workflows.BulkSummary
	if err := run.Get(ctx, &sum); err != nil { // follows the run's continue-as-new chain to its end
		return v, err
	}
	v.took, v.rssMiB, v.failed = time.Since(start), w.peakMiB(), sum.Failed
	if f := e.emu.Faults(); len(f) == 1 {
		v.passed, v.refused = f[0].Passed, f[0].Refused
	}
	if sum.Total != n {
		return v, fmt.Errorf("the bulk listed %d images of %d", sum.Total, n)
	}
	if err := e.evacuationHistory(ctx, id, &v); err != nil {
		return v, err
	}
	return v, e.evacuationMade(ctx, set, &v)
}

// evacuationHistory reads every run of the bulk's chain: how many, and the largest's history.
func (e *env) evacuationHistory(ctx context.Context, id string, v *evacuation) error {
	var token []byte
	for {
		resp, err := e.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q", id), NextPageToken: token})
		if err != nil {
			return err
		}
		for _, x := range resp.GetExecutions() {
			v.runs++
			v.maxEvents = max(v.maxEvents, x.GetHistoryLength())
			v.maxBytes = max(v.maxBytes, x.GetHistorySizeBytes())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return nil
		}
	}
}

// evacuationMade counts, in IAD, each source image's copies: none should have none or two.
func (e *env) evacuationMade(ctx context.Context, set string, v *evacuation) error {
	made, err := e.demo.ListImages(ctx, "IAD", cloud.ImageFilter{Owner: "100001", Tags: []string{set}})
	if err != nil {
		return err
	}
	copies := map[string]int{}
	for _, img := range made {
		copies[img.Properties[workflows.PropSourceImageID]]++
	}
	src, err := e.demo.ListImages(ctx, "DFW", cloud.ImageFilter{Owner: "100001", Tags: []string{set}})
	if err != nil {
		return err
	}
	for _, img := range src {
		switch copies[img.ID] {
		case 0:
			v.missed++
		case 1:
		default:
			v.twice++
		}
	}
	if len(src) != v.images {
		return errors.New("the source lists " + fmt.Sprint(len(src)) + " images of the set")
	}
	return nil
}
