package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
)

// Properties stamped on every image a migration makes, so a retry finds it instead of
// importing twice, and a person can trace it to its source.
const (
	PropMigrationID   = activities.PropMadeBy
	PropSourceRegion  = "imageflow_source_region"
	PropSourceImageID = "imageflow_source_image_id"
)

// Target policies and cleanup policies.
const (
	PolicyAll        = "all"         // every target must succeed or the migration fails
	PolicyBestEffort = "best-effort" // succeed when at least one target does
	CleanupOnSuccess = "on-success"  // delete intermediate objects when every target succeeded
	CleanupAlways    = "always"
	CleanupNever     = "never"
)

// MigrateInput asks to copy an image of the worker's account to other regions.
type MigrateInput struct {
	ImageID       string   `json:"image_id"`
	SourceRegion  string   `json:"source_region"`
	TargetRegions []string `json:"target_regions"`
	TargetName    string   `json:"target_name,omitempty"` // default: the source image's name
	Policy        string   `json:"policy,omitempty"`      // all (default) or best-effort
	Cleanup       string   `json:"cleanup,omitempty"`     // on-success (default), always, never
	ShareWith     []string `json:"share_with,omitempty"`  // tenants to share each new image with
	// HeartbeatTimeout bounds how long a dead worker holds a copy or task wait (default 2m).
	HeartbeatTimeout Duration `json:"heartbeat_timeout,omitempty"`
	// OutageTolerance is how long a step waits out a fault (a region down, identity failing)
	// before the job fails (default 24h; a deadline, when set, ends the wait sooner).
	OutageTolerance Duration `json:"outage_tolerance,omitempty"`
	// MaxRetryInterval caps the backoff between attempts of a failing step (default 5m).
	MaxRetryInterval Duration `json:"max_retry_interval,omitempty"`
	// NewCopy makes a copy in each target even where one of the same source (same image,
	// checksum and name) is there already; by default that copy is reused, whatever request
	// made it, so a region holds one copy of an image.
	NewCopy bool `json:"new_copy,omitempty"`
	// Deadline, when set, is when the migration must be done by: it fails at once when the
	// estimate says it cannot be, and is cancelled (and cleaned up) when the deadline passes.
	Deadline time.Time `json:"deadline,omitzero"`
	// TargetCloud names another cloud or account the worker holds (IMAGEFLOW_CLOUD_PEERS) to
	// migrate into; empty for the worker's own. Requests name clouds, never credentials.
	TargetCloud string `json:"target_cloud,omitempty"`
	// LineageKeep, above 0, makes re-migrations incremental: each target region keeps the last
	// LineageKeep copies of this server's snapshots, and the next snapshot sends only the ranges
	// that changed. LineageKey names the server (default: the source's instance_uuid).
	LineageKeep int    `json:"lineage_keep,omitempty"`
	LineageKey  string `json:"lineage_key,omitempty"`
}

// Normalize fills defaults and rejects a request that cannot be run, saying what is wrong.
func (in *MigrateInput) Normalize() error {
	if in.ImageID == "" {
		return invalid("migrate: image_id is required")
	}
	if err := checkText("migrate: image_id", in.ImageID, maxIDLen); err != nil {
		return err
	}
	if err := checkText("migrate: target_name", in.TargetName, maxNameLen); err != nil {
		return err
	}
	if err := checkText("migrate: target_cloud", in.TargetCloud, maxIDLen); err != nil {
		return err
	}
	if in.TargetCloud != "" && len(in.ShareWith) > 0 {
		return invalid("migrate: share_with cannot be used with target_cloud yet; share from the target's worker")
	}
	if err := normalizeRoute("migrate", &in.SourceRegion, in.TargetRegions, in.TargetCloud != ""); err != nil {
		return err
	}
	if err := normalizePolicies("migrate", &in.Policy, &in.Cleanup); err != nil {
		return err
	}
	for _, m := range in.ShareWith {
		if !tenantID.MatchString(m) {
			return invalid("migrate: share_with %q is not a tenant id", m)
		}
	}
	if in.LineageKeep < 0 || in.LineageKeep > 10 {
		return invalid("migrate: lineage_keep must be 0 (off) to 10, got %d", in.LineageKeep)
	}
	if err := checkText("migrate: lineage_key", in.LineageKey, maxIDLen); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		d    Duration
	}{{"heartbeat_timeout", in.HeartbeatTimeout}, {"outage_tolerance", in.OutageTolerance},
		{"max_retry_interval", in.MaxRetryInterval}} {
		if err := d.d.check("migrate: " + d.name); err != nil {
			return err
		}
	}
	if in.HeartbeatTimeout <= 0 {
		in.HeartbeatTimeout = Duration(2 * time.Minute)
	}
	return nil
}

