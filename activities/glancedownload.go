package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/imageflow/imageflow/cloud"
)

// errNoCloudPath says the cloud cannot move the image itself here: stream it instead.
var errNoCloudPath = errors.New("no import method of the target's own for this source")

// pullInCloud brings the source image into the target region with Glance's glance-download
// when the target offers it and the source is a Glance image of the same cloud in another
// region: the target's Glance pulls the bytes itself and none pass through the worker. It
// answers errNoCloudPath when that path does not apply, or failed before the image arrived (the
// caller then streams, as it would have).
func (a *Activities) pullInCloud(ctx context.Context, t *Activities, in UploadInput, hb *beat) (cloud.Image, error) {
	if in.TargetCloud != "" || in.Source.Image == "" || in.Source.Region == in.Region {
		return cloud.Image{}, errNoCloudPath
	}
	if ok, err := t.cloud.Offers(ctx, in.Region, cloud.MethodGlanceDownload); err != nil || !ok {
		return cloud.Image{}, errNoCloudPath
	}
	spec := in.Image
	spec.Properties = map[string]string{in.StampKey: in.StampValue}
	img, err := t.cloud.CreateImage(ctx, in.Region, spec)
	if err != nil {
		return img, temporalError(err, "")
	}
	prog := UploadProgress{TargetRegion: in.Region, ImageID: img.ID, Method: cloud.MethodGlanceDownload}
	hb.set(prog)
	if err := t.cloud.GlanceDownload(ctx, in.Region, img.ID, in.Source.Region, in.Source.Image); err != nil {
		activity.GetLogger(ctx).Warn("glance-download refused; streaming instead", "error", err)
		_ = t.cloud.DeleteImage(ctx, in.Region, img.ID)
		return img, errNoCloudPath
	}
	wait := a.cfg.TaskPollInterval
	for {
		select {
		case <-ctx.Done():
			return img, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, a.cfg.TaskPollMaxInterval)
		if img, err = t.cloud.GetImage(ctx, in.Region, img.ID); err != nil {
			return img, temporalError(err, "")
		}
		switch img.Status {
		case "active":
			prog.BytesDone, prog.BytesTotal = img.Size, img.Size
			hb.set(prog)
			return img, nil
		case "queued", "killed", "deleted":
			activity.GetLogger(ctx).Warn("glance-download failed in the target; streaming instead",
				"region", in.Region, "image", img.ID, "status", img.Status)
			_ = t.cloud.DeleteImage(ctx, in.Region, img.ID)
			return img, errNoCloudPath
		}
		hb.set(prog) // importing: still alive
	}
}

// checkArrived compares the arrived image's hashes with the source's, deleting it on a mismatch.
func (t *Activities) checkArrived(ctx context.Context, img cloud.Image, in UploadInput, how string) error {
	if msg := hashMismatch(img, in); msg != "" {
		_ = t.cloud.DeleteImage(ctx, in.Region, img.ID)
		return nonRetryable(ErrIntegrity, fmt.Sprintf("%s image %s in %s %s; it was deleted", how, img.ID,
			in.Region, msg))
	}
	return nil
}
