package cloud

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// writeManifest joins the segments: an SLO when Swift's limits allow, else a DLO over the prefix.
// existing is what the prefix held before this attempt: a DLO joins every object under it, so
// segments left by an earlier attempt that this copy does not use are deleted first.
//
// A lineage of 160 GB has 38,147 segments: past a static manifest's 1,000, so it ends in a DLO,
// which names a prefix, not segments. The segment list is built only for an SLO; the rest walks
// the finished segments in offset order.
func (r *copyRun) writeManifest(ctx context.Context, total int64, existing []ObjectInfo) (CopyResult, error) {
	res := CopyResult{Bytes: total, BytesSent: r.prog.BytesSent, Parallelism: r.prog.Parallelism}
	offs := r.offsets()
	res.Segments = len(offs)
	want, err := r.joinedETag(offs, total)
	if err != nil {
		return res, err
	}
	if sizes := r.sizesAt(offs); fitsSLO(sizes) {
		res.Manifest = "slo"
		etag, err := r.dc.PutSLO(ctx, r.dst.Region, r.dst.Container, r.dst.Object, r.segments(offs))
		if err != nil {
			return res, err
		}
		// The cloud checked every segment's size and ETag against the manifest; its ETag is the
		// MD5 of theirs, so a match needs no further request.
		if res.ETag = etag; strings.EqualFold(etag, want) {
			return res, r.verifyWhole(ctx, total)
		}
	} else {
		res.Manifest = "dlo"
		if err := r.deleteStrays(ctx, existing, offs); err != nil {
			return res, err
		}
		if err := r.dc.PutDLO(ctx, r.dst.Region, r.dst.Container, r.dst.Object, r.segContainer, r.prefix); err != nil {
			return res, err
		}
	}
	head, err := r.dc.HeadObject(ctx, r.dst.Region, r.dst.Container, r.dst.Object)
	if err != nil {
		return res, err
	}
	if head.Size != total || head.ETag != want {
		return res, &Error{Kind: Unavailable, Op: "copy " + r.src.String(), Message: fmt.Sprintf(
			"target %s is %d bytes with ETag %s, want %d bytes and %s", r.dst, head.Size, head.ETag, total, want)}
	}
	res.ETag = head.ETag
	return res, r.verifyWhole(ctx, total)
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

func (r *copyRun) sizesAt(offs []int64) []int64 {
	out := make([]int64, len(offs))
	for i, off := range offs {
		out[i] = r.doneAt(off).size
	}
	return out
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

// deleteStrays removes objects under the prefix that are not the segments at offs. What an
// earlier attempt left is usually little or nothing, so the set is of those, not of the segments.
func (r *copyRun) deleteStrays(ctx context.Context, existing []ObjectInfo, offs []int64) error {
	stray := map[string]bool{}
	for _, o := range existing {
		if strings.HasPrefix(o.Name, r.prefix) {
			stray[o.Name] = true
		}
	}
	if len(stray) == 0 {
		return nil
	}
	for _, off := range offs {
		delete(stray, r.nameOf(off, r.doneAt(off)))
	}
	names := slices.Sorted(maps.Keys(stray))
	if len(names) == 0 {
		return nil
	}
	_, err := r.dc.DeleteObjects(ctx, r.dst.Region, r.segContainer, names)
	return err
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