// MigrateWorkflowID is the id of the run for this request: the same request maps to the same run.
// Requests that differ in name, policies or members are separate jobs (the hash at the end).
func MigrateWorkflowID(tenant string, in MigrateInput) string {
	parts := []any{in.TargetName, orDefault(in.Policy, PolicyAll), orDefault(in.Cleanup, CleanupOnSuccess),
		sortedCopy(in.ShareWith), in.LineageKeep, in.LineageKey, in.TargetCloud}
	if in.NewCopy { // only then, so every other request keeps its id
		parts = append(parts, "new-copy")
	}
	return key("migrate", tenant, strings.ToUpper(in.SourceRegion), in.ImageID, "to",
		strings.Join(sortedCopy(upper(in.TargetRegions)), "+"), variant(parts...))
}

// TargetResult is one target region's outcome.
type TargetResult struct {
	Region  string `json:"region"`
	Status  string `json:"status"` // succeeded, failed, cancelled
	ImageID string `json:"image_id,omitempty"`
	// Path is how the bytes came, for a region images are uploaded to: glance-download or
	// web-download (pulled by the target), staged (through its object store, resumable) or
	// streamed (through the worker in one upload); empty for a copy and an import task.
	Path      string `json:"path,omitempty"`
	Reused    bool   `json:"reused,omitempty"` // an earlier attempt had already made the image
	Bytes     int64  `json:"bytes,omitempty"`
	BytesSent int64  `json:"bytes_sent,omitempty"`
	// BytesReused were copied inside the target region from the lineage's kept generation.
	BytesReused   int64   `json:"bytes_reused,omitempty"`
	CopySeconds   float64 `json:"copy_seconds,omitempty"`
	ImportSeconds float64 `json:"import_seconds,omitempty"`
	// ShareWorkflowID is the ShareImage run offering the new image to ShareWith; it goes on
	// waiting for their decisions after the migration ends.
	ShareWorkflowID string `json:"share_workflow_id,omitempty"`
	Error           string `json:"error,omitempty"`
}

// MigrateResult is the whole migration's outcome.
type MigrateResult struct {
	MigrationID   string         `json:"migration_id"`
	SourceRegion  string         `json:"source_region"`
	SourceImageID string         `json:"source_image_id"`
	Checksum      string         `json:"checksum"`
	Targets       []TargetResult `json:"targets"`
	ExportSeconds float64        `json:"export_seconds"`
	TotalSeconds  float64        `json:"total_seconds"`
	// Cleanup is the CleanupMigration run deleting the intermediate objects, which goes on after
	// this one ends ("" when nothing is to be deleted, or the cleanup policy keeps them).
	Cleanup string `json:"cleanup_workflow_id,omitempty"`
}

// MigrateStatus answers the status query.
type MigrateStatus struct {
	Step    string            `json:"step"`
	Targets map[string]string `json:"targets"` // region -> step
	// Estimate is how long the work should take (from the worker's measured or configured
	// rates); ETA is when it should end, re-estimated as steps finish.
	Estimate *activities.Estimate `json:"estimate,omitempty"`
	ETA      time.Time            `json:"eta,omitzero"`
	Deadline time.Time            `json:"deadline,omitzero"`
	// Waiting, while set, is a step waiting out a fault, as the worker told the run.
	Waiting *activities.Waiting `json:"waiting,omitempty"`
}

type migration struct {
	in        MigrateInput
	id        string
	container string
	source    cloud.Image
	status    MigrateStatus
	result    MigrateResult
	// overdue, set when the deadline passed and cancelled the work, is what the run was doing.
	overdue string
	// lineage is where incremental copies keep their generations; nil when off.
	lineage    *cloud.Lineage
	lineageKey string // the server the lineage follows
	// regions says how images arrive in each target (by Rackspace's tasks, or by upload), and
	// sourceInfo how the image leaves the source (an export, or Glance's image data).
	regions    map[string]activities.RegionInfo
	sourceInfo activities.RegionInfo
	// copyEnds are the copies' measured ends, by target region, as the copies told them.
	copyEnds map[string]time.Time
}

