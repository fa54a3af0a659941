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
	Parallelism int   // concurrent segment transfers (default 4)
	SegmentSize int64 // largest segment written at the target (default 100 MiB)
	// Done holds segments finished by an earlier attempt (index -> ETag), e.g. from heartbeats.
	Done map[int]string
	// Progress is called after each segment, one call at a time.
	Progress func(CopyProgress)
	// SegmentRetries is how often one segment is restarted after a transient failure (default 4).
	SegmentRetries int
	// VerifyMD5, when set, re-reads the target and checks the whole object's MD5 against it.
	VerifyMD5 string
	// Lineage, when set, makes the copy incremental (see Lineage); SegmentSize is then its
	// RangeSize.
	Lineage *Lineage
	// Target, when set, is the destination's account (another cloud or account): the source is
	// read as this client, the destination written as Target.
	Target *Client
}

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
}

// SegmentPrefix is where CopyAcrossRegions writes dst's segments; cleanup deletes under it.
func SegmentPrefix(dstObject string) string { return dstObject + ".parts/" }

// CopyAcrossRegions streams src into dst (another region of the same account) as segments plus a
// manifest: Parallelism transfers, each GET range piped into a PUT with no buffering beyond the
// HTTP copy buffers, every segment's MD5 checked against the ETag the target returned. Segments an
// earlier attempt finished (present at the target with the right size and a known matching MD5)
// are not sent again.
func (c *Client) CopyAcrossRegions(ctx context.Context, src, dst ObjectRef, opts CopyOptions) (CopyResult, error) {
	if opts.Parallelism <= 0 {
		opts.Parallelism = 4
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 100 << 20
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
	pieces, err := plan(segs, info.Size, opts.SegmentSize)
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
		pieces:       pieces,
		opts:         opts,
		start:        time.Now(),
		etags:        make([]string, len(pieces)),
		names:        make([]string, len(pieces)),
		prog: CopyProgress{
			TargetRegion:  dst.Region,
			SegmentsTotal: len(pieces),
			BytesTotal:    info.Size,
			Done:          map[int]string{},
		},
	}
	todo, skipped, err := run.skipFinished(ctx, pieces, existing)
	if err != nil {
		return CopyResult{}, err
	}
	run.mu.Lock()
	run.report() // the totals, and what an earlier attempt left, before the first byte moves
	run.mu.Unlock()
	if err := run.transfer(ctx, todo); err != nil {
		return CopyResult{}, err
	}
	res, err := run.writeManifest(ctx, info.Size)
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
	names        []string // per piece: a kept segment reused in place, or "" for its own
	prefix       string
	pieces       []piece
	opts         CopyOptions
	etags        []string

	start      time.Time // of this attempt, for its rate
	mu         sync.Mutex
	prog       CopyProgress
	unreported int64 // bytes streamed since the last report
}

func (r *copyRun) segName(i int) string { return fmt.Sprintf("%s%06d", r.prefix, i) }

// name is the object holding piece i: its own segment, or a kept one it reuses in place.
func (r *copyRun) name(i int) string {
	if n := r.names[i]; n != "" {
		return n
	}
	return r.segName(i)
}

// sloOK reports whether the pieces fit a static manifest: at most 1000 segments, each but the
// last at least 1 MiB (Swift's limits). Otherwise the copy ends in a dynamic one over the prefix.
func (r *copyRun) sloOK() bool {
	if len(r.pieces) > 1000 {
		return false
	}
	for i, p := range r.pieces {
		if i < len(r.pieces)-1 && p.size < 1<<20 {
			return false
		}
	}
	return true
}

// reuseParallelism bounds the hashing and server-side copies of an incremental copy. They cost
// a round trip each but no link bandwidth, so more of them run at once than transfers do.
const reuseParallelism = 16

// transfer runs the pieces through Parallelism workers; the first hard failure stops the rest.
// With a kept generation, pieces it has a range for first go through the reuse workers, which
// pass on to the transfers only the ranges that changed.
func (r *copyRun) transfer(ctx context.Context, todo []piece) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	work, candidates := make(chan piece), make(chan piece)
	senders := r.pool(r.opts.Parallelism, work, func(p piece) error { return r.copyPiece(ctx, p) }, fail)
	reusers := r.pool(reuseParallelism, candidates, func(p piece) error {
		ok, err := r.reuse(ctx, p)
		if err == nil && !ok {
			return send(ctx, work, p)
		}
		return err
	}, fail)
	for _, p := range todo {
		queue := work
		if kept, ok := r.base.lookup(p); ok && kept.Size == p.size {
			queue = candidates
		}
		if send(ctx, queue, p) != nil {
			break
		}
	}
	close(candidates)
	reusers.Wait()
	close(work)
	senders.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// pool runs n workers over jobs until it closes; a failing job reports to fail and ends its worker.
func (r *copyRun) pool(n int, jobs <-chan piece, do func(piece) error, fail func(error)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				if err := do(p); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	return &wg
}

func send(ctx context.Context, ch chan<- piece, p piece) error {
	select {
	case ch <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// copyPiece pipes one source range into one target segment, restarting it on transient failures.
func (r *copyRun) copyPiece(ctx context.Context, p piece) error {
	name := r.segName(p.index)
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
			r.finish(p, etag)
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
	return fmt.Errorf("segment %d of %s after %d attempts: %w", p.index, r.src, r.opts.SegmentRetries+1, lastErr)
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
func (r *copyRun) writeManifest(ctx context.Context, total int64) (CopyResult, error) {
	res := CopyResult{Bytes: total, Segments: len(r.etags), BytesSent: r.prog.BytesSent}
	segs := make([]Segment, len(r.pieces))
	sloOK := r.sloOK()
	for i, p := range r.pieces {
		segs[i] = Segment{Container: r.segContainer, Name: r.name(i), ETag: r.etags[i], Size: p.size}
	}
	var concat strings.Builder
	for _, e := range r.etags {
		concat.WriteString(e)
	}
	sum := md5.Sum([]byte(concat.String()))
	want := hex.EncodeToString(sum[:])
	if sloOK {
		res.Manifest = "slo"
		etag, err := r.dc.PutSLO(ctx, r.dst.Region, r.dst.Container, r.dst.Object, segs)
		if err != nil {
			return res, err
		}
		res.ETag = etag
	} else {
		res.Manifest = "dlo"
		if err := r.dc.PutDLO(ctx, r.dst.Region, r.dst.Container, r.dst.Object, r.segContainer, r.prefix); err != nil {
			return res, err
		}
	}
	head, err := r.dc.HeadObject(ctx, r.dst.Region, r.dst.Container, r.dst.Object)
	if err != nil {
		return res, err
	}
	if head.Size != total || head.ETag != want {
		return res, &Error{Kind: Unavailable, Op: "copy " + r.src.String(),
			Message: fmt.Sprintf(
				"target %s is %d bytes with ETag %s, want %d bytes and %s",
				r.dst,
				head.Size,
				head.ETag,
				total,
				want,
			)}
	}
	res.ETag = head.ETag
	if r.opts.VerifyMD5 != "" {
		if err := r.verify(ctx, total); err != nil {
			return res, err
		}
	}
	return res, nil
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
