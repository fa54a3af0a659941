package cloud

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// piece is one target segment: a byte range of the source. wantETag is known when the range is
// exactly one source segment (the source listing gives its MD5).
type piece struct {
	index    int
	off      int64
	size     int64
	wantETag string
}

// plan cuts the source into pieces of at most size bytes without crossing source segment
// boundaries, so a piece that is a whole source segment has a known MD5.
func plan(segs []Segment, total, size int64) ([]piece, error) {
	var out []piece
	var off int64
	for _, s := range segs {
		for in := int64(0); in < s.Size; in += size {
			n := min(size, s.Size-in)
			p := piece{index: len(out), off: off + in, size: n}
			if n == s.Size {
				p.wantETag = s.ETag
			}
			out = append(out, p)
		}
		off += s.Size
	}
	if off != total {
		return nil, fmt.Errorf(
			"the source's segments add up to %d bytes but it reports %d; it may be changing",
			off,
			total,
		)
	}
	return out, nil
}

// sourceTag names the source version in segment names, so a changed source never reuses segments.
func sourceTag(etag string) string {
	t := strings.Trim(etag, `"`)
	if len(t) > 16 {
		t = t[:16]
	}
	if t == "" {
		t = "unknown"
	}
	return t
}

// skipFinished keeps the pieces that must be sent: a target segment of the right size is kept
// when its MD5 matches what the source segment or an earlier attempt says, or, failing both, what
// a read of the source range gives (reading costs no upload).
func (r *copyRun) skipFinished(ctx context.Context, pieces []piece, existing []ObjectInfo) ([]piece, int, error) {
	have := map[string]ObjectInfo{}
	for _, o := range existing {
		have[o.Name] = o
	}
	var todo []piece
	skipped := 0
	for _, p := range pieces {
		o, ok := have[r.segName(p.index)]
		if !ok || o.Size != p.size {
			todo = append(todo, p)
			continue
		}
		want := p.wantETag
		if want == "" {
			want = r.opts.Done[p.index]
		}
		if want == "" {
			sum, err := r.hashSource(ctx, p)
			if err != nil {
				return nil, 0, err
			}
			want = sum
		}
		if o.ETag != want {
			todo = append(todo, p)
			continue
		}
		r.etags[p.index] = o.ETag
		r.prog.SegmentsDone++
		r.prog.BytesDone += p.size
		r.prog.Done[p.index] = o.ETag
		skipped++
	}
	return todo, skipped, nil
}

func (r *copyRun) hashSource(ctx context.Context, p piece) (string, error) {
	rc, err := r.c.OpenSource(ctx, r.src, p.off, p.size)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := md5.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", classify("read "+r.src.String(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
