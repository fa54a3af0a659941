package objectstorage

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// resolved is an object ready to stream: its parts and the ETag clients see.
type resolved struct {
	obj   *Object
	parts []core.FilePart
	size  int64
	etag  string // quoted for manifests, as Swift does
	// viaDLO says, per part of a manifest, whether a dynamic manifest named it (nil for a plain
	// object): Swift paces a DLO's every segment, an SLO's small ones only (see Throttle).
	viaDLO []bool
	// gaps are the byte ranges [start, end) of static manifest segments that are missing or
	// changed since the manifest was written. Swift still answers HEAD (the manifest says the
	// sizes), and a GET until it reaches one, where the body is cut short; a GET starting in one
	// answers 409 (see gapAt).
	gaps [][2]int64
}

// gapAt reports whether byte off of the object lies in a missing or changed segment.
func (res *resolved) gapAt(off int64) bool {
	for _, g := range res.gaps {
		if off >= g[0] && off < g[1] {
			return true
		}
	}
	return false
}

// gapReader stands for a missing or changed segment: reading it fails, as Swift's read of the
// manifest fails there.
type gapReader struct{ path string }

func (g gapReader) ReadAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("segment %s is missing or changed since the manifest was written", g.path)
}

// MaxManifestDepth is how deep manifests may nest (Swift's SLO limit): a segment that is itself a
// manifest is served whole, its own segments in place, and one nested deeper (or a loop) is an
// error rather than a body shorter than the length promised for it.
const MaxManifestDepth = 10

// resolve turns an object into its byte parts, following DLO and SLO manifests; call with the store locked.
func (fs *fileSpace) resolve(o *Object) (*resolved, error) {
	return fs.resolveAt(o, 1)
}

// addSegment appends the byte parts of one segment of a manifest at depth; dlo says the manifest
// is a dynamic one.
func (fs *fileSpace) addSegment(res *resolved, seg *Object, depth int, dlo bool) error {
	if seg.Manifest == "" && seg.SLO == nil {
		res.parts = append(res.parts, fs.s.part(seg))
		res.viaDLO = append(res.viaDLO, dlo)
		res.size += seg.Size
		return nil
	}
	if depth >= MaxManifestDepth {
		return fmt.Errorf("manifests nest deeper than %d at %s", MaxManifestDepth, seg.Name)
	}
	sub, err := fs.resolveAt(seg, depth+1)
	if err != nil {
		return err
	}
	for _, g := range sub.gaps {
		res.gaps = append(res.gaps, [2]int64{res.size + g[0], res.size + g[1]})
	}
	res.parts = append(res.parts, sub.parts...)
	res.viaDLO = append(res.viaDLO, sub.viaDLO...)
	res.size += sub.size
	return nil
}

func (fs *fileSpace) resolveAt(o *Object, depth int) (*resolved, error) {
	res := &resolved{obj: o, viaDLO: []bool{}}
	switch {
	case o.Manifest != "":
		segC, prefix, _ := strings.Cut(o.Manifest, "/")
		c := fs.containers()[segC]
		var names []string
		if c != nil {
			for n := range c.Objects {
				if strings.HasPrefix(n, prefix) {
					names = append(names, n)
				}
			}
		}
		sort.Strings(names)
		var etags strings.Builder
		for _, n := range names {
			seg := c.Objects[n]
			if seg == o {
				continue // a manifest whose prefix matches its own name is not its own segment
			}
			if err := fs.addSegment(res, seg, depth, true); err != nil {
				return nil, err
			}
			etags.WriteString(seg.ETag)
		}
		res.etag = quotedMD5(etags.String())
	case o.SLO != nil:
		var etags strings.Builder
		for _, s := range o.SLO {
			sc, so, _ := strings.Cut(strings.TrimPrefix(s.Path, "/"), "/")
			seg := fs.findObject(sc, so)
			if seg == nil || seg.ETag != s.ETag {
				res.gaps = append(res.gaps, [2]int64{res.size, res.size + s.Size})
				res.parts = append(res.parts, core.FilePart{Size: s.Size, Gen: gapReader{path: s.Path}})
				res.viaDLO = append(res.viaDLO, false)
				res.size += s.Size
				etags.WriteString(s.ETag)
				continue
			}
			if err := fs.addSegment(res, seg, depth, false); err != nil {
				return nil, err
			}
			etags.WriteString(seg.ETag)
		}
		res.etag = quotedMD5(etags.String())
	default:
		res.parts = []core.FilePart{fs.s.part(o)}
		res.size, res.etag, res.viaDLO = o.Size, o.ETag, nil
	}
	return res, nil
}

func quotedMD5(s string) string {
	sum := md5.Sum([]byte(s))
	return "\"" + hex.EncodeToString(sum[:]) + "\""
}

func (s *Service) putSLO(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	var segs []SLOSegment
	if !core.ReadJSON(w, r, &segs) {
		return
	}
	if len(segs) == 0 || len(segs) > maxSLOSegments {
		core.Fail(w, 400, "A static large object manifest needs 1 to %d segments, got %d.", maxSLOSegments, len(segs))
		return
	}
	s.store.Lock()
	var etags strings.Builder
	var problems []string
	for i := range segs {
		sg := &segs[i]
		sc, so, _ := strings.Cut(strings.TrimPrefix(sg.Path, "/"), "/")
		seg := fs.findObject(sc, so)
		switch {
		case seg == nil:
			problems = append(problems, fmt.Sprintf("%s: 404 Not Found", sg.Path))
			continue
		case sg.ETag != "" && !strings.EqualFold(strings.Trim(sg.ETag, "\""), seg.ETag):
			problems = append(problems, fmt.Sprintf("%s: ETag mismatch", sg.Path))
		case sg.Size != 0 && sg.Size != seg.Size:
			problems = append(problems, fmt.Sprintf("%s: Size mismatch", sg.Path))
		case seg.Size < minSLOSegment && i < len(segs)-1:
			problems = append(
				problems,
				fmt.Sprintf(
					"%s: too small; each segment but the last must be at least %d bytes",
					sg.Path,
					minSLOSegment,
				),
			)
		}
		sg.Path = "/" + sc + "/" + so
		sg.ETag, sg.Size, sg.SubSLO = seg.ETag, seg.Size, seg.SLO != nil
		// Swift records the segment's Last-Modified, whole seconds.
		sg.ContentType, sg.LastModified = seg.ContentType, lastModified(seg).Format("2006-01-02T15:04:05.000000")
		etags.WriteString(seg.ETag)
	}
	s.store.Unlock()
	if len(problems) > 0 {
		core.Fail(w, 400, "Errors in the manifest: %s", strings.Join(problems, "; "))
		return
	}
	o := &Object{Name: oname, ETag: strings.Trim(quotedMD5(etags.String()), "\""), SLO: segs,
		Meta: objectMeta(r.Header), ContentType: contentType(r)}
	for _, s := range segs {
		o.Size += s.Size
	}
	if !s.storeObject(w, fs, cname, o) {
		return
	}
	w.Header().Set("ETag", quotedMD5(etags.String()))
	w.WriteHeader(201)
}
