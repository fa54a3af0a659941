package cloud

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// writeManifest joins the segments in a static manifest, nested when there are more than one
// manifest may name (a manifest of manifests, as Swift's slo allows ten deep).
//
// Never a dynamic manifest: Swift's dlo middleware serves a DLO's segments at one a second after
// the tenth (rate_limit_after_segment 10, rate_limit_segments_per_sec 1, its defaults), so the
// 38,147 segments of a 160 GB lineage would take more than ten hours to read once. A nested SLO
// is read at full speed: Swift throttles only its leaf segments under 1 MiB, and cutSource makes
// none but the last.
func (r *copyRun) writeManifest(ctx context.Context, total int64) (CopyResult, error) {
	res := CopyResult{Bytes: total, BytesSent: r.prog.BytesSent, Parallelism: r.prog.Parallelism}
	offs := r.offsets()
	res.Segments = len(offs)
	if _, err := r.joinedETag(offs, total); err != nil {
		return res, err
	}
	segs, err := r.nest(ctx, r.segments(offs))
	if err != nil {
		return res, err
	}
	res.Manifest = "slo"
	if len(segs) < len(offs) {
		res.Manifest = "nested-slo"
	}
	if res.ETag, err = r.putManifest(ctx, r.dst.Container, r.dst.Object, segs); err != nil {
		return res, err
	}
	return res, r.verifyWhole(ctx, total)
}

// nest writes sub-manifests of up to maxManifestSegments segments each beside the segments, a
// level at a time, until one manifest can name what is left; it returns that.
func (r *copyRun) nest(ctx context.Context, segs []Segment) ([]Segment, error) {
	limit := maxManifestSegments
	if r.dc.manifestLimit > 0 {
		limit = r.dc.manifestLimit
	}
	for level := 1; len(segs) > limit; level++ {
		up := make([]Segment, 0, (len(segs)+limit-1)/limit)
		for i := 0; i < len(segs); i += limit {
			part := segs[i:min(i+limit, len(segs))]
			name := fmt.Sprintf("%smanifest-%d-%06d", r.prefix, level, len(up))
			etag, err := r.putManifest(ctx, r.segContainer, name, part)
			if err != nil {
				return nil, err
			}
			sub := Segment{Container: r.segContainer, Name: name, ETag: etag}
			for _, s := range part {
				sub.Size += s.Size
			}
			up = append(up, sub)
		}
		segs = up
	}
	return segs, nil
}

// putManifest writes one static manifest and checks the ETag the cloud gives it: the MD5 of the
// ETags of the segments it names (the cloud checked each segment's size and ETag against them).
func (r *copyRun) putManifest(ctx context.Context, container, name string, segs []Segment) (string, error) {
	etag, err := r.dc.PutSLO(ctx, r.dst.Region, container, name, segs)
	if err != nil {
		return "", err
	}
	h := md5.New()
	for _, s := range segs {
		io.WriteString(h, strings.ToLower(s.ETag))
	}
	if want := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(etag, want) {
		return "", &Error{Kind: Unavailable, Op: "copy " + r.src.String(), Message: fmt.Sprintf(
			"manifest %s/%s in %s has ETag %s, want %s", container, name, r.dst.Region, etag, want)}
	}
	return etag, nil
}

// joinedETag is the ETag the joined object must have (the MD5 of its segments' ETags in
// order), once the segments are checked to cover every byte of total exactly once.
func (r *copyRun) joinedETag(offs []int64, total int64) (string, error) {
	h := md5.New()
	var pos int64
	for _, off := range offs {
		if off != pos {
			break
		}
		d := r.doneAt(off)
		io.WriteString(h, d.etag.String())
		pos += d.size
	}
	if pos != total {
		return "", &Error{Kind: Unavailable, Op: "copy " + r.src.String(),
			Message: fmt.Sprintf("the segments cover bytes 0 to %d of %d, not all in one run", pos, total)}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// segments lists the segments at offs for a static manifest.
func (r *copyRun) segments(offs []int64) []Segment {
	segs := make([]Segment, len(offs))
	for i, off := range offs {
		d := r.doneAt(off)
		segs[i] = Segment{Container: r.segContainer, Name: r.nameOf(off, d), ETag: d.etag.String(), Size: d.size}
	}
	return segs
}

// verifyWhole re-reads the target when the caller asked for the whole object's MD5 to be checked.
func (r *copyRun) verifyWhole(ctx context.Context, total int64) error {
	if r.opts.VerifyMD5 == "" {
		return nil
	}
	return r.verify(ctx, total)
}

// verify reads the whole target back and compares its MD5 with the expected one.
func (r *copyRun) verify(ctx context.Context, total int64) error {
	rc, err := r.dc.OpenRange(ctx, r.dst.Region, r.dst.Container, r.dst.Object, 0, total)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := md5.New()
	if _, err := io.Copy(h, rc); err != nil {
		return classify("verify "+r.dst.String(), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != r.opts.VerifyMD5 {
		return &Error{
			Kind:    Invalid,
			Op:      "verify " + r.dst.String(),
			Message: fmt.Sprintf("whole-object MD5 %s, want %s", got, r.opts.VerifyMD5),
			Err:     errNotTheSource,
		}
	}
	return nil
}
