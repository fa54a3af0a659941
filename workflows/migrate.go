package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
)

// Properties stamped on every image a migration makes, so a retry finds it instead of
// importing twice, and a person can trace it to its source.
const (
	PropMigrationID   = "imageflow_migration_id"
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
	if in.HeartbeatTimeout <= 0 {
		in.HeartbeatTimeout = Duration(2 * time.Minute)
	}
	return nil
}

// MigrateWorkflowID is the id of the run for this request: the same request maps to the same run.
// Requests that differ in name, policies or members are separate jobs (the hash at the end).
func MigrateWorkflowID(tenant string, in MigrateInput) string {
	return key(
		"migrate",
		tenant,
		strings.ToUpper(in.SourceRegion),
		in.ImageID,
		"to",
		strings.Join(sortedCopy(upper(in.TargetRegions)), "+"),
		variant(
			in.TargetName,
			orDefault(in.Policy, PolicyAll),
			orDefault(in.Cleanup, CleanupOnSuccess),
			sortedCopy(in.ShareWith),
			in.LineageKeep,
			in.LineageKey,
			in.TargetCloud,
		),
	)
}

// TargetResult is one target region's outcome.
type TargetResult struct {
	Region    string `json:"region"`
	Status    string `json:"status"` // succeeded, failed, cancelled
	ImageID   string `json:"image_id,omitempty"`
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
	MigrationID    string         `json:"migration_id"`
	SourceRegion   string         `json:"source_region"`
	SourceImageID  string         `json:"source_image_id"`
	Checksum       string         `json:"checksum"`
	Targets        []TargetResult `json:"targets"`
	ExportSeconds  float64        `json:"export_seconds"`
	TotalSeconds   float64        `json:"total_seconds"`
	ObjectsDeleted int            `json:"objects_deleted"`
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
}

type migration struct {
	in        MigrateInput
	id        string
	container string
	source    cloud.Image
	status    MigrateStatus
	result    MigrateResult
	// overdue is set when the deadline passed and cancelled the work.
	overdue bool
	// lineage is where incremental copies keep their generations; nil when off.
	lineage *cloud.Lineage
	// regions says how images arrive in each target (by Rackspace's tasks, or by upload), and
	// sourceInfo how the image leaves the source (an export, or Glance's image data).
	regions    map[string]activities.RegionInfo
	sourceInfo activities.RegionInfo
}

// MigrateImage validates the image, exports it, then for each target region in parallel copies
// the export across, imports it, carries over custom properties and tags, stamps the coordinating
// properties and shares it; finally it removes intermediate objects per the cleanup policy.
func MigrateImage(ctx workflow.Context, in MigrateInput) (MigrateResult, error) {
	if err := in.Normalize(); err != nil {
		return MigrateResult{}, err
	}
	m := &migration{in: in, id: workflow.GetInfo(ctx).WorkflowExecution.ID,
		status: MigrateStatus{Step: "validating", Targets: map[string]string{}, Deadline: in.Deadline}}
	m.container = migrationContainer(m.id)
	m.result = MigrateResult{MigrationID: m.id, SourceRegion: in.SourceRegion, SourceImageID: in.ImageID}
	for _, r := range in.TargetRegions {
		m.status.Targets[r] = "waiting"
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (MigrateStatus, error) { return m.status, nil }); err != nil {
		return MigrateResult{}, err
	}
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
	setJobStatus(ctx, JobRunning, fmt.Sprintf("validating image %s in %s", in.ImageID, in.SourceRegion))
	rctx, stopWatch := m.watchDeadline(ctx)
	err := m.run(rctx)
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
			m.overdue = true
			cancelRun()
		}
	})
	return rctx, cancelTimer
}

// stopped names why the work stopped early, if it did: the deadline passed (a failure that says
// so) or a person cancelled the run (a cancellation, so Temporal shows it as one).
func (m *migration) stopped(ctx workflow.Context, err error) error {
	switch {
	case m.overdue:
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("migration %s passed its deadline %s while %s; it was cancelled", m.id,
				m.in.Deadline.Format(time.RFC3339), m.status.Step),
			ErrDeadlinePassed, nil, m.result)
	case errors.Is(ctx.Err(), workflow.ErrCanceled):
		return temporal.NewCanceledError(m.result)
	}
	return err
}

