package cloud

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// writeManifest joins the segments: an SLO when Swift's limits allow, else a DLO over the prefix.
// existing is what the prefix held before this attempt: a DLO joins every object under it, so
// segments left by an earlier attempt that this copy does not use are deleted first.
func (r *copyRun) writeManifest(ctx context.Context, total int64, existing []ObjectInfo) (CopyResult, error) {
	res := CopyResult{Bytes: total, BytesSent: r.prog.BytesSent, Parallelism: r.prog.Parallelism}
	offs := r.offsets()
	segs := make([]Segment, len(offs))
	var concat strings.Builder
	var pos int64
	for i, off := range offs {
		d := r.done[off]
		if off != pos {
			return res, &Error{Kind: Unavailable, Op: "copy " + r.src.String(),
				Message: fmt.Sprintf("the segments leave bytes %d to %d uncovered", pos, off)}
		}
		segs[i] = Segment{Container: r.segContainer, Name: r.nameOf(off, d), ETag: d.etag.String(), Size: d.size}
		concat.WriteString(segs[i].ETag)
		pos += d.size
	}
	res.Segments = len(segs)
	sum := md5.Sum([]byte(concat.String()))
	want := hex.EncodeToString(sum[:])
	if fitsSLO(sizesOf(segs)) {
		res.Manifest = "slo"
		etag, err := r.dc.PutSLO(ctx, r.dst.Region, r.dst.Container, r.dst.Object, segs)
		if err != nil {
			return res, err
		}
		// The cloud checked every segment's size and ETag against the manifest; its ETag is the
		// MD5 of theirs, so a match needs no further request.
		if res.ETag = etag; strings.EqualFold(etag, want) && pos == total {
			return res, r.verifyWhole(ctx, total)
		}
	} else {
		res.Manifest = "dlo"
		if err := r.deleteStrays(ctx, existing, segs); err != nil {
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

func sizesOf(segs []Segment) []int64 {
	out := make([]int64, len(segs))
	for i, s := range segs {
		out[i] = s.Size
	}
	return out
}

// deleteStrays removes objects under the prefix that are not among segs.
func (r *copyRun) deleteStrays(ctx context.Context, existing []ObjectInfo, segs []Segment) error {
	used := map[string]bool{}
	for _, s := range segs {
		used[s.Name] = true
	}
	var stray []string
	for _, o := range existing {
		if strings.HasPrefix(o.Name, r.prefix) && !used[o.Name] {
			stray = append(stray, o.Name)
		}
	}
	if len(stray) == 0 {
		return nil
	}
	_, err := r.dc.DeleteObjects(ctx, r.dst.Region, r.segContainer, stray)
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
		}
	}
	return nil
}