// MigrateImage validates the image, exports it, then for each target region in parallel copies
// the export across, imports it, carries over custom properties and tags, stamps the coordinating
// properties and shares it; finally it removes intermediate objects per the cleanup policy.
func MigrateImage(ctx workflow.Context, in MigrateInput) (MigrateResult, error) {
	if err := in.Normalize(); err != nil {
		return MigrateResult{}, err
	}
	ctx = withHeartbeat(ctx, in.HeartbeatTimeout.D())
	ctx = withPatience(ctx, in.OutageTolerance.D(), in.MaxRetryInterval.D())
	m := &migration{in: in, id: workflow.GetInfo(ctx).WorkflowExecution.ID,
		status: MigrateStatus{Step: "validating", Targets: map[string]string{}, Deadline: in.Deadline}}
	m.container = migrationContainer(m.id)
	m.result = MigrateResult{MigrationID: m.id, SourceRegion: in.SourceRegion, SourceImageID: in.ImageID}
	for _, r := range in.TargetRegions {
		m.status.Targets[r] = "waiting"
	}
	err := workflow.SetQueryHandler(ctx, StatusQuery, func() (MigrateStatus, error) { return m.status, nil })
	if err != nil {
		return MigrateResult{}, err
	}
	m.heedWaits(ctx)
	m.heedEtas(ctx)
	start := workflow.Now(ctx)
	if !in.Deadline.IsZero() && !in.Deadline.After(start) {
		return MigrateResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf(
				"migration %s: deadline %s had passed before it started",
				m.id,
				in.Deadline.Format(time.RFC3339),
			),
			ErrDeadlineUnreachable,
			nil,
		)
	}
	if err := CheckDeadline("migrate: deadline", in.Deadline, start); err != nil {
		return MigrateResult{}, err
	}
	setJobStatus(ctx, JobRunning, fmt.Sprintf("validating image %s in %s", in.ImageID, in.SourceRegion))
	rctx, stopWatch := m.watchDeadline(ctx)
	err = m.run(rctx)
	stopWatch()
	err = m.stopped(ctx, err)
	m.result.TotalSeconds = workflow.Now(ctx).Sub(start).Seconds()
	m.finish(ctx, err)
	m.status.Step = "done"
	return m.result, err
}

// watchDeadline returns the context the work runs in, cancelled when the deadline passes, and
// the function that stops watching.
func (m *migration) watchDeadline(ctx workflow.Context) (workflow.Context, func()) {
	rctx, cancelRun := workflow.WithCancel(ctx)
	if m.in.Deadline.IsZero() {
		return rctx, func() {}
	}
	tctx, cancelTimer := workflow.WithCancel(ctx)
	timer := workflow.NewTimer(tctx, m.in.Deadline.Sub(workflow.Now(ctx)))
	workflow.Go(tctx, func(g workflow.Context) {
		if timer.Get(g, nil) == nil {
			m.overdue = m.stepText() // what it was doing, before the cancel changes it
			cancelRun()
		}
	})
	return rctx, cancelTimer
}

// stopped names why the work stopped early, if it did: the deadline passed (a failure that says
// so) or a person cancelled the run (a cancellation, so Temporal shows it as one).
func (m *migration) stopped(ctx workflow.Context, err error) error {
	switch {
	case m.overdue != "":
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("migration %s passed its deadline %s while %s; it was cancelled", m.id,
				m.in.Deadline.Format(time.RFC3339), m.overdue),
			ErrDeadlinePassed, nil, m.result)
	case errors.Is(ctx.Err(), workflow.ErrCanceled):
		return temporal.NewCanceledError(m.result)
	}
	return err
}

