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
	// Stage, when set, is where in the target region's object store the bytes may be staged when
	// the target cannot pull the source itself: resumable pieces, then web-download (see stage).
	Stage cloud.ObjectRef `json:"stage,omitzero"`
}

// How an uploaded image's bytes came (UploadResult.Method, UploadProgress.Method).
const (
	// MethodStreamed: through the worker in one upload, which Glance cannot resume.
	MethodStreamed = "streamed"
	// MethodStaged: through the worker into the target's object store in verified pieces, which
	// a retry resumes, then pulled by the target's Glance with web-download.
	MethodStaged = "staged"
)

// UploadResult is the image UploadImage made and how its bytes came.
type UploadResult struct {
	cloud.Image
	// Method is glance-download or web-download (the target pulled them, none through the
	// worker), MethodStaged or MethodStreamed.
	Method string `json:"method,omitempty"`
	// BytesSent is what passed through the worker into the target region in this attempt.
	BytesSent int64 `json:"bytes_sent,omitempty"`
}

// UploadProgress is UploadImage's heartbeat.
type UploadProgress struct {
	TargetRegion string `json:"target_region"`
	ImageID      string `json:"image_id"`
	BytesDone    int64  `json:"bytes_done"`
	BytesTotal   int64  `json:"bytes_total"`
	// Method is how the bytes move: "" (streamed through the worker), the target's own import
	// method (glance-download: none through the worker), or MethodStaged.
	Method string `json:"method,omitempty"`
	// Copy is the staging copy's progress (MethodStaged): a retry resumes from its record.
	Copy *cloud.CopyProgress `json:"copy,omitempty"`
}

// UploadImage creates the image (queued, stamped), streams the source into it and checks the
// checksum Glance computed against the source's. Glance cannot resume an upload, so a retry
// deletes what an earlier attempt left queued or saving and starts again; an image that arrived
// whole is found by the migration's stamp before this runs.
func (a *Activities) UploadImage(ctx context.Context, in UploadInput) (UploadResult, error) {
	var prev UploadProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &prev)
	}
	hb := startBeat(ctx, UploadProgress{TargetRegion: in.Region})
	defer hb.stop()
	t, err := a.as(in.TargetCloud)
	if err != nil {
		return UploadResult{}, err
	}
	if err := t.removeUnfinished(ctx, in); err != nil {
		return UploadResult{}, err
	}
	if img, method, err := a.pullInCloud(ctx, t, in, hb); !errors.Is(err, errNoCloudPath) {
		return t.arrived(ctx, UploadResult{Image: img, Method: method}, in, err)
	}
	if res, err := a.stage(ctx, t, in, hb, prev); !errors.Is(err, errNoCloudPath) {
		return t.arrived(ctx, res, in, err)
	}
	img, sent, err := a.stream(ctx, t, in, hb)
	return t.arrived(ctx, UploadResult{Image: img, Method: MethodStreamed, BytesSent: sent}, in, err)
}

// arrived checks an image that arrived without err against the source's hashes.
func (t *Activities) arrived(ctx context.Context, res UploadResult, in UploadInput, err error) (UploadResult, error) {
	if err != nil {
		return res, err
	}
	if err := t.checkArrived(ctx, res.Image, in, res.Method); err != nil {
		return res, err
	}
	activity.GetLogger(ctx).Info("image arrived", "region", in.Region, "image", res.ID, "bytes", res.Size,
		"method", res.Method, "through_worker", res.BytesSent)
	return res, nil
}

// stream creates the image and streams the source into it through the worker in one upload.
func (a *Activities) stream(ctx context.Context, t *Activities, in UploadInput, hb *beat) (cloud.Image, int64,
	error) {
	info, _, err := a.cloud.SourceInfo(ctx, in.Source)
	if err != nil {
		return cloud.Image{}, 0, temporalError(err, "")
	}
	spec := in.Image
	spec.Properties = map[string]string{in.StampKey: in.StampValue}
	img, err := t.cloud.CreateImage(ctx, in.Region, spec)
	if err != nil {
		return img, 0, temporalError(err, "")
	}
	rc, err := a.cloud.OpenSource(ctx, in.Source, 0, info.Size)
	if err != nil {
		return img, 0, temporalError(err, "")
	}
	defer rc.Close()
	prog := UploadProgress{TargetRegion: in.Region, ImageID: img.ID, BytesTotal: info.Size}
	body := &progressReader{r: rc, every: 1 << 20, report: func(n int64) {
		prog.BytesDone = n
		hb.set(prog)
	}}
	if err := t.cloud.UploadImageData(ctx, in.Region, img.ID, body, info.Size); err != nil {
		return img, 0, temporalError(err, "")
	}
	img, err = t.cloud.GetImage(ctx, in.Region, img.ID)
	return img, info.Size, temporalError(err, "")
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
	// Staging: images arrive by upload, and the region also has an object store and a Glance
	// that takes web-download, so an upload can be staged there in resumable pieces.
	Staging bool `json:"staging,omitempty"`
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
		switch {
		case tasks:
			out[r] = RegionInfo{ObjectStore: true, MaxImportSize: a.cfg.MaxImportSize}
		case a.cloud.HasObjectStore(r):
			web, err := a.cloud.Offers(ctx, r, cloud.MethodWebDownload)
			if err != nil {
				return nil, temporalError(err, "")
			}
			out[r] = RegionInfo{Staging: web}
		default:
			out[r] = RegionInfo{}
		}
	}
	return out, nil
}