func (m *migration) run(ctx workflow.Context) error {
	in := m.in
	vctx := withActivity(ctx, "check "+in.ImageID+" is exportable", time.Minute)
	if err := workflow.ExecuteActivity(vctx, a.CheckExportable, activities.ImageRef{Region: in.SourceRegion, ImageID: in.ImageID}).Get(ctx, &m.source); err != nil {
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
	if err := m.describeRegions(ctx); err != nil {
		return failWith(err, "migration %s cannot start", m.id)
	}
	existing := m.findExisting(ctx)
	if err := started.Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("could not announce the start", "error", err)
	}
	pending := 0
	for _, r := range in.TargetRegions {
		if _, ok := existing[r]; !ok {
			pending++
		}
	}
	if err := m.estimate(ctx, pending > 0); err != nil {
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

// findExisting asks the targets for images this migration already made (one activity for all).
func (m *migration) findExisting(ctx workflow.Context) map[string]cloud.Image {
	found := map[string]cloud.Image{}
	fctx := withActivity(ctx, "look for earlier imports in "+strings.Join(m.in.TargetRegions, ", "), 2*time.Minute)
	err := workflow.ExecuteActivity(fctx, a.FindImagesByProperty, activities.FindImagesInput{Cloud: m.in.TargetCloud, Regions: m.in.TargetRegions, Key: PropMigrationID,
		Value: m.id}).
		Get(ctx, &found)
	if err != nil {
		// Not fatal: an import may then happen where one exists, and the stamp check below
		// would show two; the activity's own conflict error names them for a person.
		workflow.GetLogger(ctx).Warn("could not look for earlier imports", "error", err)
		return map[string]cloud.Image{}
	}
	return found
}

// estimate asks the worker how long the work will take, shows the ETA, and fails fast when the
// deadline cannot be met. Without an estimate (a worker that cannot give one) the work goes on.
func (m *migration) estimate(ctx workflow.Context, pending bool) error {
	if !pending {
		return nil
	}
	var e activities.Estimate
	ectx := withActivity(ctx, "estimate the migration's duration", time.Minute)
	if err := workflow.ExecuteActivity(ectx, a.EstimateMigration,
		activities.EstimateInput{Bytes: m.source.Size, Export: true}).Get(ctx, &e); err != nil {
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

func (m *migration) export(ctx workflow.Context) (cloud.ObjectRef, error) {
	in := m.in
	m.status.Step = "exporting"
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("exporting %s (%s, %d MiB) in %s%s",
		m.source.Name, in.ImageID, m.source.Size>>20, in.SourceRegion, m.etaLine()))
	start := workflow.Now(ctx)
	var task cloud.Task
	ectx := withLongActivity(
		ctx,
		fmt.Sprintf("export %s to %s", in.ImageID, m.container),
		24*time.Hour,
		m.in.HeartbeatTimeout.D(),
	)
	if err := workflow.ExecuteActivity(ectx, a.ExportImage,
		activities.ExportInput{Region: in.SourceRegion, ImageID: in.ImageID, Container: m.container, Bytes: m.source.Size}).Get(ctx, &task); err != nil {
		return cloud.ObjectRef{}, failWith(err, "export %s in %s", in.ImageID, in.SourceRegion)
	}
	m.result.ExportSeconds = workflow.Now(ctx).Sub(start).Seconds()
	c, o, ok := task.ExportLocation()
	if !ok {
		return cloud.ObjectRef{}, temporal.NewNonRetryableApplicationError(
			"export finished without an export_location",
			"TaskFailed",
			nil,
		)
	}
	return cloud.ObjectRef{Region: in.SourceRegion, Container: c, Object: o}, nil
}

// targets runs every target in parallel. Under the all policy the first failure cancels the rest.
func (m *migration) targets(ctx workflow.Context, export cloud.ObjectRef, existing map[string]cloud.Image) error {
	m.status.Step = "copying"
	if e := m.status.Estimate; e != nil {
		m.setEta(ctx, e.CopySeconds+e.ImportSeconds)
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("moving %s to %s%s", m.source.Name,
		strings.Join(m.in.TargetRegions, ", "), m.etaLine()))
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	results := make([]TargetResult, len(m.in.TargetRegions))
	wg := workflow.NewWaitGroup(ctx)
	for i, r := range m.in.TargetRegions {
		wg.Add(1)
		workflow.Go(tctx, func(gctx workflow.Context) {
			defer wg.Done()
			img, ok := existing[r]
			results[i] = m.target(gctx, r, export, img, ok)
			if results[i].Status == "failed" && m.in.Policy == PolicyAll {
				cancel()
			}
		})
	}
	wg.Wait(ctx)
	m.result.Targets = results
	var failed []string
	for _, t := range results {
		if t.Status != "succeeded" {
			failed = append(failed, fmt.Sprintf("%s: %s", t.Region, t.Error))
		}
	}
	switch {
	case len(failed) == 0:
		return nil
	case m.in.Policy == PolicyBestEffort && len(failed) < len(results):
		return nil
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("migration %s of image %s failed for %d of %d targets: %s",
			m.id, m.in.ImageID, len(failed), len(results), strings.Join(failed, "; ")),
		"MigrationFailed",
		nil,
		m.result,
	)
}

// target brings one region to the wanted state: an image carrying the source's properties, tags
// and the coordinating stamp, shared as asked.
func (m *migration) target(
	ctx workflow.Context,
	region string,
	export cloud.ObjectRef,
	found cloud.Image,
	reused bool,
) TargetResult {
	res := TargetResult{Region: region, Reused: reused}
	fail := func(step string, err error) TargetResult {
		res.Status, res.Error = "failed", step+": "+reason(err)
		if temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled) {
			res.Status, res.Error = "cancelled", "cancelled after another target failed"
		}
		m.setTarget(ctx, region, res.Status)
		return res
	}
	imageID := found.ID
	if !reused {
		var step string
		var err error
		if m.uploads(region) {
			step, err = "upload", m.upload(ctx, region, export, &res)
		} else {
			step, err = m.copyAndImport(ctx, region, export, &res)
		}
		if err != nil {
			return fail(step, err)
		}
		imageID = res.ImageID
	}
	res.ImageID = imageID

	if reused && found.Checksum != m.source.Checksum {
		return fail(
			"verify",
			fmt.Errorf(
				"image %s found in %s has checksum %s, the source has %s",
				imageID,
				region,
				found.Checksum,
				m.source.Checksum,
			),
		)
	}
	m.setTarget(ctx, region, "tagging")
	fact := activities.Fact{
		Type: activities.FactMigrationTargetCompleted,
		ID:   runKey(ctx) + ":target:" + region,
		Data: map[string]any{"migration_id": m.id,
			"source_image_id": m.in.ImageID, "region": region, "image_id": imageID, "bytes": res.Bytes,
			"bytes_sent": res.BytesSent, "bytes_reused": res.BytesReused},
	}
	finish := activities.FinishTargetInput{Cloud: m.in.TargetCloud, Fact: &fact, Keep: m.keep(reused),
		Update: activities.UpdateImageInput{
			Region:     region,
			ImageID:    imageID,
			Properties: m.carriedProperties(),
			Tags:       m.source.Tags,
		}}
	if err := workflow.ExecuteActivity(withActivity(ctx, "carry properties and tags to "+imageID+", announce", 2*time.Minute), a.FinishTarget, finish).Get(ctx, nil); err != nil {
		return fail("finish", err)
	}
	if len(m.in.ShareWith) > 0 {
		m.setTarget(ctx, region, "sharing")
		id, err := m.share(ctx, region, imageID)
		if err != nil {
			return fail("share", err)
		}
		res.ShareWorkflowID = id
	}
	res.Status = "succeeded"
	m.setTarget(ctx, region, "done")
	return res
}

// setTarget records a target's step for the status query and the UI's current details, so the
// run's page shows where each region stands without a query.
func (m *migration) setTarget(ctx workflow.Context, region, step string) {
	m.status.Targets[region] = step
	parts := make([]string, len(m.in.TargetRegions))
	for i, r := range m.in.TargetRegions {
		parts[i] = r + ": " + m.status.Targets[r]
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("%s %s (%s, %d MiB) from %s\n%s%s", m.status.Step, m.source.Name,
		m.in.ImageID, m.source.Size>>20, m.in.SourceRegion, strings.Join(parts, "\n"), m.etaLine()))
}

// share starts a ShareImage for the new image (offers announced, decisions awaited, policies
// applied) and leaves it running: a partner may take days to answer; the migration is done.
func (m *migration) share(ctx workflow.Context, region, imageID string) (string, error) {
	in := ShareInput{Region: region, ImageID: imageID, Members: m.in.ShareWith}
	if err := in.Normalize(); err != nil {
		return "", err
	}
	id := ShareWorkflowID(m.source.Owner, in)
	// Disconnected: cancelling a child's context cancels the child, and this context ends with
	// the targets; the share must outlive them (and the migration: ABANDON).
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	cctx := workflow.WithChildOptions(dctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary:         fmt.Sprintf("share %s in %s with %s", imageID, region, strings.Join(in.Members, ", ")),
		TypedSearchAttributes: childAttributes(ctx, imageID, region, nil, in.Members),
	})
	var exec workflow.Execution
	err := workflow.ExecuteChildWorkflow(cctx, ShareImageWorkflow, in).GetChildWorkflowExecution().Get(ctx, &exec)
	var running *temporal.ChildWorkflowExecutionAlreadyStartedError
	if errors.As(err, &running) {
		return id, nil // this share is already waiting: an earlier run of this migration started it
	}
	return id, err
}

func (m *migration) targetName() string {
	if m.in.TargetName != "" {
		return m.in.TargetName
	}
	return m.source.Name
}

// carriedProperties are the source's custom properties plus the coordinating stamp.
func (m *migration) carriedProperties() map[string]string {
	props := activities.CustomProperties(m.source)
	props[PropMigrationID] = m.id
	props[PropSourceRegion] = m.in.SourceRegion
	props[PropSourceImageID] = m.in.ImageID
	return props
}

// finish deletes intermediate objects per the cleanup policy and announces the outcome, in one
// activity. It runs on a disconnected context so a cancelled migration still tidies up.
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
	in := activities.FinishMigrationInput{Fact: activities.Fact{Type: typ, ID: runKey(ctx) + ":" + typ, Data: data}}
	stopped := m.overdue || temporal.IsCanceledError(err)
	if stopped && !m.overdue {
		status, data["error"] = JobCancelled, "cancelled"
	}
	// A migration stopped on purpose is not resumed, so on-success tidies up after it too.
	if m.in.Cleanup == CleanupAlways || (m.in.Cleanup == CleanupOnSuccess && (err == nil || stopped)) {
		in.Cleanup, in.TargetCleanup = m.cleanups(m.in.ImageID)
		m.status.Step = "cleaning up"
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var n int
	// Cleanup may delete thousands of objects: it heartbeats, so a worker that dies in it hands
	// it on within the heartbeat timeout rather than the half hour it may take.
	fctx := withLongActivity(dctx, "clean up and announce "+typ, 30*time.Minute, m.in.HeartbeatTimeout.D())
	if ferr := workflow.ExecuteActivity(fctx, a.FinishMigration, in).Get(dctx, &n); ferr != nil {
		workflow.GetLogger(ctx).
			Warn("cleanup failed; intermediate objects remain", "container", m.container, "error", ferr)
		publish(dctx, typ, runKey(ctx)+":"+typ, data)
	}
	m.result.ObjectsDeleted = n
	setJobStatus(dctx, status, fmt.Sprintf("%s: %s", strings.ToLower(status), summarize(m.result)))
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

// setLineage turns incremental copies on when asked: the lineage is the account's server
// (LineageKey, else the source's instance_uuid), its container named from both.
func (m *migration) setLineage() error {
	if m.in.LineageKeep == 0 {
		return nil
	}
	key := m.in.LineageKey
	if key == "" {
		key = m.source.Properties["instance_uuid"]
	}
	if key == "" {
		return invalid("migrate: lineage_keep needs a lineage: image %s has no instance_uuid; name one with "+
			"lineage_key", m.in.ImageID)
	}
	sum := sha256.Sum256([]byte(m.source.Owner + "/" + key))
	m.lineage = &cloud.Lineage{Container: "imageflow-lineage-" + hex.EncodeToString(sum[:6]), Generation: m.in.ImageID}
	return nil
}

// keep is the lineage step of a target: a new copy becomes the newest kept generation (an image
// reused from an earlier run was kept then).
func (m *migration) keep(reused bool) *activities.KeepInput {
	if m.lineage == nil || reused {
		return nil
	}
	return &activities.KeepInput{Container: m.lineage.Container, Generation: m.lineage.Generation,
		Keep: m.in.LineageKeep}
}

// copyAndImport is Rackspace's way into a region: copy the export into its Cloud Files, then an
// import task. It returns the failing step's name with an error.
func (m *migration) copyAndImport(ctx workflow.Context, region string, export cloud.ObjectRef,
	res *TargetResult) (string, error) {
	m.setTarget(ctx, region, "copying")
	obj := cloud.ObjectRef{Region: region, Container: m.container, Object: m.in.ImageID + ".vhd"}
	start := workflow.Now(ctx)
	var copied cloud.CopyResult
	cctx := withLongActivity(ctx, fmt.Sprintf("copy %d MiB %s -> %s", m.source.Size>>20, export.Region, region),
		48*time.Hour, m.in.HeartbeatTimeout.D())
	err := workflow.ExecuteActivity(cctx, a.CopyObjectAcrossRegions, activities.CopyInput{Source: export, Target: obj,
		ExpectedMD5: m.source.Checksum, Lineage: m.lineage, TargetCloud: m.in.TargetCloud}).Get(ctx, &copied)
	if err != nil {
		return "copy", err
	}
	res.Bytes, res.BytesSent, res.BytesReused = copied.Bytes, copied.BytesSent, copied.BytesReused
	res.CopySeconds = workflow.Now(ctx).Sub(start).Seconds()

	m.setTarget(ctx, region, "importing")
	start = workflow.Now(ctx)
	var task cloud.Task
	ictx := withLongActivity(ctx, "import into "+region, 24*time.Hour, m.in.HeartbeatTimeout.D())
	if err := workflow.ExecuteActivity(ictx, a.ImportImage, activities.ImportInput{Cloud: m.in.TargetCloud, Region: region,
		Container: obj.Container, Object: obj.Object, Name: m.targetName(), ExpectedMD5: m.source.Checksum,
		Bytes: m.source.Size}).Get(ctx, &task); err != nil {
		return "import", err
	}
	res.ImportSeconds = workflow.Now(ctx).Sub(start).Seconds()
	res.ImageID = task.Result["image_id"]
	return "", nil
}

// uploads reports whether images arrive in (and leave) region through Glance's image data: it
// has no object store (a generic Glance), so no Rackspace task can reach it.
func (m *migration) uploads(region string) bool {
	info, ok := m.regions[region]
	return ok && !info.ObjectStore
}

// upload streams the export into a new image in region, through the worker.
func (m *migration) upload(ctx workflow.Context, region string, export cloud.ObjectRef, res *TargetResult) error {
	m.setTarget(ctx, region, "uploading")
	start := workflow.Now(ctx)
	var img cloud.Image
	uctx := withLongActivity(ctx, fmt.Sprintf("upload %d MiB %s -> %s (Glance)", m.source.Size>>20, export.Region,
		region), 48*time.Hour, m.in.HeartbeatTimeout.D())
	if err := workflow.ExecuteActivity(uctx, a.UploadImage, activities.UploadInput{TargetCloud: m.in.TargetCloud, Source: export, Region: region,
		ExpectedHashAlgo: m.source.Properties["os_hash_algo"], ExpectedHashValue: m.source.Properties["os_hash_value"],
		Name: m.targetName(), ExpectedMD5: m.source.Checksum, StampKey: PropMigrationID, StampValue: m.id}).
		Get(ctx, &img); err != nil {
		return err
	}
	res.Bytes, res.BytesSent, res.ImageID = img.Size, img.Size, img.ID
	res.CopySeconds = workflow.Now(ctx).Sub(start).Seconds()
	return nil
}

// describeRegions learns how the image leaves the source and arrives in each target (checking
// each is in its cloud's catalog: a region that is not fails the migration at once).
func (m *migration) describeRegions(ctx workflow.Context) error {
	ask := func(cloudName string, regions []string) (map[string]activities.RegionInfo, error) {
		out := map[string]activities.RegionInfo{}
		dctx := withActivity(ctx, "how images leave and arrive in "+strings.Join(regions, ", "), time.Minute)
		err := workflow.ExecuteActivity(dctx, a.DescribeRegions, activities.DescribeInput{Cloud: cloudName,
			Regions: regions}).Get(ctx, &out)
		return out, err
	}
	if m.in.TargetCloud == "" {
		all, err := ask("", append([]string{m.in.SourceRegion}, m.in.TargetRegions...))
		m.sourceInfo, m.regions = all[m.in.SourceRegion], all
		return err
	}
	src, err := ask("", []string{m.in.SourceRegion})
	if err != nil {
		return err
	}
	m.sourceInfo = src[m.in.SourceRegion]
	m.regions, err = ask(m.in.TargetCloud, m.in.TargetRegions)
	return err
}

// cleanups are the objects the migration may have left: the source's export (when it had one)
// and the targets it copied into (not those it uploaded to), each in its own cloud.
func (m *migration) cleanups(prefix string) (own, peer *activities.CleanupInput) {
	mk := func(cloudName string, regions []string) *activities.CleanupInput {
		if len(regions) == 0 {
			return nil
		}
		return &activities.CleanupInput{Cloud: cloudName, Regions: regions, Container: m.container, Prefix: prefix}
	}
	var src, targets []string
	if m.sourceInfo.ObjectStore {
		src = []string{m.in.SourceRegion}
	}
	for _, r := range m.in.TargetRegions {
		if !m.uploads(r) {
			targets = append(targets, r)
		}
	}
	if m.in.TargetCloud == "" {
		return mk("", append(src, targets...)), nil
	}
	return mk("", src), mk(m.in.TargetCloud, targets)
}