func (m *migration) run(ctx workflow.Context) error {
	in := m.in
	vctx := withActivity(ctx, "check "+in.ImageID+" is exportable", time.Minute)
	ref := activities.ImageRef{Region: in.SourceRegion, ImageID: in.ImageID}
	err := workflow.ExecuteActivity(vctx, a.CheckExportable, ref).Get(ctx, &m.source)
	if err != nil {
		return failWith(err, "migration %s cannot start", m.id)
	}
	m.result.Checksum = m.source.Checksum
	if err := m.setLineage(); err != nil {
		return err
	}
	// Announce the start while looking for earlier imports: one wait for both.
	started := workflow.ExecuteActivity(
		withActivity(ctx, "announce migration.started", 30*time.Second),
		a.PublishFact,
		activities.Fact{
			Type: activities.FactMigrationStarted,
			ID:   runKey(ctx) + ":started",
			Data: map[string]any{"migration_id": m.id, "image_id": in.ImageID,
				"source_region": in.SourceRegion, "target_regions": in.TargetRegions},
		},
	)
	// The look for earlier imports and the estimate go out with the region check: one workflow
	// task for all of them (a migration that finds every target done ignores the estimate).
	finding, estimating := m.findExisting(ctx), m.askEstimate(ctx)
	if err := m.describeRegions(ctx); err != nil {
		return failWith(err, "migration %s cannot start", m.id)
	}
	if err := m.formatsFit(); err != nil {
		return err
	}
	existing := m.existing(ctx, finding)
	if err := started.Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("could not announce the start", "error", err)
	}
	pending := 0
	for _, r := range in.TargetRegions {
		if _, ok := existing[r]; !ok {
			pending++
		}
	}
	if err := m.estimate(ctx, estimating, pending > 0); err != nil {
		return err
	}
	var export cloud.ObjectRef
	switch {
	case pending > 0 && !m.sourceInfo.ObjectStore:
		// No object store to export to: the copies read the image's data from Glance.
		export = cloud.ObjectRef{Region: in.SourceRegion, Image: in.ImageID}
	case pending > 0:
		var err error
		if export, err = m.export(ctx); err != nil {
			return err
		}
	}
	return m.targets(ctx, export, existing)
}

// findExisting asks the targets for images this migration already made (one activity for all);
// existing reads the answer.
func (m *migration) findExisting(ctx workflow.Context) workflow.Future {
	fctx := withActivity(ctx, "look for earlier imports in "+strings.Join(m.in.TargetRegions, ", "), 2*time.Minute)
	find := activities.FindImagesInput{Cloud: m.in.TargetCloud, Regions: m.in.TargetRegions, Key: PropMigrationID,
		Value: m.id}
	if !m.in.NewCopy && m.lineage == nil {
		find.Copy = &activities.CopyMatch{SourceKey: PropSourceImageID, SourceImageID: m.in.ImageID,
			RegionKey: PropSourceRegion, SourceRegion: m.in.SourceRegion, Checksum: m.source.Checksum,
			Name: m.targetName()}
	}
	return workflow.ExecuteActivity(fctx, a.FindImagesByProperty, find)
}

func (m *migration) existing(ctx workflow.Context, finding workflow.Future) map[string]cloud.Image {
	found := map[string]cloud.Image{}
	if err := finding.Get(ctx, &found); err != nil {
		// Not fatal: an import may then happen where one exists, and the stamp check below
		// would show two; the activity's own conflict error names them for a person.
		workflow.GetLogger(ctx).Warn("could not look for earlier imports", "error", err)
		return map[string]cloud.Image{}
	}
	return found
}

// askEstimate asks the worker how long the work will take; estimate reads the answer.
func (m *migration) askEstimate(ctx workflow.Context) workflow.Future {
	ectx := withActivity(ctx, "estimate the migration's duration", time.Minute)
	return workflow.ExecuteActivity(
		ectx,
		a.EstimateMigration,
		activities.EstimateInput{Bytes: m.source.Size, Export: true},
	)
}

// estimate shows the ETA and fails fast when the deadline cannot be met. Without an estimate (a
// worker that cannot give one) the work goes on.
func (m *migration) estimate(ctx workflow.Context, estimating workflow.Future, pending bool) error {
	if !pending {
		return nil
	}
	var e activities.Estimate
	if err := estimating.Get(ctx, &e); err != nil {
		workflow.GetLogger(ctx).Warn("no estimate", "error", err)
		return nil
	}
	m.status.Estimate = &e
	m.setEta(ctx, e.TotalSeconds)
	if !m.in.Deadline.IsZero() && m.status.ETA.After(m.in.Deadline) {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("migration %s cannot meet its deadline %s: %d MiB takes %s, so it would end about %s",
				m.id, m.in.Deadline.Format(time.RFC3339), m.source.Size>>20, e.Text(),
				m.status.ETA.Format(time.RFC3339)),
			ErrDeadlineUnreachable, nil)
	}
	return nil
}

