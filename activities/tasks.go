package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/imageflow/imageflow/cloud"
)

// ExportInput exports an image to a container in its own region.
type ExportInput struct {
	Region    string `json:"region"`
	ImageID   string `json:"image_id"`
	Container string `json:"container"`
	// Bytes is the image's size, when known, to measure the cloud's task throughput by.
	Bytes int64 `json:"bytes,omitempty"`
}

// StartExport starts an export task, or adopts the one an earlier attempt of this activity
// started (see adoptTask). An export already complete in the container counts as done.
func (a *Activities) StartExport(ctx context.Context, in ExportInput) (cloud.Task, error) {
	obj := in.ImageID + ".vhd"
	if info, err := a.cloud.HeadObject(ctx, in.Region, in.Container, obj); err == nil && info.Manifest != "" &&
		info.Size > 0 {
		img, err := a.cloud.GetImage(ctx, in.Region, in.ImageID)
		if err == nil && img.Size == info.Size {
			return cloud.Task{
				Type:   "export",
				Status: "success",
				Result: map[string]string{"export_location": in.Container + "/" + obj},
			}, nil
		}
	}
	filter := cloud.TaskFilter{
		Type:  "export",
		Input: map[string]string{"image_uuid": in.ImageID, "receiving_swift_container": in.Container},
	}
	t, ok, err := a.adoptTask(ctx, in.Region, filter)
	// A successful export whose object is not (or no longer) complete is an earlier run's,
	// cleaned up since: export again.
	if err != nil || (ok && t.Status != "success") {
		return t, err
	}
	t, err = a.cloud.Export(ctx, in.Region, in.ImageID, in.Container)
	return t, temporalError(err, "")
}

// ImportInput imports "<Container>/<Object>" as a new image called Name.
type ImportInput struct {
	Cloud     string `json:"cloud,omitempty"` // a peer the worker holds; "" for its own
	Region    string `json:"region"`
	Container string `json:"container"`
	Object    string `json:"object"`
	Name      string `json:"name"`
	// ExpectedMD5, when set, must equal the new image's checksum (the source image's).
	ExpectedMD5 string `json:"expected_md5,omitempty"`
	// Bytes is the object's size, when known, to measure the cloud's task throughput by.
	Bytes int64 `json:"bytes,omitempty"`
	// DeleteMismatch deletes a new image whose checksum is not ExpectedMD5 instead of leaving it
	// for inspection: the caller will mend the copy and import it again.
	DeleteMismatch bool `json:"delete_mismatch,omitempty"`
	// NotTask is an import of the same object not to adopt: the one whose image failed the check.
	NotTask string `json:"not_task,omitempty"`
}

// IntegrityFailure is the detail of an import's ErrIntegrity: which image failed the check,
// made by which task, and whether it was deleted (see ImportInput.DeleteMismatch).
type IntegrityFailure struct {
	ImageID string `json:"image_id"`
	TaskID  string `json:"task_id"`
	Deleted bool   `json:"deleted"`
}

// StartImport starts an import task, or adopts the one an earlier attempt of this activity
// started for the same object (see adoptTask), so a retry never imports twice.
func (a *Activities) StartImport(ctx context.Context, in ImportInput) (cloud.Task, error) {
	filter := cloud.TaskFilter{Type: "import", Input: map[string]string{"import_from": in.Container + "/" + in.Object}}
	if in.NotTask != "" {
		filter.Except = []string{in.NotTask}
	}
	if t, ok, err := a.adoptTask(ctx, in.Region, filter); err != nil || ok {
		return t, err
	}
	t, err := a.cloud.Import(ctx, in.Region, in.Container, in.Object, in.Name)
	return t, temporalError(err, "")
}

// adoptionSkew allows for clocks: the cloud stamps created_at, the worker the schedule time.
const adoptionSkew = time.Minute

// adoptTask finds the task an earlier attempt of this activity started. First by the id the
// attempt heartbeated, in any status: that task is certainly ours. Then, for an attempt that
// died before its first heartbeat, by a matching task that has not failed, created since the
// activity was first scheduled; older tasks belong to earlier runs and are left alone, and a
// failed match may be an earlier run's too (clocks differ), so it is not held against this one.
func (a *Activities) adoptTask(ctx context.Context, region string, f cloud.TaskFilter) (cloud.Task, bool, error) {
	log := activity.GetLogger(ctx)
	var prev TaskProgress
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &prev) == nil && prev.TaskID != "" {
		t, err := a.cloud.GetTask(ctx, region, prev.TaskID)
		if err == nil {
			log.Info("adopting the task an earlier attempt started", "task", t.ID, "status", t.Status)
			return t, true, nil
		}
		if !cloud.IsNotFound(err) {
			return t, false, temporalError(err, "")
		}
	}
	f.Since, f.NotFailed = activity.GetInfo(ctx).ScheduledTime.Add(-adoptionSkew), true
	t, ok, err := a.cloud.FindTask(ctx, region, f)
	if err != nil {
		return t, false, temporalError(err, "")
	}
	if ok {
		log.Info("found the task an earlier attempt started", "task", t.ID, "status", t.Status)
	}
	return t, ok, nil
}

