package cloud

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Lineage makes a copy incremental. Snapshots of one server form a lineage; each copy of one
// (a generation) keeps its segments in the lineage's container in the target region, cut at one
// range size so offsets line up between generations. The next generation's copy hashes the
// source range by range (reading in the source region only) and, where a range's MD5 equals the
// kept generation's, makes its segment by a server-side copy inside the target region instead
// of sending the bytes across.
type Lineage struct {
	// Container holds the lineage's generations in the target region.
	Container string `json:"container"`
	// Generation names this copy in it (the source image's id).
	Generation string `json:"generation"`
	// RangeSize is the bytes per range (default 32 MiB). Smaller ranges find more unchanged bytes
	// when changes are scattered, but Swift spends a request on every segment a manifest names:
	// on the rig's Swift a manifest of 4 MiB segments read 1.35x as long as a plain one, of
	// 32 MiB 1.04x (see readableSegment). At least 1 MiB.
	RangeSize int64 `json:"range_size,omitempty"`
}

// DefaultRangeSize is a lineage's range size when none is set: readableSegment, so the target
// reads as fast as a plain copy. A change clustered in one run costs at most two ranges more
// than its own bytes: 64 MiB, under 1% of a 10 GB image.
const DefaultRangeSize = readableSegment

// lineageIndex is the object naming a lineage's kept generations, oldest first.
const lineageIndex = "generations.json"

// rangesObject is where a generation lists its ranges: written when its copy ends.
func rangesObject(generation string) string { return generation + "/ranges.json" }

// keptRange is one segment of a kept generation.
type keptRange struct {
	Off  int64  `json:"off"`
	Size int64  `json:"size"`
	ETag string `json:"etag"`
	Name string `json:"name"`
}

type generationRanges struct {
	Generation string      `json:"generation"`
	Written    time.Time   `json:"written"`
	Ranges     []keptRange `json:"ranges"`
}

// lineageBase is the kept generation a copy may reuse, by offset. It holds a range per 4 MiB of
// the image, so it is kept small (see doneSeg): a slice in offset order, ETags as 16 bytes, and
// no names for the kept generation's own segments, which follow from prefix and offset.
type lineageBase struct {
	prefix string      // the kept generation's own segments' prefix
	ranges []baseRange // by offset
}

// baseRange is a kept range in memory.
type baseRange struct {
	off, size int64
	etag      etag
	name      string // "" for prefix + the offset as segName writes it
}

func newLineageBase(g generationRanges) *lineageBase {
	b := &lineageBase{ranges: make([]baseRange, 0, len(g.Ranges))}
	for _, r := range g.Ranges {
		b.add(r)
	}
	b.sort()
	return b
}

// add keeps r; the first range added sets the prefix the generation's own segments share.
func (b *lineageBase) add(r keptRange) {
	if len(b.ranges) == 0 {
		b.prefix = r.Name[:strings.LastIndex(r.Name, "/")+1]
	}
	br := baseRange{off: r.Off, size: r.Size, etag: parseETag(r.ETag), name: r.Name}
	if r.Name == segmentName(b.prefix, r.Off) {
		br.name = ""
	}
	b.ranges = append(b.ranges, br)
}

// sort orders the ranges by offset for lookup, once all are added.
func (b *lineageBase) sort() {
	slices.SortFunc(b.ranges, func(x, y baseRange) int { return cmp.Compare(x.off, y.off) })
}

// lookup finds the kept range at p's offset; a nil base has none.
func (b *lineageBase) lookup(p piece) (keptRange, bool) {
	if b == nil {
		return keptRange{}, false
	}
	i, ok := slices.BinarySearchFunc(b.ranges, p.off, func(r baseRange, off int64) int { return cmp.Compare(r.off, off) })
	if !ok {
		return keptRange{}, false
	}
	r := b.ranges[i]
	name := r.name
	if name == "" {
		name = segmentName(b.prefix, r.off)
	}
	return keptRange{Off: r.off, Size: r.size, ETag: r.etag.String(), Name: name}, true
}

// readJSONObject reads a small JSON object; a missing one leaves v untouched and is no error.
func (c *Client) readJSONObject(ctx context.Context, region, container, name string, v any) (bool, error) {
	op := fmt.Sprintf("read %s/%s in %s", container, name, region)
	sc, err := c.Files(region)
	if err != nil {
		return false, err
	}
	resp, err := c.stream(ctx, op, "GET", objectURL(sc, container, name), nil, 0, nil, 200)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return false, classify(op, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, &Error{Kind: Invalid, Op: op, Message: "not the JSON imageflow wrote: " + err.Error()}
	}
	return true, nil
}

func (c *Client) writeJSONObject(ctx context.Context, region, container, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.PutStream(ctx, region, container, name, bytes.NewReader(b), int64(len(b)), "")
	return err
}

// generations reads the lineage's kept generations, oldest first.
func (c *Client) generations(ctx context.Context, region, container string) ([]string, error) {
	var idx struct {
		Generations []string `json:"generations"`
	}
	_, err := c.readJSONObject(ctx, region, container, lineageIndex, &idx)
	return idx.Generations, err
}

