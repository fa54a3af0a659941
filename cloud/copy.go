package cloud

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// ObjectRef names an object in a region of the client's account.
type ObjectRef struct {
	Region    string `json:"region"`
	Container string `json:"container"`
	Object    string `json:"object"`
	// Image, as a copy's source, is a Glance image's data instead of an object: the way out of
	// a region without an object store (see SourceInfo).
	Image string `json:"image,omitempty"`
}

func (o ObjectRef) String() string {
	if o.Image != "" {
		return o.Region + ":image/" + o.Image
	}
	return o.Region + ":" + o.Container + "/" + o.Object
}

// CopyOptions tune CopyAcrossRegions; the zero value is usable.
type CopyOptions struct {
	// Parallelism fixes the concurrent segment transfers. Zero tunes them while the copy runs:
	// from 4, doubling while the measured rate grows, up to MaxParallelism.
	Parallelism int
	// MaxParallelism is the ceiling of tuned parallelism (default 16).
	MaxParallelism int
	// SegmentSize is the largest segment written at the target (default 1 GiB): a source
	// segment up to this size is copied whole, verified by its ETag without hashing here. Toward
	// the end of a copy the pieces shrink so every transfer stays busy (see queue).
	SegmentSize int64
	// Done holds segments finished by an earlier attempt (offset -> ETag), e.g. from heartbeats.
	Done map[int64]string
	// Progress is called after each segment, one call at a time.
	Progress func(CopyProgress)
	// SegmentRetries is how often one segment is restarted after a transient failure (default 4).
	SegmentRetries int
	// VerifyMD5, when set, re-reads the target and checks the whole object's MD5 against it.
	VerifyMD5 string
	// Lineage, when set, makes the copy incremental (see Lineage); SegmentSize is then its
	// RangeSize and pieces are never cut further, so ranges line up between generations.
	Lineage *Lineage
	// Target, when set, is the destination's account (another cloud or account): the source is
	// read as this client, the destination written as Target.
	Target *Client
}

// DefaultSegmentSize and DefaultMaxParallelism are CopyOptions' defaults.
const (
	DefaultSegmentSize    = 1 << 30
	DefaultMaxParallelism = 16
)

// CopyResult reports a finished copy.
type CopyResult struct {
	Bytes           int64 `json:"bytes"`
	Segments        int   `json:"segments"`
	SegmentsSkipped int   `json:"segments_skipped"` // already at the target from an earlier attempt
	BytesSent       int64 `json:"bytes_sent"`
	// BytesReused were copied inside the target region from the lineage's kept generation
	// instead of crossing regions; SegmentsReused counts their segments.
	BytesReused    int64  `json:"bytes_reused,omitempty"`
	SegmentsReused int    `json:"segments_reused,omitempty"`
	Manifest       string `json:"manifest"` // slo or dlo
	ETag           string `json:"etag"`
	// Parallelism is the transfers the copy ended with: fixed, or what tuning chose.
	Parallelism int `json:"parallelism"`
}

// SegmentPrefix is where CopyAcrossRegions writes dst's segments; cleanup deletes under it.
func SegmentPrefix(dstObject string) string { return dstObject + ".parts/" }

