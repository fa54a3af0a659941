package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/imageflow/imageflow/cloud"
)

// ExportInput exports an image to a container in its own region.
type ExportInput struct {
	Region    string `json:"region"`
	ImageID   string `json:"image_id"`
	Container string `json:"container"`
}

// StartExport starts an export task. If an earlier attempt's export already sits complete in
// the container, it reports that as a finished task instead of exporting twice.
func (a *Activities) StartExport(ctx context.Context, in ExportInput) (cloud.Task, error) {
	obj := in.ImageID + ".vhd"
	if info, err := a.cloud.HeadObject(ctx, in.Region, in.Container, obj); err == nil && info.Manifest != "" && info.Size > 0 {
		img, err := a.cloud.GetImage(ctx, in.Region, in.ImageID)
		if err == nil && img.Size == info.Size {
			return cloud.Task{Type: "export", Status: "success", Result: map[string]string{"export_location": in.Container + "/" + obj}}, nil
		}
	}
	t, err := a.cloud.Export(ctx, in.Region, in.ImageID, in.Container)
	return t, temporalError(err, "")
}

// ImportInput imports "<Container>/<Object>" as a new image called Name.
type ImportInput struct {
	Region    string `json:"region"`
	Container string `json:"container"`
	Object    string `json:"object"`
	Name      string `json:"name"`
	// ExpectedMD5, when set, must equal the new image's checksum (the source image's).
	ExpectedMD5 string `json:"expected_md5,omitempty"`
}

// StartImport starts an import task, unless an earlier attempt already started one for the same
// object (its answer may have been lost with a crashed worker): then it returns that task, so a
// retry never imports twice.
func (a *Activities) StartImport(ctx context.Context, in ImportInput) (cloud.Task, error) {
	from := in.Container + "/" + in.Object
	if t, ok, err := a.cloud.FindTask(ctx, in.Region, "import", "import_from", from); err != nil {
		return t, temporalError(err, "")
	} else if ok {
		activity.GetLogger(ctx).Info("found the import task an earlier attempt started", "task", t.ID, "import_from", from)
		return t, nil
	}
	t, err := a.cloud.Import(ctx, in.Region, in.Container, in.Object, in.Name)
	return t, temporalError(err, "")
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

// WaitForTask polls a task until it ends, heartbeating each poll, with waits that start at the
// configured interval and double up to the cap. It returns a successful task; a failed one
// becomes a non-retryable TaskFailed error carrying the cloud's message. Polling here keeps the
// loop out of workflow history.
func (a *Activities) WaitForTask(ctx context.Context, in TaskRef) (cloud.Task, error) {
	return a.waitTask(ctx, in)
}

// ExportImage ensures the container, starts the export (or finds the finished one) and waits for
// it: one activity in the workflow's history instead of three.
func (a *Activities) ExportImage(ctx context.Context, in ExportInput) (cloud.Task, error) {
	if err := a.EnsureContainer(ctx, ContainerInput{Region: in.Region, Container: in.Container}); err != nil {
		return cloud.Task{}, err
	}
	t, err := a.StartExport(ctx, in)
	if err != nil || t.Done() {
		return t, err
	}
	return a.waitTask(ctx, TaskRef{Region: in.Region, TaskID: t.ID})
}

// ImportImage starts the import (or finds the one an earlier attempt started), waits for it,
// and checks the new image's checksum against ExpectedMD5: the end-to-end proof that the bytes
// that left the source are the bytes that arrived.
func (a *Activities) ImportImage(ctx context.Context, in ImportInput) (cloud.Task, error) {
	t, err := a.StartImport(ctx, in)
	if err == nil && !t.Done() {
		t, err = a.waitTask(ctx, TaskRef{Region: in.Region, TaskID: t.ID})
	}
	if err != nil || in.ExpectedMD5 == "" {
		return t, err
	}
	img, err := a.GetImage(ctx, ImageRef{Region: in.Region, ImageID: t.Result["image_id"]})
	if err != nil {
		return t, err
	}
	if img.Checksum != in.ExpectedMD5 {
		return t, nonRetryable(ErrIntegrity, fmt.Sprintf("imported image %s in %s has checksum %s, the source has %s; it was left in place for inspection",
			img.ID, in.Region, img.Checksum, in.ExpectedMD5))
	}
	return t, nil
}

func (a *Activities) waitTask(ctx context.Context, in TaskRef) (cloud.Task, error) {
	wait := a.cfg.TaskPollInterval
	for {
		t, err := a.cloud.GetTask(ctx, in.Region, in.TaskID)
		switch cloud.KindOf(err) {
		case "":
			if err != nil {
				return t, err
			}
		case cloud.Unavailable, cloud.RateLimited:
			// a transient failure while waiting is not a reason to give up the wait
			activity.GetLogger(ctx).Warn("task poll failed; will poll again", "task", in.TaskID, "error", err)
		default:
			return t, temporalError(err, "")
		}
		if err == nil {
			activity.RecordHeartbeat(ctx, t.Status)
			if t.Status == "success" {
				return t, nil
			}
			if t.Status == "failure" {
				return t, nonRetryable(ErrTaskFailed, fmt.Sprintf("%s task %s in %s failed: %s", t.Type, t.ID, in.Region, t.Message))
			}
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, a.cfg.TaskPollMaxInterval)
	}
}