// setEta sets the expected end to seconds from now.
func (m *migration) setEta(ctx workflow.Context, seconds float64) {
	m.status.ETA = workflow.Now(ctx).Add(time.Duration(seconds * float64(time.Second))).UTC().Truncate(time.Second)
	setEta(ctx, m.status.ETA)
}

// etaLine is the ETA for the UI's current details.
func (m *migration) etaLine() string {
	if w := m.status.Waiting; w != nil {
		return fmt.Sprintf("\nwaiting out a fault: %s failing since %s UTC (attempt %d); ETA %s UTC if it recovers now",
			w.Text(), w.Since.Format("15:04:05"), w.Attempt, m.status.ETA.Format("2006-01-02 15:04:05"))
	}
	if m.status.ETA.IsZero() || m.status.Estimate == nil {
		return ""
	}
	line := fmt.Sprintf("\nETA %s UTC (estimate for %d MiB: %s)", m.status.ETA.Format("2006-01-02 15:04:05"),
		m.source.Size>>20, m.status.Estimate.Text())
	if !m.in.Deadline.IsZero() {
		line += "\ndeadline " + m.in.Deadline.UTC().Format("2006-01-02 15:04:05") + " UTC"
	}
	return line
}

// stepText is the run's step, with each target's while the targets run ("migrating (IAD:
// copying, LON: importing)").
func (m *migration) stepText() string {
	if m.status.Step != "migrating" {
		return m.status.Step
	}
	parts := make([]string, 0, len(m.in.TargetRegions))
	for _, r := range m.in.TargetRegions {
		parts = append(parts, r+": "+m.status.Targets[r])
	}
	return m.status.Step + " (" + strings.Join(parts, ", ") + ")"
}

// heedWaits takes the worker's word that a step waits out a fault (activities.WaitingSignal):
// the status, the UI's current details and ImageflowJobStatus say so, and the ETA moves by the
// time waited instead of staying in the past. The next step's progress clears it.
func (m *migration) heedWaits(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, activities.WaitingSignal)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var w activities.Waiting
			if more := ch.Receive(gctx, &w); !more {
				return
			}
			if w.Step == "" { // a wait inside a step ended in it
				m.recovered(gctx)
				continue
			}
			m.waiting(gctx, w)
		}
	})
}

func (m *migration) waiting(ctx workflow.Context, w activities.Waiting) {
	now := workflow.Now(ctx)
	if !m.status.ETA.IsZero() && w.Since.Before(m.status.ETA) {
		// What was left when the step began failing is still left: from now.
		m.status.ETA = now.Add(m.status.ETA.Sub(w.Since)).UTC().Truncate(time.Second)
	}
	m.status.Waiting = &w
	setJobStatus(ctx, JobWaiting, fmt.Sprintf("migration %s waiting out a fault%s", m.id, m.etaLine()))
}

// heedEtas takes the copies' measured ends (activities.EtaSignal): the ETA becomes the latest
// copy's end plus the import's estimate, wherever it is shown (status, current details,
// ImageflowEta), instead of standing on the estimate made before the copies began.
func (m *migration) heedEtas(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, activities.EtaSignal)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var end activities.CopyEnd
			if more := ch.Receive(gctx, &end); !more {
				return
			}
			m.copyEnded(gctx, end)
		}
	})
}

func (m *migration) copyEnded(ctx workflow.Context, end activities.CopyEnd) {
	if m.copyEnds == nil {
		m.copyEnds = map[string]time.Time{}
	}
	m.copyEnds[end.Region] = end.Ends
	var latest time.Time
	for _, r := range m.in.TargetRegions { // in order: maps are not iterated for effects
		if t := m.copyEnds[r]; t.After(latest) {
			latest = t
		}
	}
	var importing time.Duration
	if m.status.Estimate != nil {
		importing = time.Duration(m.status.Estimate.ImportSeconds * float64(time.Second))
	}
	eta := latest.Add(importing).UTC().Truncate(time.Second)
	if eta.Equal(m.status.ETA) {
		return
	}
	m.status.ETA = eta
	setEta(ctx, eta)
	if m.status.Waiting == nil {
		m.showTargets(ctx)
	}
}

