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

// export runs the source region's export task into the migration's container and returns the
// exported object.
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
	export := activities.ExportInput{Region: in.SourceRegion, ImageID: in.ImageID, Container: m.container,
		Bytes: m.source.Size}
	if err := workflow.ExecuteActivity(ectx, a.ExportImage, export).Get(ctx, &task); err != nil {
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
	// Each target has its own step (copying, importing, ...); the run's is "migrating".
	m.status.Step = "migrating"
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
			"bytes_sent": res.BytesSent, "bytes_reused": res.BytesReused,
			// reused: the image an earlier run made was found and kept, so nothing was sent (the byte
			// counts are zero for that reason, not because the copy was empty).
			"reused": reused},
	}
	finish := activities.FinishTargetInput{Cloud: m.in.TargetCloud, Fact: &fact, Keep: m.keep(reused),
		Update: activities.UpdateImageInput{
			Region:     region,
			ImageID:    imageID,
			Properties: m.carriedProperties(),
			Tags:       m.source.Tags,
			Visibility: m.shareVisibility(region),
		}}
	fctx := withActivity(ctx, "carry properties and tags to "+imageID+", announce", 2*time.Minute)
	if err := workflow.ExecuteActivity(fctx, a.FinishTarget, finish).Get(ctx, nil); err != nil {
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
	m.recovered(ctx)
	m.status.Targets[region] = step
	m.showTargets(ctx)
}