// loadBase finds the newest kept generation other than this one, and its ranges. None is no
// error: the first copy of a lineage sends everything.
//
// Its segments are not listed: the copy names kept ranges in place, and the cloud checks every
// segment a static manifest names as it is written (a pruned or changed one fails the manifest,
// and the copy is then made again in full). Listing them would cost, at 160 GB with two
// generations of 38,147 ranges, eight list requests and tens of MiB of the worker's memory.
func (c *Client) loadBase(ctx context.Context, region string, l Lineage) (*lineageBase, error) {
	gens, err := c.generations(ctx, region, l.Container)
	if err != nil {
		return nil, err
	}
	for i := len(gens) - 1; i >= 0; i-- {
		if gens[i] == l.Generation {
			continue
		}
		base := &lineageBase{}
		found, err := c.readRanges(ctx, region, l.Container, gens[i], base.add)
		if err != nil || !found {
			return nil, err
		}
		base.sort()
		return base, nil
	}
	return nil, nil
}

// CopyObject copies an object inside a region on the server (X-Copy-From): no bytes reach the
// client. It returns the new object's ETag.
func (c *Client) CopyObject(
	ctx context.Context,
	region, srcContainer, srcName, dstContainer, dstName string,
) (string, error) {
	op := fmt.Sprintf("copy %s/%s to %s/%s in %s", srcContainer, srcName, dstContainer, dstName, region)
	sc, err := c.Files(region)
	if err != nil {
		return "", err
	}
	resp, err := c.stream(ctx, op, "PUT", objectURL(sc, dstContainer, dstName), bytes.NewReader(nil), 0,
		map[string]string{"X-Copy-From": "/" + srcContainer + "/" + escapePath(srcName)}, 201)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strings.Trim(resp.Header.Get("ETag"), `"`), nil
}

func escapePath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// KeepGeneration makes generation the lineage's newest kept one, after its image was imported
// and verified, and deletes the generations it drops beyond keep, except segments a kept
// generation still names (a generation reuses unchanged segments of older ones in place).
// Copies that never got this far are left alone: one may still be running or importing.
//
// Only what is dropped is read: the kept generations' records for names under a dropped
// generation, and the dropped generations' own objects, a listing page at a time. Listing the
// whole container at 160 GB (38,147 objects a generation, more when two are kept) was the
// largest thing a migration allocated, at its very end.
func (c *Client) KeepGeneration(ctx context.Context, region, container, generation string, keep int) (int, error) {
	before, err := c.generations(ctx, region, container)
	if err != nil {
		return 0, err
	}
	gens := append(slices.DeleteFunc(slices.Clone(before), func(g string) bool { return g == generation }), generation)
	if len(gens) > keep {
		gens = gens[len(gens)-keep:]
	}
	dropped := slices.DeleteFunc(slices.Clone(before), func(g string) bool { return slices.Contains(gens, g) })
	needed, err := c.namedUnder(ctx, region, container, gens, dropped)
	if err != nil {
		return 0, err
	}
	if err := c.writeJSONObject(ctx, region, container, lineageIndex, map[string]any{"generations": gens}); err != nil {
		return 0, err
	}
	deleted := 0
	for _, g := range dropped {
		err := c.listPages(ctx, region, container, g+"/", func(page []ObjectInfo) error {
			var stale []string
			for _, o := range page {
				if !needed[o.Name] {
					stale = append(stale, o.Name)
				}
			}
			n, err := c.DeleteObjects(ctx, region, container, stale)
			deleted += n
			return err
		})
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// namedUnder is the set of objects under the dropped generations that the kept ones' records
// name in place: they stay when the rest of a dropped generation goes.
func (c *Client) namedUnder(ctx context.Context, region, container string, kept, dropped []string) (map[string]bool,
	error) {
	needed := map[string]bool{}
	if len(dropped) == 0 {
		return needed, nil
	}
	need := func(r keptRange) {
		if in, _, _ := strings.Cut(r.Name, "/"); slices.Contains(dropped, in) {
			needed[r.Name] = true
		}
	}
	for _, g := range kept {
		if _, err := c.readRanges(ctx, region, container, g, need); err != nil {
			return nil, err
		}
	}
	return needed, nil
}

// reuse makes p's segment from the base generation when the source range is unchanged: true
// when it did. The source range's MD5 comes from the source listing when p is a whole source
// segment, else from reading the range in the source region; a range read so is sent, if it
// must be, with that MD5 for the target to check (p's wantETag), not hashed a second time.
func (r *copyRun) reuse(ctx context.Context, p *piece) (bool, error) {
	kept, ok := r.base.lookup(*p)
	if !ok || kept.Size != p.size {
		return false, nil
	}
	if p.wantETag == "" {
		sum, err := r.hashSource(ctx, *p)
		if err != nil {
			return false, err
		}
		p.wantETag = sum
	}
	sum := p.wantETag
	if !strings.EqualFold(sum, kept.ETag) {
		return false, nil
	}
	// A static manifest may name segments anywhere: point at the kept one, which pruning keeps
	// while any kept generation names it. Nothing is written in the target.
	r.reused(*p, kept.ETag, kept.Name)
	return true, nil
}

// writeRanges records this generation's segments for the copies after it.
func (r *copyRun) writeRanges(ctx context.Context) error {
	offs := r.offsets()
	rw := rangesWriter{generation: r.opts.Lineage.Generation, written: time.Now().UTC()}
	rw.ranges = func(yield func(keptRange) bool) {
		for _, off := range offs {
			d := r.doneAt(off)
			if !yield(keptRange{Off: off, Size: d.size, ETag: d.etag.String(), Name: r.nameOf(off, d)}) {
				return
			}
		}
	}
	return r.dc.putRanges(ctx, r.dst.Region, r.segContainer, rangesObject(rw.generation), rw)
}
