package cloud

import (
	"io"
	"sync/atomic"
	"time"
)

// CopyProgress is a copy's state: safe to record as heartbeat details and hand back as Done.
type CopyProgress struct {
	// TargetRegion labels the copy where several run at once (the UI, the starter's bars).
	TargetRegion  string `json:"target_region"`
	SegmentsTotal int    `json:"segments_total"`
	SegmentsDone  int    `json:"segments_done"`
	BytesTotal    int64  `json:"bytes_total"`
	// BytesDone counts bytes in finished segments; a retry keeps those.
	BytesDone int64 `json:"bytes_done"`
	// BytesInFlight counts bytes of unfinished segments sent so far, so progress moves from the
	// first megabyte rather than a segment at a time; a retry sends those again.
	BytesInFlight int64 `json:"bytes_in_flight"`
	BytesSent     int64 `json:"bytes_sent"` // uploaded by this attempt
	// BytesReused were made inside the target region from a lineage's kept generation.
	BytesReused int64 `json:"bytes_reused,omitempty"`
	// BytesPerSecond is this attempt's upload rate so far, counting the bytes of segments still
	// on their way, so a slow link shows a rate from its first MiB rather than its first segment.
	BytesPerSecond float64 `json:"bytes_per_second,omitempty"`
	// ETA is when the copy ends at that rate (RFC 3339, UTC): what the UI's pending activity
	// shows, where the run's own ETA, estimated when the copies started, may have passed.
	ETA string `json:"eta,omitempty"`
	// Parallelism is the transfers the copy runs at once: fixed, or what tuning chose so far.
	Parallelism int `json:"parallelism,omitempty"`
	// Done holds the MD5s of finished segments cut out of source segments, by offset: a retry
	// keeps those without reading them again. Its size does not grow with the object's.
	Done map[int64]string `json:"done"`
}

// Remaining is the time left at the current rate; zero until there is a rate.
func (p CopyProgress) Remaining() time.Duration {
	if p.BytesPerSecond <= 0 || p.BytesTotal <= p.Copied() {
		return 0
	}
	return time.Duration(float64(p.BytesTotal-p.Copied()) / p.BytesPerSecond * float64(time.Second))
}

// Copied is the bytes at the target so far, whole segments and partial ones.
func (p CopyProgress) Copied() int64 { return p.BytesDone + p.BytesInFlight }

// progressEvery is how many streamed bytes pass between progress reports within segments.
const progressEvery = 1 << 20

func (r *copyRun) addSent(n int64) {
	countBytes(r.src, r.dst, n)
	r.mu.Lock()
	r.prog.BytesSent += n
	r.mu.Unlock()
}

// doneSeg is a finished segment of the copy: its own, or a kept one it names in place. A lineage
// copy holds one per range, so it is kept small: the ETag as 16 bytes, and no name for the copy's
// own segments, whose names follow from their offsets (segName).
type doneSeg struct {
	size int64
	etag etag
	name string // "" for segName(off)
}

// nameOf is the name of the segment at off.
func (r *copyRun) nameOf(off int64, d doneSeg) string {
	if d.name != "" {
		return d.name
	}
	return r.segName(off)
}

// doneAt is the finished segment at off.
func (r *copyRun) doneAt(off int64) doneSeg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done[off]
}

// record counts a finished segment at p's offset, held in the object name.
//
// Its MD5 goes into the heartbeat's Done only when a retry could not otherwise check the
// segment without reading its source range again: a piece cut out of a source segment, of which
// a copy has few. A whole source segment's MD5 is in the source listing, and a lineage copy
// hashes every source range on each attempt anyway; recording those made the heartbeat grow
// with the ranges (a 160 GiB lineage at 4 MiB ranges: 40,960 MD5s, about 2 MB, Temporal's
// limit for a payload).
func (r *copyRun) record(p piece, etag, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := doneSeg{size: p.size, etag: parseETag(etag), name: name}
	if off, own := r.offsetOf(name); own && off == p.off {
		d.name = ""
	}
	r.done[p.off] = d
	r.prog.SegmentsDone++
	r.prog.BytesDone += p.size
	if p.wantETag == "" && r.opts.Lineage == nil {
		r.prog.Done[p.off] = etag
	}
}

