package cloud

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// piece is one target segment: a byte range of the source. wantETag is known when the range is
// exactly one source segment (the source listing gives its MD5), so nothing here hashes it.
type piece struct {
	off      int64
	size     int64
	wantETag string
}

func (p piece) end() int64 { return p.off + p.size }

// cutSource cuts the source into pieces of at most size bytes without crossing source segment
// boundaries, so a piece that is a whole source segment keeps its known MD5. Cuts fall at fixed
// multiples of size from each segment's start, which lines a lineage's ranges up between
// generations. A piece under floor is joined to the ones after it (see joinSmall).
func cutSource(segs []Segment, total, size, floor int64) ([]piece, error) {
	var out []piece
	var off int64
	for _, s := range segs {
		for in := int64(0); in < s.Size; in += size {
			n := min(size, s.Size-in)
			p := piece{off: off + in, size: n}
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
	return joinSmall(out, floor), nil
}

// minSegment is the smallest segment a copy leaves at its target, but for the last. Swift serves
// a static manifest's segments under 1 MiB at one a second after the tenth (its slo middleware's
// rate_limit_under_size, rate_limit_after_segment and rate_limit_segments_per_sec defaults), and
// older Swift releases refused them (min_segment_size was 1 MiB before it became 1 byte).
const minSegment = 1 << 20

// readableSegment is the smallest segment a copy leaves where nothing asks for smaller ones:
// Swift spends a request on each segment of a static manifest, so on the rig's Swift 2.30 a
// manifest of 8 MiB segments read 1.24x as long as one of 1 GiB segments, of 16 MiB 1.11x, of
// 32 MiB 1.04x (internal/realopenstack, TestSwiftReadTimeBySegmentSize).
const readableSegment = 32 << 20

// joinFloor is the smallest piece cutSource leaves for a copy cut at size: readableSegment (size,
// if the caller asked for smaller pieces), and for a lineage minSegment, since its ranges must
// line up between generations.
func joinFloor(size int64, lineage bool) int64 {
	if lineage {
		return minSegment
	}
	return max(min(size, readableSegment), minSegment)
}

// joinSmall joins every piece under floor with the ones after it until it reaches floor, so
// every piece but the last is at least floor. A joined piece spans source segments and has no
// known MD5.
func joinSmall(ps []piece, floor int64) []piece {
	out := ps[:0:0]
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].size < floor {
			out[n-1].size += p.size
			out[n-1].wantETag = ""
			continue
		}
		out = append(out, p)
	}
	return out
}

// minPiece is the smallest piece the queue cuts: a request's round trip stays small against its
// transfer, and Swift's static manifests want segments of at least 1 MiB.
const minPiece = 8 << 20

// queue hands out the pieces still to send, in source order. With split set it cuts the front
// piece down to the bytes left divided by the transfers running (guided self-scheduling): pieces
// shrink toward the end, so the last round leaves no transfer idle while another still has a
// long piece to go. A cut piece has no known MD5 and is hashed on its way.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []piece
	left   int64 // bytes in items
	split  bool
	closed bool // nothing more will be added
}

func newQueue(ctx context.Context, split bool) *queue {
	q := &queue{split: split}
	q.cond = sync.NewCond(&q.mu)
	context.AfterFunc(ctx, q.close)
	return q
}

// add appends pieces to send.
func (q *queue) add(ps ...piece) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range ps {
		q.items = append(q.items, p)
		q.left += p.size
	}
	q.cond.Broadcast()
}

// close says nothing more will be added; next then drains what is left and reports false.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// next waits for a piece and hands it out, cut to the share of the bytes left that one of
// streams transfers should take; cut reports whether it made a new piece. It reports false
// once the queue is closed and empty.
func (q *queue) next(streams int) (p piece, cut bool, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return piece{}, false, false
	}
	p = q.items[0]
	if share := q.share(streams); q.split && p.size-share >= minPiece {
		q.items[0] = piece{off: p.off + share, size: p.size - share}
		q.left -= share
		return piece{off: p.off, size: share}, true, true
	}
	q.items = q.items[1:]
	q.left -= p.size
	return p, false, true
}

