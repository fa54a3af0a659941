package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/imageflow/imageflow/cloud"
)

// UploadInput brings an image into a region without an object store (a generic Glance): the
// source object's bytes stream through the worker into a new image, with no local disk.
type UploadInput struct {
	// TargetCloud is a peer the worker holds when the target is another cloud or account.
	TargetCloud string          `json:"target_cloud,omitempty"`
	Source      cloud.ObjectRef `json:"source"`
	Region      string          `json:"region"`
	// Image is the new image as the source describes it: name, formats, minimums, visibility.
	Image cloud.NewImage `json:"image"`
	// ExpectedMD5 must equal the new image's checksum, as Glance computes it.
	ExpectedMD5 string `json:"expected_md5"`
	// ExpectedHashAlgo and ExpectedHashValue, when the source has them (a Glance source's
	// os_hash_algo and os_hash_value), must equal the new image's: a second, stronger check.
	ExpectedHashAlgo  string `json:"expected_hash_algo,omitempty"`
	ExpectedHashValue string `json:"expected_hash_value,omitempty"`
	// Stamp (a property and its value) marks the image as this migration's, from its creation, so
	// a retry finds and removes an upload an earlier attempt left unfinished.
	StampKey   string `json:"stamp_key"`
	StampValue string `json:"stamp_value"`
}

// UploadProgress is UploadImage's heartbeat.
type UploadProgress struct {
	TargetRegion string `json:"target_region"`
	ImageID      string `json:"image_id"`
	BytesDone    int64  `json:"bytes_done"`
	BytesTotal   int64  `json:"bytes_total"`
	// Method is how the bytes move: "" (streamed through the worker) or the target's own
	// import method (glance-download: none through the worker).
	Method string `json:"method,omitempty"`
}

// UploadImage creates the image (queued, stamped), streams the source into it and checks the
// checksum Glance computed against the source's. Glance cannot resume an upload, so a retry
// deletes what an earlier attempt left queued or saving and starts again; an image that arrived
// whole is found by the migration's stamp before this runs.
func (a *Activities) UploadImage(ctx context.Context, in UploadInput) (cloud.Image, error) {
	hb := startBeat(ctx, UploadProgress{TargetRegion: in.Region})
	defer hb.stop()
	t, err := a.as(in.TargetCloud)
	if err != nil {
		return cloud.Image{}, err
	}
	if err := t.removeUnfinished(ctx, in); err != nil {
		return cloud.Image{}, err
	}
	if img, err := a.pullInCloud(ctx, t, in, hb); !errors.Is(err, errNoCloudPath) {
		if err == nil {
			err = t.checkArrived(ctx, img, in, "the imported")
			activity.GetLogger(ctx).Info("the target pulled the image itself", "region", in.Region,
				"image", img.ID, "bytes", img.Size)
		}
		return img, err
	}
	info, _, err := a.cloud.SourceInfo(ctx, in.Source)
	if err != nil {
		return cloud.Image{}, temporalError(err, "")
	}
	spec := in.Image
	spec.Properties = map[string]string{in.StampKey: in.StampValue}
	img, err := t.cloud.CreateImage(ctx, in.Region, spec)
	if err != nil {
		return img, temporalError(err, "")
	}
	rc, err := a.cloud.OpenSource(ctx, in.Source, 0, info.Size)
	if err != nil {
		return img, temporalError(err, "")
	}
	defer rc.Close()
	prog := UploadProgress{TargetRegion: in.Region, ImageID: img.ID, BytesTotal: info.Size}
	body := &progressReader{r: rc, every: 1 << 20, report: func(n int64) {
		prog.BytesDone = n
		hb.set(prog)
	}}
	if err := t.cloud.UploadImageData(ctx, in.Region, img.ID, body, info.Size); err != nil {
		return img, temporalError(err, "")
	}
	if img, err = t.cloud.GetImage(ctx, in.Region, img.ID); err != nil {
		return img, temporalError(err, "")
	}
	if err := t.checkArrived(ctx, img, in, "uploaded"); err != nil {
		return img, err
	}
	activity.GetLogger(ctx).Info("upload finished", "region", in.Region, "image", img.ID, "bytes", img.Size)
	return img, nil
}

// hashMismatch says how the new image's hashes differ from the source's, or "" when they agree.
// os_hash_* are compared only when both sides use the same algorithm.
func hashMismatch(img cloud.Image, in UploadInput) string {
	if img.Checksum != in.ExpectedMD5 {
		return fmt.Sprintf("has checksum %s, the source has %s", img.Checksum, in.ExpectedMD5)
	}
	algo, value := img.Properties["os_hash_algo"], img.Properties["os_hash_value"]
	if in.ExpectedHashAlgo != "" && algo == in.ExpectedHashAlgo && value != in.ExpectedHashValue {
		return fmt.Sprintf("has %s %s, the source has %s", algo, value, in.ExpectedHashValue)
	}
	return ""
}

// removeUnfinished deletes this migration's images in the region that never became active.
func (a *Activities) removeUnfinished(ctx context.Context, in UploadInput) error {
	imgs, err := a.cloud.ListImages(ctx, in.Region, cloud.ImageFilter{Owner: a.cloud.Tenant(),
		Properties: map[string]string{in.StampKey: in.StampValue}})
	if err != nil {
		return temporalError(err, "")
	}
	for _, img := range imgs {
		if img.Status != "active" {
			if err := a.cloud.DeleteImage(ctx, in.Region, img.ID); err != nil && !cloud.IsNotFound(err) {
				return temporalError(err, "")
			}
		}
	}
	return nil
}

// progressReader reports the bytes read so far, every `every` bytes.
type progressReader struct {
	r       interface{ Read([]byte) (int, error) }
	n, last int64
	every   int64
	report  func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n-p.last >= p.every {
		p.last = p.n
		p.report(p.n)
	}
	return n, err
}

// RegionInfo is what a workflow needs to know of a target region.
type RegionInfo struct {
	// ObjectStore: Rackspace's way (an object store and import and export tasks: copy into
	// Cloud Files, import task); otherwise images arrive by upload and leave by download. An
	// object store without tasks (Swift beside a plain Glance) is not Rackspace's way.
	ObjectStore bool `json:"object_store"`
	// MaxImportSize is the largest image the region's import tasks take (0: no limit known).
	MaxImportSize int64 `json:"max_import_size,omitempty"`
}

// DescribeInput names regions of the worker's own cloud, or of a peer.
type DescribeInput struct {
	Cloud   string   `json:"cloud,omitempty"`
	Regions []string `json:"regions"`
}

// DescribeRegions tells, per region, how images arrive there (and leave).
func (a *Activities) DescribeRegions(ctx context.Context, in DescribeInput) (map[string]RegionInfo, error) {
	a, err := a.as(in.Cloud)
	if err != nil {
		return nil, err
	}
	if err := a.cloud.CheckRegions(in.Regions...); err != nil {
		return nil, nonRetryable(ErrInvalid, err.Error())
	}
	out := map[string]RegionInfo{}
	for _, r := range in.Regions {
		tasks := false
		if a.cloud.HasObjectStore(r) {
			if tasks, err = a.cloud.HasTasks(ctx, r); err != nil {
				return nil, temporalError(err, "")
			}
		}
		out[r] = RegionInfo{ObjectStore: tasks}
		if tasks {
			out[r] = RegionInfo{ObjectStore: true, MaxImportSize: a.cfg.MaxImportSize}
		}
	}
	return out, nil
}