// CopyAcrossRegions streams src into dst (another region of the same account) as segments plus a
// manifest: parallel transfers, each GET range piped into a PUT with no buffering beyond the
// HTTP copy buffers, every segment's MD5 checked against the ETag the target returned. Segments an
// earlier attempt finished (present at the target with a known matching MD5) are not sent again.
func (c *Client) CopyAcrossRegions(ctx context.Context, src, dst ObjectRef, opts CopyOptions) (CopyResult, error) {
	if opts.MaxParallelism <= 0 {
		opts.MaxParallelism = DefaultMaxParallelism
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SegmentRetries <= 0 {
		opts.SegmentRetries = 4
	}
	if l := opts.Lineage; l != nil && l.RangeSize <= 0 {
		l2 := *l
		l2.RangeSize = DefaultRangeSize
		opts.Lineage = &l2
	}
	if opts.Lineage != nil {
		opts.SegmentSize = opts.Lineage.RangeSize
	}
	res, err := c.copyOnce(ctx, src, dst, opts, true)
	if err != nil && res.SegmentsReused > 0 && (KindOf(err) == Invalid || KindOf(err) == Unavailable) {
		// The incremental copy did not add up to the source: copy everything, as if the
		// lineage had nothing kept.
		return c.copyOnce(ctx, src, dst, opts, false)
	}
	return res, err
}

func (c *Client) copyOnce(ctx context.Context, src, dst ObjectRef, opts CopyOptions, useBase bool) (CopyResult, error) {
	dc := opts.Target
	if dc == nil {
		dc = c
	}
	info, segs, err := c.SourceInfo(ctx, src)
	if err != nil {
		return CopyResult{}, err
	}
	if info.Size == 0 {
		return CopyResult{}, &Error{Kind: Invalid, Op: "copy " + src.String(), Message: "the source object is empty"}
	}
	pieces, err := cutSource(segs, info.Size, opts.SegmentSize)
	if err != nil {
		return CopyResult{}, &Error{Kind: Invalid, Op: "copy " + src.String(), Message: err.Error()}
	}
	prefix, segContainer := SegmentPrefix(dst.Object)+sourceTag(info.ETag)+"/", dst.Container
	var base *lineageBase
	if l := opts.Lineage; l != nil {
		prefix, segContainer = l.Generation+"/"+sourceTag(info.ETag)+"/", l.Container
		if err := dc.EnsureContainer(ctx, dst.Region, segContainer); err != nil {
			return CopyResult{}, err
		}
		if useBase {
			if base, err = dc.loadBase(ctx, dst.Region, *l); err != nil {
				return CopyResult{}, err
			}
		} else if err := dc.deleteUnder(ctx, dst.Region, segContainer, prefix); err != nil {
			return CopyResult{}, err
		}
	}
	if err := dc.EnsureContainer(ctx, dst.Region, dst.Container); err != nil {
		return CopyResult{}, err
	}
	existing, err := dc.ListObjects(ctx, dst.Region, segContainer, prefix)
	if err != nil {
		return CopyResult{}, err
	}
	run := &copyRun{
		c:            c,
		dc:           dc,
		src:          src,
		dst:          dst,
		segContainer: segContainer,
		base:         base,
		prefix:       prefix,
		planSLO:      fitsSLO(sizes(pieces)),
		opts:         opts,
		start:        time.Now(),
		done:         map[int64]doneSeg{},
		prog: CopyProgress{
			TargetRegion:  dst.Region,
			SegmentsTotal: len(pieces),
			BytesTotal:    info.Size,
			Parallelism:   opts.Parallelism,
			Done:          map[int64]string{},
		},
	}
	if opts.Parallelism <= 0 {
		run.prog.Parallelism = min(startStreams, opts.MaxParallelism)
	}
	todo, skipped, err := run.resume(ctx, pieces, existing)
	if err != nil {
		return CopyResult{}, err
	}
	run.mu.Lock()
	run.report() // the totals, and what an earlier attempt left, before the first byte moves
	run.mu.Unlock()
	if err := run.transfer(ctx, todo); err != nil {
		return CopyResult{}, err
	}
	res, err := run.writeManifest(ctx, info.Size, existing)
	res.SegmentsSkipped = skipped
	res.BytesReused, res.SegmentsReused = run.prog.BytesReused, run.reusedCount
	if err == nil && opts.Lineage != nil {
		err = run.writeRanges(ctx)
	}
	return res, err
}

// deleteUnder removes every object under prefix.
func (c *Client) deleteUnder(ctx context.Context, region, container, prefix string) error {
	objs, err := c.ListObjects(ctx, region, container, prefix)
	if err != nil || len(objs) == 0 {
		return err
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	_, err = c.DeleteObjects(ctx, region, container, names)
	return err
}

type copyRun struct {
	c        *Client // reads the source
	dc       *Client // writes the destination (c unless it is another account's)
	src, dst ObjectRef
	// segContainer holds the segments: dst's container, or the lineage's.
	segContainer string
	base         *lineageBase // the kept generation to reuse ranges of; nil for a full copy
	reusedCount  int
	prefix       string
	// planSLO says the planned pieces fit a static manifest; a lineage's pieces are never cut,
	// so for it this is the manifest the copy ends with.
	planSLO bool
	opts    CopyOptions

	start      time.Time // of this attempt, for its rate
	mu         sync.Mutex
	done       map[int64]doneSeg // finished segments by offset
	prog       CopyProgress
	unreported int64 // bytes streamed since the last report
}

func sizes(ps []piece) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.size
	}
	return out
}

// offsets lists the finished segments' offsets in order.
func (r *copyRun) offsets() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	offs := make([]int64, 0, len(r.done))
	for off := range r.done {
		offs = append(offs, off)
	}
	slices.Sort(offs)
	return offs
}

// reuseParallelism bounds the hashing and server-side copies of an incremental copy. They cost
// a round trip each but no link bandwidth, so more of them run at once than transfers do.
const reuseParallelism = 16

