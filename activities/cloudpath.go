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

// pullInCloud brings the source into the target region with the target Glance's own import, so
// none of its bytes pass through the worker: glance-download when the source is a Glance image
// of the same cloud in another region, web-download of a temporary URL when the source is an
// object in an object store (an export). It answers errNoCloudPath when neither applies, or the
// import failed before the image arrived (the caller then streams, as it would have).
func (a *Activities) pullInCloud(ctx context.Context, t *Activities, in UploadInput, hb *beat) (cloud.Image, string,
	error) {
	method, start, ok := a.cloudPath(ctx, t, in)
	if !ok {
		return cloud.Image{}, "", errNoCloudPath
	}
	img, err := t.importWith(ctx, in, hb, method, start)
	return img, method, err
}

// importWith creates the stamped image and has the target's Glance fill it by method (start
// begins the import), waiting until it is active. A refused or failed import answers
// errNoCloudPath, the image deleted, so the caller can stream instead.
func (t *Activities) importWith(ctx context.Context, in UploadInput, hb *beat, method string,
	start func(id string) error) (cloud.Image, error) {
	spec := in.Image
	spec.Properties = map[string]string{in.StampKey: in.StampValue}
	img, err := t.cloud.CreateImage(ctx, in.Region, spec)
	if err != nil {
		return img, temporalError(err, "")
	}
	prog := UploadProgress{TargetRegion: in.Region, ImageID: img.ID, Method: method}
	hb.set(prog)
	if err := start(img.ID); err != nil {
		activity.GetLogger(ctx).Warn(method+" refused; streaming instead", "error", err)
		_ = t.cloud.DeleteImage(ctx, in.Region, img.ID)
		return img, errNoCloudPath
	}
	wait := t.cfg.TaskPollInterval
	for {
		select {
		case <-ctx.Done():
			return img, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, t.cfg.TaskPollMaxInterval)
		if img, err = t.cloud.GetImage(ctx, in.Region, img.ID); err != nil {
			return img, temporalError(err, "")
		}
		switch img.Status {
		case "active":
			prog.BytesDone, prog.BytesTotal = img.Size, img.Size
			hb.set(prog)
			return img, nil
		case "queued", "killed", "deleted":
			activity.GetLogger(ctx).Warn(method+" failed in the target; streaming instead",
				"region", in.Region, "image", img.ID, "status", img.Status)
			_ = t.cloud.DeleteImage(ctx, in.Region, img.ID)
			return img, errNoCloudPath
		}
		hb.set(prog) // importing: still alive
	}
}

// tempURLTTL is how long the temporary URL given to web-download stays valid: long enough for
// a large image's import to fetch it, short enough not to outlive the export by much.
const tempURLTTL = 12 * time.Hour

// cloudPath picks the target's own import for this source, if it offers one that fits, and
// returns how to start it.
func (a *Activities) cloudPath(ctx context.Context, t *Activities, in UploadInput) (string, func(string) error,
	bool) {
	switch {
	case in.Source.Image != "" && in.TargetCloud == "" && in.Source.Region != in.Region:
		if ok, err := t.cloud.Offers(ctx, in.Region, cloud.MethodGlanceDownload); err == nil && ok {
			return cloud.MethodGlanceDownload, func(id string) error {
				return t.cloud.GlanceDownload(ctx, in.Region, id, in.Source.Region, in.Source.Image)
			}, true
		}
	case in.Source.Image == "" && in.Source.Container != "":
		if ok, err := t.cloud.Offers(ctx, in.Region, cloud.MethodWebDownload); err == nil && ok {
			return cloud.MethodWebDownload, func(id string) error {
				uri, err := a.cloud.TempURL(ctx, in.Source, tempURLTTL)
				if err != nil {
					return err
				}
				return t.cloud.WebDownload(ctx, in.Region, id, uri)
			}, true
		}
	}
	return "", nil, false
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
