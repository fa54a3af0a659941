package activities

import (
	"context"

	"github.com/imageflow/imageflow/cloud"
)

// stage brings the source into the target region when the target cannot pull it itself but has
// an object store and takes web-download: the worker copies it into in.Stage in verified pieces
// (the cross-region copy Rackspace migrations use: each piece hashed and checked by the object
// store, its MD5 in the heartbeat), then the target's Glance imports it from a temporary URL.
// Glance cannot resume an upload, so a worker lost at 150 of 160 GiB of a streamed upload sends
// all 160 again; staged, a retry keeps the pieces already stored and sends the rest. The staging
// object is deleted once the image is active (the migration's cleanup covers a failed one).
// It answers errNoCloudPath when the target offers no such path.
func (a *Activities) stage(ctx context.Context, t *Activities, in UploadInput, hb *beat,
	prev UploadProgress) (UploadResult, error) {
	if in.Stage.Container == "" || !t.cloud.HasObjectStore(in.Region) {
		return UploadResult{}, errNoCloudPath
	}
	if ok, err := t.cloud.Offers(ctx, in.Region, cloud.MethodWebDownload); err != nil || !ok {
		return UploadResult{}, errNoCloudPath
	}
	// Staging costs a pass more than streaming (into the object store, then Glance reads it: on
	// the rig 256 MiB took 10.4 s staged and 3.6 s streamed), which only a large image's resend
	// outweighs.
	if info, _, err := a.cloud.SourceInfo(ctx, in.Source); err != nil || info.Size < a.cfg.StageMinSize {
		return UploadResult{}, errNoCloudPath
	}
	prog := UploadProgress{TargetRegion: in.Region, Method: MethodStaged}
	opts := cloud.CopyOptions{Parallelism: a.cfg.CopyParallelism, MaxParallelism: a.cfg.CopyMaxParallelism,
		SegmentSize: a.cfg.CopySegmentSize, Target: t.cloud, Progress: func(p cloud.CopyProgress) {
			prog.BytesDone, prog.BytesTotal, prog.Copy = p.Copied(), p.BytesTotal, &p
			hb.set(prog)
		}}
	if prev.Method == MethodStaged && prev.Copy != nil {
		opts.Done = prev.Copy.Done
	}
	waitOutFaults(ctx, &opts)
	copied, err := a.cloud.CopyAcrossRegions(ctx, in.Source, in.Stage, opts)
	if err != nil {
		return UploadResult{}, temporalError(err, "")
	}
	img, err := t.importWith(ctx, in, hb, MethodStaged, func(id string) error {
		uri, err := t.cloud.TempURL(ctx, in.Stage, tempURLTTL)
		if err != nil {
			return err
		}
		return t.cloud.WebDownload(ctx, in.Region, id, uri)
	})
	if err != nil {
		return UploadResult{}, err
	}
	if _, err := t.DeleteObjects(ctx, DeleteObjectsInput{Region: in.Region, Container: in.Stage.Container,
		Prefix: in.Stage.Object}); err != nil {
		return UploadResult{}, err
	}
	return UploadResult{Image: img, Method: MethodStaged, BytesSent: copied.BytesSent}, nil
}