// share is one transfer's part of the bytes left, in whole MiB and at least minPiece.
func (q *queue) share(streams int) int64 {
	s := (q.left + int64(max(streams, 1)) - 1) / int64(max(streams, 1))
	s = (s + 1<<20 - 1) &^ (1<<20 - 1)
	return max(s, minPiece)
}

// empty reports whether every piece has been handed out.
func (q *queue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0
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

// segName names the segment starting at off: zero-padded, so a listing sorts them by offset
// (a dynamic manifest joins its prefix's objects in name order).
func (r *copyRun) segName(off int64) string { return segmentName(r.prefix, off) }

// segmentName is the name of a copy's own segment at off under prefix.
func segmentName(prefix string, off int64) string { return fmt.Sprintf("%s%016d", prefix, off) }

// offsetOf reads a segment name back; false for any other object under the prefix.
func (r *copyRun) offsetOf(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, r.prefix)
	if !ok || len(rest) != 16 {
		return 0, false
	}
	off, err := strconv.ParseInt(rest, 10, 64)
	return off, err == nil && off >= 0
}

// resume keeps the segments an earlier attempt finished and returns the pieces still to send.
// A segment counts when it lies inside one planned piece and its MD5 matches what the source
// says: the source segment's ETag for a whole one, the earlier attempt's record, or failing
// both a read of the source range (reading costs no upload).
func (r *copyRun) resume(ctx context.Context, plan []piece, existing []ObjectInfo) ([]piece, int, error) {
	found := map[int64]ObjectInfo{}
	var offs []int64
	for _, o := range existing {
		if off, ok := r.offsetOf(o.Name); ok && o.Size > 0 {
			found[off] = o
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	var todo []piece
	kept := 0
	for _, p := range plan {
		pos := p.off
		for _, off := range offs[lowerBound(offs, p.off):lowerBound(offs, p.end())] {
			o := found[off]
			if off < pos || off+o.Size > p.end() || leavesSmall(pos, off, o.Size, r.prog.BytesTotal) {
				continue
			}
			ok, err := r.verifyKept(ctx, p, off, o)
			if err != nil {
				return nil, 0, err
			}
			if !ok {
				continue
			}
			if off > pos {
				todo = append(todo, piece{off: pos, size: off - pos})
			}
			seg := piece{off: off, size: o.Size}
			if off == p.off && o.Size == p.size {
				seg.wantETag = p.wantETag
			}
			r.record(seg, o.ETag, o.Name)
			kept++
			pos = off + o.Size
		}
		switch {
		case pos == p.off:
			todo = append(todo, p)
		case pos < p.end():
			todo = append(todo, piece{off: pos, size: p.end() - pos})
		}
	}
	return todo, kept, nil
}

// leavesSmall reports whether keeping the segment at off (size bytes, the bytes before pos already
// covered) in an image of total bytes would leave a segment under minSegment that is not the image's last:
// the segment itself, or the gap before it. An earlier attempt of the same plan leaves none (the
// queue cuts no piece under minPiece); one with another segment size may.
func leavesSmall(pos, off, size, total int64) bool {
	small := func(n int64) bool { return n > 0 && n < minSegment }
	return small(off-pos) || small(size) && off+size != total
}

func lowerBound(s []int64, v int64) int {
	i, _ := slices.BinarySearch(s, v)
	return i
}

// verifyKept checks a segment found at the target against the source range it stands for.
func (r *copyRun) verifyKept(ctx context.Context, p piece, off int64, o ObjectInfo) (bool, error) {
	want := ""
	if off == p.off && o.Size == p.size {
		want = p.wantETag
	}
	if want == "" {
		want = r.opts.Done[off]
	}
	if want == "" {
		sum, err := r.hashSource(ctx, piece{off: off, size: o.Size})
		if err != nil {
			return false, err
		}
		want = sum
	}
	return strings.EqualFold(o.ETag, want), nil
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

// maxManifestSegments is how many segments one static manifest may name (Swift's
// max_manifest_segments default, and Rackspace's limit): a copy with more nests manifests.
const maxManifestSegments = 1000
