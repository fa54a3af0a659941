package cloud

import (
	"context"
	"errors"
	"slices"
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
	// OnWait, when set, makes the copy wait out a transient fault that outlasts SegmentRetries (a
	// source that keeps breaking off, a target answering 503) instead of failing: the piece is
	// tried again, at most a health probe's interval apart, for as long as ctx lasts, and OnWait
	// says what fails, the region and service first. OnBack is called when a waiting piece moves.
	// Both may be called from several transfers at once.
	OnWait func(reason string)
	OnBack func()
	// VerifyMD5, when set, re-reads the target and checks the whole object's MD5 against it.
	// When they differ the copy rechecks itself once (see Recheck) before it reports them.
	VerifyMD5 string
	// ProvenAtEnd says the caller proves the whole copy end to end once it is done (an import's
	// checksum against the source image's, or VerifyMD5), so a piece cut from a source segment
	// goes without the client's MD5: hashing costs more CPU than the rest of the copy together
	// (bench row 10). The target still checks every whole source segment against its ETag.
	// Bytes changed on the way in a cut piece are then found by the proof, and Recheck mends them.
	ProvenAtEnd bool
	// Recheck distrusts what earlier attempts recorded (Done is ignored and ProvenAtEnd off):
	// every segment at the target that is not a whole source segment is read again from the
	// source and hashed, and sent again where the target's MD5 differs. It follows a failed
	// end-to-end proof; it also catches bytes changed between the source and the client, which
	// a client-side MD5 taken on the way cannot.
	Recheck bool
	// Lineage, when set, makes the copy incremental (see Lineage); SegmentSize is then its
	// RangeSize and pieces are never cut further, so ranges line up between generations.
	Lineage *Lineage
	// Target, when set, is the destination's account (another cloud or account): the source is
	// read as this client, the destination written as Target.
	Target *Client

	// tuneWindow replaces tuneWindow (and scales tuneSettle with it) for a test whose link is
	// slower than a real one: a window must hold many times the bytes a new connection's socket
	// buffers take in at once, as it does at real links' rates, or that burst decides the step.
	tuneWindow time.Duration
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
	Manifest       string `json:"manifest"` // slo, or nested-slo past 1,000 segments
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
	if opts.Recheck {
		opts = opts.rechecking()
	}
	c.copying.Add(1)
	defer c.copying.Add(-1)
	defer countCopy(src, dst)()
	res, err := c.copyOnce(ctx, src, dst, opts, true)
	if errors.Is(err, errNotTheSource) && !opts.Recheck {
		// The whole object's MD5 is not the source's: find the segments that differ and send
		// them again (the one case a per-piece check on the way would have caught sooner).
		opts = opts.rechecking()
		first := res.BytesSent
		res, err = c.copyOnce(ctx, src, dst, opts, true)
		res.BytesSent += first
	}
	if err != nil && res.SegmentsReused > 0 && (KindOf(err) == Invalid || KindOf(err) == Unavailable) {
		// The incremental copy did not add up to the source: copy everything, as if the
		// lineage had nothing kept.
		return c.copyOnce(ctx, src, dst, opts, false)
	}
	return res, err
}

// rechecking is o for a Recheck pass: nothing an earlier attempt recorded is trusted, and every
// piece without a known MD5 is hashed on its way.
func (o CopyOptions) rechecking() CopyOptions {
	o.Recheck, o.Done, o.ProvenAtEnd = true, nil, false
	return o
}

// errNotTheSource marks a copy whose whole-object MD5 is not the one VerifyMD5 asked for.
var errNotTheSource = errors.New("the copy is not the source")

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
	pieces, err := cutSource(segs, info.Size, opts.SegmentSize, joinFloor(opts.SegmentSize, opts.Lineage != nil))
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
		opts:         opts,
		rate:         rateWindow{samples: []rateSample{{at: time.Now()}}},
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
		run.prog.Parallelism = c.startingStreams(opts.MaxParallelism)
		if n, ok := c.settledOn(c.linkKey(dc, src, dst)); ok {
			// Where the last tuned copy over this link settled (see tune).
			run.prog.Parallelism = min(n, opts.MaxParallelism)
		}
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
	res, err := run.writeManifest(ctx, info.Size)
	if err == nil && opts.Parallelism <= 0 {
		c.settle(c.linkKey(dc, src, dst), res.Parallelism)
	}
	res.SegmentsSkipped = skipped
	res.BytesReused, res.SegmentsReused = run.prog.BytesReused, run.reusedCount
	if err == nil && opts.Lineage != nil {
		err = run.writeRanges(ctx)
	}
	return res, err
}

// linkKey names the link a copy crosses: source and target region, and the target's account
// when it is another client's.
func (c *Client) linkKey(dc *Client, src, dst ObjectRef) string {
	if dc == c {
		return src.Region + ">" + dst.Region
	}
	return src.Region + ">" + dc.tenant + "/" + dst.Region
}

// settledOn is the parallelism the last tuned copy over link ended with.
func (c *Client) settledOn(link string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.links[link]
	return n, ok && n > 0
}

func (c *Client) settle(link string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.links == nil {
		c.links = map[string]int{}
	}
	c.links[link] = n
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
	opts         CopyOptions

	mu         sync.Mutex
	done       map[int64]doneSeg // finished segments by offset
	prog       CopyProgress
	unreported int64 // bytes streamed since the last report
	rate       rateWindow
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