// copyExpectedEnd is when the run expects a copy begun now to end: its ETA less the import's
// estimate (zero without an estimate).
func (m *migration) copyExpectedEnd() time.Time {
	if m.status.ETA.IsZero() || m.status.Estimate == nil {
		return time.Time{}
	}
	return m.status.ETA.Add(-time.Duration(m.status.Estimate.ImportSeconds * float64(time.Second)))
}

// recovered clears a wait once the run moves on.
func (m *migration) recovered(ctx workflow.Context) {
	if m.status.Waiting != nil {
		m.status.Waiting = nil
		setJobStatus(ctx, JobRunning, "migrating "+m.in.ImageID)
	}
}

// finish starts the cleanup run the cleanup policy asks for and announces the outcome. It runs
// on a disconnected context so a cancelled migration still tidies up.
func (m *migration) finish(ctx workflow.Context, err error) {
	status, typ := JobSucceeded, activities.FactMigrationCompleted
	for _, t := range m.result.Targets {
		if t.Status != "succeeded" {
			status = JobPartial
		}
	}
	data := map[string]any{"migration_id": m.id, "source_image_id": m.in.ImageID, "targets": m.result.Targets}
	if err != nil {
		status, typ = JobFailed, activities.FactMigrationFailed
		data["error"] = reason(err)
	}
	stopped := m.overdue != "" || temporal.IsCanceledError(err)
	if stopped && m.overdue == "" {
		status, data["error"] = JobCancelled, "cancelled"
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	// A migration stopped on purpose is not resumed, so on-success tidies up after it too. The
	// deletion is a run of its own: the job ends now, whatever the storage meets.
	var then *activities.RunStart
	if m.in.Cleanup == CleanupAlways || (m.in.Cleanup == CleanupOnSuccess && (err == nil || stopped)) {
		then = m.cleanupRun(ctx)
	}
	m.result.Cleanup = conclude(dctx, activities.Fact{Type: typ, ID: runKey(ctx) + ":" + typ, Data: data}, then)
	setJobStatus(dctx, status, fmt.Sprintf("%s: %s", strings.ToLower(status), summarize(m.result)))
}

// cleanupRun is the run that deletes this migration's intermediate objects, to outlive this
// one (nil when there are none).
func (m *migration) cleanupRun(ctx workflow.Context) *activities.RunStart {
	own, peer := m.cleanups(m.in.ImageID)
	if own == nil && peer == nil {
		return nil
	}
	req, err := json.Marshal(CleanupRequest{MigrationID: m.id, Own: own, Peer: peer,
		OutageTolerance: m.in.OutageTolerance, MaxRetryInterval: m.in.MaxRetryInterval,
		HeartbeatTimeout: m.in.HeartbeatTimeout})
	if err != nil {
		workflow.GetLogger(ctx).Warn("cleanup not started; intermediate objects remain", "error", err)
		return nil
	}
	return &activities.RunStart{WorkflowID: CleanupWorkflowID(runKey(ctx)), WorkflowType: CleanupMigrationWorkflow,
		Summary: "clean up after " + m.id, Input: req, FactKey: "cleanup_workflow_id"}
}

func summarize(r MigrateResult) string {
	var parts []string
	for _, t := range r.Targets {
		if t.Status == "succeeded" && t.BytesReused > 0 {
			parts = append(parts, fmt.Sprintf("%s %s (sent %d of %d MiB, %d%%)", t.Region, t.ImageID,
				t.BytesSent>>20, t.Bytes>>20, t.BytesSent*100/max(t.Bytes, 1)))
		} else if t.Status == "succeeded" {
			parts = append(parts, t.Region+" "+t.ImageID)
		} else {
			parts = append(parts, t.Region+" "+t.Status)
		}
	}
	return strings.Join(parts, ", ")
}

// migrationContainer is the per-migration Cloud Files container for intermediate objects.
func migrationContainer(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "imageflow-" + hex.EncodeToString(sum[:6])
}