// TaskRef names a task in a region.
type TaskRef struct {
	Region string `json:"region"`
	TaskID string `json:"task_id"`
}

// GetTask reads a task once.
func (a *Activities) GetTask(ctx context.Context, in TaskRef) (cloud.Task, error) {
	t, err := a.cloud.GetTask(ctx, in.Region, in.TaskID)
	return t, temporalError(err, "")
}

// TaskProgress is a task wait's heartbeat: which task, and how it stood at the last poll. A
// retried attempt reads TaskID back and adopts the task instead of starting another.
type TaskProgress struct {
	Region string `json:"region"`
	TaskID string `json:"task_id"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Polls  int    `json:"polls"`
}

// WaitForTask polls a task until it ends (see waitTask).
func (a *Activities) WaitForTask(ctx context.Context, in TaskRef) (cloud.Task, error) {
	hb := startBeat(ctx, TaskProgress{Region: in.Region, TaskID: in.TaskID})
	defer hb.stop()
	return a.waitTask(ctx, in, hb, time.Time{})
}

// ExportImage ensures the container, starts or adopts the export and waits for it: one
// activity in the workflow's history instead of three.
func (a *Activities) ExportImage(ctx context.Context, in ExportInput) (cloud.Task, error) {
	hb := startBeat(ctx, nil)
	defer hb.stop()
	if err := a.EnsureContainer(ctx, ContainerInput{Region: in.Region, Container: in.Container}); err != nil {
		return cloud.Task{}, err
	}
	t, err := a.StartExport(ctx, in)
	if err != nil {
		return t, err
	}
	t, err = a.settle(ctx, in.Region, t, hb, in.Bytes)
	a.meter.observeTask(t, in.Bytes)
	return t, err
}

// ImportImage starts or adopts the import, waits for it, and checks the new image's checksum
// against ExpectedMD5: the end-to-end proof that the bytes that left the source arrived.
func (a *Activities) ImportImage(ctx context.Context, in ImportInput) (cloud.Task, error) {
	a, err := a.as(in.Cloud)
	if err != nil {
		return cloud.Task{}, err
	}
	hb := startBeat(ctx, nil)
	defer hb.stop()
	t, err := a.StartImport(ctx, in)
	if err == nil {
		t, err = a.settle(ctx, in.Region, t, hb, in.Bytes)
		a.meter.observeTask(t, in.Bytes)
	}
	if err != nil || in.ExpectedMD5 == "" {
		return t, err
	}
	img, err := a.GetImage(ctx, ImageRef{Region: in.Region, ImageID: t.Result["image_id"]})
	if err != nil {
		return t, err
	}
	if img.Checksum != in.ExpectedMD5 {
		return t, a.mismatch(ctx, in, img, t.ID)
	}
	return t, nil
}

// mismatch is the error of an imported image whose checksum is not the source's; the image is
// deleted first when the caller will mend the copy and import again.
func (a *Activities) mismatch(ctx context.Context, in ImportInput, img cloud.Image, taskID string) error {
	fate := "it was left in place for inspection"
	deleted := false
	if in.DeleteMismatch {
		err := a.cloud.DeleteImage(ctx, in.Region, img.ID)
		if deleted = err == nil || cloud.IsNotFound(err); deleted {
			fate = "it was deleted"
		}
	}
	msg := fmt.Sprintf("imported image %s in %s has checksum %s, the source has %s; %s", img.ID, in.Region,
		img.Checksum, in.ExpectedMD5, fate)
	return temporal.NewNonRetryableApplicationError(msg, ErrIntegrity, nil,
		IntegrityFailure{ImageID: img.ID, TaskID: taskID, Deleted: deleted})
}

// settle records the task in the heartbeat (so a retry adopts it) and waits for it to end,
// polling near when a task of bytes should end at the worker's measured task rate.
func (a *Activities) settle(ctx context.Context, region string, t cloud.Task, hb *beat,
	bytes int64) (cloud.Task, error) {
	if t.ID != "" {
		hb.set(TaskProgress{Region: region, TaskID: t.ID, Type: t.Type, Status: t.Status})
	}
	if t.Done() {
		return t, taskOutcome(region, t)
	}
	return a.waitTask(ctx, TaskRef{Region: region, TaskID: t.ID}, hb, a.expectedEnd(t, bytes))
}

// expectedEnd is when a task of bytes should end at the measured task rate, plus a thirty-third
// of its duration, so that one poll there catches a task up to 3% slower than measured (zero:
// unknown).
func (a *Activities) expectedEnd(t cloud.Task, bytes int64) time.Time {
	rate := a.meter.current().TaskBytesPerSecond
	if bytes <= 0 || rate <= 0 {
		return time.Time{}
	}
	// A task this attempt just made began now: the cloud stamps created_at to the second, up to
	// a second early. An adopted one began when the cloud says.
	began, now := t.CreatedAt, time.Now()
	if began.IsZero() || now.Sub(began) < 2*time.Second {
		began = now
	}
	d := time.Duration(float64(bytes) / rate * float64(time.Second))
	return began.Add(d + d/33)
}

func taskOutcome(region string, t cloud.Task) error {
	if t.Status == "failure" {
		return nonRetryable(ErrTaskFailed, fmt.Sprintf("%s task %s in %s failed: %s", t.Type, t.ID, region, t.Message))
	}
	return nil
}

// pollTimeout bounds one task poll, so a hung connection is retried rather than waited on.
const pollTimeout = time.Minute

// waitTask polls until the task ends. Polls start at TaskPollInterval and double up to
// TaskPollMaxInterval, but never past half the heartbeat timeout, so every heartbeat carries a
// fresh status; the beat keeps the activity alive between polls whatever their spacing. With an
// expected end, a poll lands just after it (see nextPoll). A transient poll failure (503, a 413
// with Retry-After) is waited out, not returned.
func (a *Activities) waitTask(ctx context.Context, in TaskRef, hb *beat, expect time.Time) (cloud.Task, error) {
	ceiling := a.cfg.TaskPollMaxInterval
	if ht := activity.GetInfo(ctx).HeartbeatTimeout; ht > 0 {
		ceiling = min(ceiling, ht/2)
	}
	wait := min(a.cfg.TaskPollInterval, ceiling)
	for polls := 1; ; polls++ {
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		t, err := a.cloud.GetTask(pctx, in.Region, in.TaskID)
		cancel()
		next := nextPoll(time.Now(), expect, wait, a.cfg.TaskPollInterval, ceiling)
		switch {
		case err == nil:
			WaitOver(ctx)
			hb.set(TaskProgress{Region: in.Region, TaskID: t.ID, Type: t.Type, Status: t.Status, Polls: polls})
			if t.Done() {
				return t, taskOutcome(in.Region, t)
			}
		case ctx.Err() != nil:
			return t, ctx.Err()
		case TransientPoll(err):
			activity.GetLogger(ctx).Warn("task poll failed; will poll again", "task", in.TaskID, "error", err)
			WaitingInside(ctx, fmt.Sprintf("%s images: poll of task %s: %s", in.Region, in.TaskID, CauseOf(err)))
			var ce *cloud.Error
			if errors.As(err, &ce) && ce.RetryAfter > next {
				next = ce.RetryAfter
			}
		default:
			return t, temporalError(err, "")
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(next):
		}
		wait = min(2*wait, ceiling)
	}
}

// nextPoll is the wait before the next poll of a task expected to end at expect. Without an
// expectation it is wait (the doubling backoff). Before the expected end, polls are placed so
// one lands just after it, where a doubling backoff could miss the end by up to its ceiling (a
// finished 6-minute task noticed a minute late). No poll may come closer than floor (the cloud's
// asked-for spacing) to the one before, so a poll that would land within floor of that mark
// is moved: to exactly floor before it, or, when the wait cannot be split, to the mark itself
// (left alone it forced the poll after the end up to 30 s late, by the task's phase).
// After the end, polls come at a fortieth of the overrun (a task 10 minutes late is noticed
// within 15 s of ending), never closer than floor nor further than ceiling.
func nextPoll(now, expect time.Time, wait, floor, ceiling time.Duration) time.Duration {
	if expect.IsZero() {
		return wait
	}
	floor = min(floor, ceiling)
	if left := expect.Sub(now); left > 0 {
		mark := left + floor/10
		switch {
		case mark <= wait:
			return max(mark, floor)
		case mark-wait >= floor:
			return wait
		case mark-floor >= floor:
			return mark - floor
		default:
			return min(mark, ceiling)
		}
	}
	return min(max(now.Sub(expect)/40, floor), ceiling)
}

// TransientPoll reports a poll failure worth waiting out: the cloud busy or away, or one poll
// that hung past pollTimeout.
func TransientPoll(err error) bool {
	switch cloud.KindOf(err) {
	case cloud.Unavailable, cloud.RateLimited:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// CauseOf is a cloud failure without the operation it failed in (the caller names that): the
// status and the cloud's own message, or the transport's error.
func CauseOf(err error) string {
	var ce *cloud.Error
	if !errors.As(err, &ce) {
		return err.Error()
	}
	if ce.Status == 0 && ce.Err != nil {
		return string(ce.Kind) + ": " + ce.Err.Error()
	}
	s := fmt.Sprintf("%d %s", ce.Status, ce.Kind)
	if ce.Message != "" {
		s += ": " + ce.Message
	}
	return s
}