// showTargets writes where each region stands, and the ETA, into the UI's current details.
func (m *migration) showTargets(ctx workflow.Context) {
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
	if m.lineage != nil {
		props[activities.PropLineage] = m.lineageKey // so retention can keep a lineage's newest copies
	}
	return props
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
	m.lineageKey = key
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
//
// The import's checksum against the source's is the copy's end-to-end proof, so the copy does
// not hash the pieces it cuts from source segments (most of its CPU otherwise). When that proof
// fails, the image is deleted, the copy rechecked against the source (only pieces that differ
// are sent again) and imported once more; a second mismatch is left for inspection.
func (m *migration) copyAndImport(ctx workflow.Context, region string, export cloud.ObjectRef,
	res *TargetResult) (string, error) {
	m.setTarget(ctx, region, "copying")
	obj := cloud.ObjectRef{Region: region, Container: m.container, Object: m.in.ImageID + ".vhd"}
	if err := m.copyTo(ctx, export, obj, false, res); err != nil {
		return "copy", err
	}
	task, err := m.importFrom(ctx, obj, "", res)
	if failed, ok := integrityFailure(err); ok && failed.Deleted {
		workflow.GetLogger(ctx).Warn("the imported image is not the source; rechecking the copy", "region", region,
			"image", failed.ImageID)
		m.setTarget(ctx, region, "rechecking the copy")
		if err := m.copyTo(ctx, export, obj, true, res); err != nil {
			return "recheck", err
		}
		task, err = m.importFrom(ctx, obj, failed.TaskID, res)
	}
	if err != nil {
		return "import", err
	}
	res.ImageID = task.Result["image_id"]
	return "", nil
}

// copyTo copies the export into obj, or with recheck mends what an earlier copy got wrong.
func (m *migration) copyTo(ctx workflow.Context, export, obj cloud.ObjectRef, recheck bool, res *TargetResult) error {
	start := workflow.Now(ctx)
	var copied cloud.CopyResult
	what := fmt.Sprintf("copy %d MiB %s -> %s", m.source.Size>>20, export.Region, obj.Region)
	if recheck {
		what = "recheck " + what
	}
	cctx := withLongActivity(ctx, what, 48*time.Hour, m.in.HeartbeatTimeout.D())
	err := workflow.ExecuteActivity(cctx, a.CopyObjectAcrossRegions, activities.CopyInput{Source: export, Target: obj,
		ExpectedMD5: m.source.Checksum, Lineage: m.lineage, TargetCloud: m.in.TargetCloud, ProvenAtEnd: true,
		Recheck: recheck, ExpectedEnd: m.copyExpectedEnd()}).Get(ctx, &copied)
	if err != nil {
		return err
	}
	res.Bytes, res.BytesSent, res.BytesReused = copied.Bytes, res.BytesSent+copied.BytesSent, copied.BytesReused
	res.CopySeconds += workflow.Now(ctx).Sub(start).Seconds()
	return nil
}

// importFrom imports obj and checks its checksum; notTask is an earlier import not to adopt.
func (m *migration) importFrom(ctx workflow.Context, obj cloud.ObjectRef, notTask string,
	res *TargetResult) (cloud.Task, error) {
	m.setTarget(ctx, obj.Region, "importing")
	start := workflow.Now(ctx)
	var task cloud.Task
	ictx := withLongActivity(ctx, "import into "+obj.Region, 24*time.Hour, m.in.HeartbeatTimeout.D())
	err := workflow.ExecuteActivity(ictx, a.ImportImage, activities.ImportInput{Cloud: m.in.TargetCloud,
		Region: obj.Region, Container: obj.Container, Object: obj.Object, Name: m.targetName(),
		ExpectedMD5: m.source.Checksum, Bytes: m.source.Size, DeleteMismatch: notTask == "",
		NotTask: notTask}).Get(ctx, &task)
	res.ImportSeconds += workflow.Now(ctx).Sub(start).Seconds()
	return task, err
}

// integrityFailure reads an import's checksum mismatch out of err.
func integrityFailure(err error) (activities.IntegrityFailure, bool) {
	var ae *temporal.ApplicationError
	var failed activities.IntegrityFailure
	if !errors.As(err, &ae) || ae.Type() != activities.ErrIntegrity || !ae.HasDetails() {
		return failed, false
	}
	return failed, ae.Details(&failed) == nil
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
	var up activities.UploadResult
	uctx := withLongActivity(ctx, fmt.Sprintf("upload %d MiB %s -> %s (Glance)", m.source.Size>>20, export.Region,
		region), 48*time.Hour, m.in.HeartbeatTimeout.D())
	in := activities.UploadInput{
		TargetCloud: m.in.TargetCloud, Source: export, Region: region,
		ExpectedHashAlgo: m.source.Properties["os_hash_algo"], ExpectedHashValue: m.source.Properties["os_hash_value"],
		Image: m.newImage(), ExpectedMD5: m.source.Checksum, StampKey: PropMigrationID, StampValue: m.id}
	if m.regions[region].Staging {
		in.Stage = cloud.ObjectRef{Region: region, Container: m.container, Object: m.in.ImageID + ".img"}
	}
	if err := workflow.ExecuteActivity(uctx, a.UploadImage, in).Get(ctx, &up); err != nil {
		return err
	}
	res.Bytes, res.BytesSent, res.ImageID, res.Path = up.Size, up.BytesSent, up.ID, up.Method
	res.CopySeconds = workflow.Now(ctx).Sub(start).Seconds()
	return nil
}

// shareVisibility is "shared" for a target this job shares in a Glance that takes members only
// on shared images (a generic OpenStack; Rackspace takes them on private ones), else "".
func (m *migration) shareVisibility(region string) string {
	if len(m.in.ShareWith) > 0 && m.uploads(region) {
		return "shared"
	}
	return ""
}

// formatsFit refuses, before any byte moves, a source a target cannot take: a region that
// imports through Rackspace-style tasks takes only VHD, and a qcow2 or raw image copied there
// failed at the import ("not a valid VHD") after the whole copy.
func (m *migration) formatsFit() error {
	for _, r := range m.in.TargetRegions {
		info := m.regions[r]
		if limit := info.MaxImportSize; info.ObjectStore && limit > 0 && m.source.Size > limit {
			return invalid("migration %s cannot start: image %s is %d bytes, and %s's import tasks take at most "+
				"%d (the cloud's limit, IMAGEFLOW_CLOUD_MAX_IMPORT_SIZE); nothing was exported or copied",
				m.id, m.in.ImageID, m.source.Size, r, limit)
		}
	}
	f, _ := m.sourceFormats()
	if f == "" || f == "vhd" {
		return nil
	}
	for _, r := range m.in.TargetRegions {
		if !m.uploads(r) {
			return invalid("migration %s cannot start: image %s is %s, and %s imports only VHD (through "+
				"import tasks); convert it first (qemu-img convert -O vpc), or migrate it to a region that "+
				"takes image uploads", m.id, m.in.ImageID, f, r)
		}
	}
	return nil
}

// newImage is the target image as its source describes it: formats, minimums, and visibility
// (shared when the job shares it: a private image takes no members).
func (m *migration) newImage() cloud.NewImage {
	vis := m.source.Visibility
	switch {
	case len(m.in.ShareWith) > 0:
		vis = "shared"
	case vis != "private" && vis != "shared" && vis != "community":
		vis = "" // public needs an administrator: leave it to the cloud's default
	}
	disk, container := m.sourceFormats()
	return cloud.NewImage{Name: m.targetName(), DiskFormat: disk, ContainerFormat: container,
		MinDisk: m.source.MinDisk, MinRAM: m.source.MinRAM, Visibility: vis}
}

// sourceFormats are the formats of the bytes that leave the source: an export task writes a
// plain VHD (Rackspace lists its images as vhd in ovf, but exports no OVF package); a region
// without tasks hands over the image's data as stored.
func (m *migration) sourceFormats() (disk, container string) {
	if m.sourceInfo.ObjectStore {
		return "vhd", "bare"
	}
	return m.source.DiskFormat, m.source.ContainerFormat
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
// and the targets it copied or staged into (not those it only uploaded to), each in its own cloud.
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
		if !m.uploads(r) || m.regions[r].Staging {
			targets = append(targets, r)
		}
	}
	if m.in.TargetCloud == "" {
		return mk("", append(src, targets...)), nil
	}
	return mk("", src), mk(m.in.TargetCloud, targets)
}