func (r *copyRun) finish(p piece, etag, name string) {
	r.record(p, etag, name)
	r.mu.Lock()
	r.report()
	r.mu.Unlock()
}

// reused records a segment made from a kept one, by a server-side copy or in place.
func (r *copyRun) reused(p piece, etag, name string) {
	r.mu.Lock()
	r.prog.BytesReused += p.size
	r.reusedCount++
	r.mu.Unlock()
	r.finish(p, etag, name)
}

// cut counts a piece the queue split off.
func (r *copyRun) cut() {
	r.mu.Lock()
	r.prog.SegmentsTotal++
	r.mu.Unlock()
}

// streamed counts n bytes into (or, negative, out of) BytesInFlight, reporting every MiB.
func (r *copyRun) streamed(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prog.BytesInFlight += n
	if n > 0 {
		if r.unreported += n; r.unreported >= progressEvery {
			r.report()
		}
	}
}

// report hands a copy of the progress to the caller; call with r.mu held.
func (r *copyRun) report() {
	r.unreported = 0
	if r.opts.Progress == nil {
		return
	}
	r.prog.BytesPerSecond = r.rate.add(time.Now(), r.prog.BytesSent+r.prog.BytesInFlight)
	if left := r.prog.Remaining(); left > 0 {
		r.prog.ETA = time.Now().Add(left).UTC().Format(time.RFC3339)
	}
	snap := r.prog
	snap.Done = make(map[int64]string, len(r.prog.Done))
	for k, v := range r.prog.Done {
		snap.Done[k] = v
	}
	r.opts.Progress(snap)
}

// rateWindow is a copy's recent upload rate: over the last rateSpan, not since the start.
// Bytes a transfer has handed to the network count as sent, and at the start of a slow copy the
// kernel's socket buffers take several MiB per connection at once; averaged since the start that
// burst promised a 64 MiB copy at 8 MiB/s would end in a second. Over a window it passes.
type rateWindow struct {
	samples []rateSample
}

type rateSample struct {
	at    time.Time
	bytes int64
}

const rateSpan = 10 * time.Second

// add records that bytes were sent by at, and returns the rate over the window (zero until
// there is a second of history).
func (w *rateWindow) add(at time.Time, bytes int64) float64 {
	w.samples = append(w.samples, rateSample{at, bytes})
	// Keep one sample at or before the window's start as its anchor.
	drop := 0
	for drop+1 < len(w.samples) && at.Sub(w.samples[drop+1].at) >= rateSpan {
		drop++
	}
	w.samples = w.samples[drop:]
	first := w.samples[0]
	secs := at.Sub(first.at).Seconds()
	if secs < 1 {
		return 0
	}
	return float64(bytes-first.bytes) / secs
}

// countingReader counts a request body's bytes as the HTTP transport reads them. The transport
// may go on reading after the request returned (it closes the body in its own goroutine), so
// the count is atomic and stop ends the reading and the counting.
type countingReader struct {
	r       io.Reader
	n       atomic.Int64
	stopped atomic.Bool
	add     func(int64) // told of every read; may be nil
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.stopped.Load() {
		return 0, io.ErrClosedPipe
	}
	n, err := c.r.Read(p)
	if n > 0 && !c.stopped.Load() {
		c.n.Add(int64(n))
		if c.add != nil {
			c.add(int64(n))
		}
	}
	return n, err
}

// stop ends the body's reads and returns how many bytes were read.
func (c *countingReader) stop() int64 {
	c.stopped.Store(true)
	return c.n.Load()
}