// transfer sends the pieces through the transfers; the first hard failure stops the rest.
// With a kept generation, pieces it has a range for first go through the reuse workers, which
// pass on to the transfers only the ranges that changed.
func (r *copyRun) transfer(ctx context.Context, todo []piece) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	q := newQueue(ctx, r.opts.Lineage == nil)
	ceiling := r.opts.Parallelism
	if ceiling <= 0 {
		ceiling = r.opts.MaxParallelism
	}
	s := newStreams(ctx, r.prog.Parallelism)
	if r.opts.Parallelism <= 0 {
		s.startTuning(min(ceiling, tuneReach*r.prog.Parallelism)) // before the first piece goes
	}
	var wg sync.WaitGroup
	for range ceiling {
		wg.Go(func() {
			if err := r.sender(ctx, s, q); err != nil {
				fail(err)
			}
		})
	}
	if r.opts.Parallelism <= 0 {
		tuned, stopTune := context.WithCancel(ctx)
		defer stopTune()
		go r.tune(tuned, s, q, ceiling)
	}
	r.reuseAll(ctx, todo, q, fail)
	q.close()
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// sender is one transfer: it takes pieces from the queue while the streams bound allows.
func (r *copyRun) sender(ctx context.Context, s *streams, q *queue) error {
	for {
		bound, ok := s.acquire()
		if !ok {
			return nil
		}
		p, cut, ok := q.next(bound)
		if !ok {
			s.release()
			return nil
		}
		if cut {
			r.cut()
		}
		err := r.copyPiece(ctx, p)
		s.release()
		if err != nil {
			return err
		}
	}
}

// reuseAll queues the pieces: those the kept generation has a range for go through
// reuseParallelism workers first, which queue only the ranges that changed.
func (r *copyRun) reuseAll(ctx context.Context, todo []piece, q *queue, fail func(error)) {
	candidates := make(chan piece)
	var wg sync.WaitGroup
	for range reuseParallelism {
		wg.Go(func() {
			for p := range candidates {
				ok, err := r.reuse(ctx, p)
				if err != nil {
					fail(err)
					continue
				}
				if !ok {
					q.add(p)
				}
			}
		})
	}
	for _, p := range todo {
		if kept, ok := r.base.lookup(p); !ok || kept.Size != p.size {
			q.add(p)
			continue
		}
		select {
		case candidates <- p:
		case <-ctx.Done():
		}
	}
	close(candidates)
	wg.Wait()
}

// copyPiece pipes one source range into one target segment, restarting it on transient failures.
func (r *copyRun) copyPiece(ctx context.Context, p piece) error {
	name := r.segName(p.off)
	var lastErr error
	for attempt := 0; attempt <= r.opts.SegmentRetries; attempt++ {
		if attempt > 0 {
			if err := sleepCtx(ctx, retryDelay(lastErr, attempt)); err != nil {
				return err
			}
		}
		etag, sent, err := r.pipe(ctx, p, name)
		r.addSent(sent)
		if err == nil {
			r.finish(p, etag, name)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch KindOf(err) {
		case NotFound, Forbidden, Invalid, Conflict:
			return err
		}
		lastErr = err
	}
	return fmt.Errorf("segment at byte %d of %s after %d attempts: %w", p.off, r.src, r.opts.SegmentRetries+1, lastErr)
}

func (r *copyRun) pipe(ctx context.Context, p piece, name string) (string, int64, error) {
	rc, err := r.c.OpenSource(ctx, r.src, p.off, p.size)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	// A whole source segment's MD5 is known (its ETag) and goes with the PUT: the target checks
	// the bytes against it (422 on a mismatch) and answers it as its ETag, so hashing here again
	// would only burn CPU. A range that cuts a source segment has no known MD5: hash it here.
	var h hash.Hash
	var src io.Reader = rc
	if p.wantETag == "" {
		h = md5.New()
		src = io.TeeReader(rc, h)
	}
	body := &countingReader{r: src, add: r.streamed}
	etag, err := r.dc.PutStream(ctx, r.dst.Region, r.segContainer, name, body, p.size, p.wantETag)
	sent := body.stop()
	r.streamed(-sent) // finished or failed, the segment's bytes are no longer in flight
	var ce *Error
	if h == nil && errors.As(err, &ce) && ce.Status == http.StatusUnprocessableEntity {
		// The target's MD5 of what arrived is not the source's: the bytes changed on the way.
		// Send the segment again, as a client-side mismatch would.
		return "", sent, &Error{Kind: Unavailable, Op: "write " + name, Message: "the target refused the bytes: " +
			"their MD5 is not the source segment's " + p.wantETag, Status: ce.Status}
	}
	if err != nil {
		return "", sent, err
	}
	got := p.wantETag
	if h != nil {
		got = hex.EncodeToString(h.Sum(nil))
	}
	if !strings.EqualFold(got, etag) {
		_ = r.dc.DeleteObject(ctx, r.dst.Region, r.segContainer, name)
		return "", sent, &Error{
			Kind:    Unavailable,
			Op:      "write " + name,
			Message: fmt.Sprintf("target ETag %s does not match the MD5 %s of the bytes sent", etag, got),
		}
	}
	return etag, sent, nil
}

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
		segs[i] = Segment{Container: r.segContainer, Name: d.name, ETag: d.etag, Size: d.size}
		concat.WriteString(d.etag)
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

// retryDelay waits what a rate limit asked for, else backs off exponentially from 200ms.
func retryDelay(err error, attempt int) time.Duration {
	var ce *Error
	if errors.As(err, &ce) && ce.Kind == RateLimited && ce.RetryAfter > 0 {
		return ce.RetryAfter
	}
	d := 200 * time.Millisecond << (attempt - 1)
	return min(d, 10*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
