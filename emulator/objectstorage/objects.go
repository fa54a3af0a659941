package objectstorage

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
	"github.com/imageflow/imageflow/emulator/internal/seeded"
)

func (s *Service) objectOp(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	cname, oname := r.PathValue("container"), r.PathValue("object")
	if len(oname) > 1024 {
		core.Fail(w, 400, "Object name is longer than 1024 characters.")
		return
	}
	if !cleanName(cname) || !cleanName(oname) {
		core.Fail(w, 412, "Invalid UTF8 or contains NULL")
		return
	}
	switch r.Method {
	case http.MethodPut:
		s.putObject(w, r, fs, cname, oname)
	case http.MethodGet, http.MethodHead:
		s.getObject(w, r, fs, cname, oname)
	case http.MethodDelete:
		s.deleteObject(w, r, fs, cname, oname)
	case http.MethodPost:
		s.postObject(w, r, fs, cname, oname)
	case "COPY":
		dst := strings.TrimPrefix(r.Header.Get("Destination"), "/")
		dc, do, ok := strings.Cut(dst, "/")
		if !ok || do == "" {
			core.Fail(w, 412, "Destination header must be <container>/<object>, got %q", r.Header.Get("Destination"))
			return
		}
		s.copyObject(w, r, fs, cname+"/"+oname, dc, do)
	default:
		core.Fail(w, 405, "%s is not allowed on an object", r.Method)
	}
}

func objectMeta(h http.Header) map[string]string {
	m := map[string]string{}
	for k, vs := range h {
		if strings.HasPrefix(k, "X-Object-Meta-") && len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	return m
}

func (s *Service) putObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	s.store.Lock()
	exists := fs.containers()[cname] != nil
	s.store.Unlock()
	if !exists {
		core.Fail(w, 404, "Container %s not found.", cname)
		return
	}
	if src := r.Header.Get("X-Copy-From"); src != "" {
		s.copyObject(w, r, fs, strings.TrimPrefix(src, "/"), cname, oname)
		return
	}
	if r.URL.Query().Get("multipart-manifest") == "put" {
		s.putSLO(w, r, fs, cname, oname)
		return
	}
	if r.ContentLength > s.maxObjectSize {
		core.Fail(
			w,
			413,
			"Your request is too large: objects are limited to %d bytes; use segments and a manifest.",
			s.maxObjectSize,
		)
		return
	}
	body := &countingBody{r: r.Body}
	o, err := s.takeUpload(fs, body, r.ContentLength)
	s.received.Add(fs.region, body.n)
	switch {
	case errors.Is(err, core.ErrTooLarge):
		core.Fail(
			w,
			413,
			"Your request is too large: objects are limited to %d bytes; use segments and a manifest.",
			s.maxObjectSize,
		)
		return
	case err != nil:
		core.Fail(w, 400, "Could not read the object body (did the client hang up?): %v", err)
		return
	}
	if want := strings.Trim(r.Header.Get("ETag"), "\""); want != "" && !strings.EqualFold(want, o.ETag) {
		s.store.RemoveFile(o.File)
		core.Fail(w, 422, "The ETag %s you sent does not match the MD5 %s of the data received.", want, o.ETag)
		return
	}
	o.Name, o.Meta, o.ContentType, o.Manifest = oname, objectMeta(r.Header), contentType(r),
		r.Header.Get("X-Object-Manifest")
	if !s.storeObject(w, fs, cname, o) {
		return
	}
	w.Header().Set("ETag", o.ETag)
	w.WriteHeader(201)
}

// takeUpload keeps an upload's bytes: as a reference when they are generated content (and the
// store takes such; the length must be known), else in a file.
func (s *Service) takeUpload(fs *fileSpace, body io.Reader, n int64) (*Object, error) {
	if s.takeGenerated && n >= 2*seeded.Block && n <= s.maxObjectSize {
		up, err := s.gen.Take(body, n)
		if err != nil {
			return nil, err
		}
		if up.Generated {
			ref := s.gen.RefOf(up.Section)
			return &Object{Size: n, ETag: up.MD5, Gen: &ref}, nil
		}
		body = up.Rest
	}
	rel, size, etag, err := s.store.WriteBlob(fs.dataDir(), body, s.maxObjectSize)
	if err != nil {
		return nil, err
	}
	return &Object{Size: size, ETag: etag, File: rel}, nil
}

func contentType(r *http.Request) string {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// record records o in its container, replacing (and deleting the bytes of) any object of the
// same name. The container may have been deleted while the bytes were written: then the new
// bytes are removed and ErrNoContainer returned.
func (s *Service) record(fs *fileSpace, cname string, o *Object) error {
	o.LastModified = time.Now().UTC()
	s.store.Lock()
	defer s.store.Unlock()
	c := fs.containers()[cname]
	if c == nil {
		s.store.RemoveFile(o.File)
		return ErrNoContainer
	}
	if old := c.Objects[o.Name]; old != nil {
		s.store.RemoveFile(old.File)
	}
	c.Objects[o.Name] = o
	s.store.Commit()
	return nil
}

// storeObject is record for a request: it answers 404 itself when the container is gone.
func (s *Service) storeObject(w http.ResponseWriter, fs *fileSpace, cname string, o *Object) bool {
	if err := s.record(fs, cname, o); err != nil {
		core.Fail(w, 404, "Container %s not found.", cname)
		return false
	}
	return true
}

// open finds an object and resolves its parts under the lock; o is nil when it does not exist.
func (fs *fileSpace) open(cname, oname string) (o *Object, res *resolved, err error) {
	fs.s.store.Lock()
	defer fs.s.store.Unlock()
	if o = fs.findObject(cname, oname); o != nil {
		res, err = fs.resolve(o)
	}
	return o, res, err
}

// findObject resolves "container/object" in the account; call with the store locked.
func (fs *fileSpace) findObject(cname, oname string) *Object {
	c := fs.containers()[cname]
	if c == nil {
		return nil
	}
	return c.Objects[oname]
}

func (s *Service) getObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	o, res, err := fs.open(cname, oname)
	if o == nil {
		core.Fail(w, 404, "Object %s/%s not found.", cname, oname)
		return
	}
	if err != nil {
		core.Fail(w, 409, "%v", err)
		return
	}
	if o.SLO != nil && r.URL.Query().Get("multipart-manifest") == "get" {
		s.getManifest(w, r, o)
		return
	}
	if r.Method == http.MethodGet && res.gapAt(rangeStart(r.Header.Get("Range"), res.size)) {
		core.Fail(w, 409, "a segment of %s/%s is missing or changed where the read starts", cname, oname)
		return
	}
	h := w.Header()
	for k, v := range o.Meta {
		h.Set(k, v)
	}
	if o.Manifest != "" {
		h.Set("X-Object-Manifest", o.Manifest)
	}
	if o.SLO != nil {
		h.Set("X-Static-Large-Object", "True")
		h.Set("X-Manifest-Etag", o.manifestETag())
	}
	h.Set("X-Timestamp", xTimestamp(o))
	h.Set("Content-Type", o.ContentType)
	h.Set("ETag", res.etag)
	h.Set("Last-Modified", lastModified(o).Format(http.TimeFormat))
	if !conditionsHold(w, r, strings.Trim(res.etag, "\"")) {
		return
	}
	// ServeContent handles Range (206, 416); conditions were judged above with Swift's lax quoting.
	r.Header.Del("If-Match")
	r.Header.Del("If-None-Match")
	body := s.store.OpenParts(res.parts)
	defer body.Close()
	body.OnPart(s.throttle.pacer(r.Context(), res))
	http.ServeContent(w, r, "", time.Time{}, body)
}

// rangeStart is the first byte a Range header asks for (0 without one, or for one it cannot read).
func rangeStart(h string, size int64) int64 {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return 0
	}
	first, _, _ := strings.Cut(spec, ",")
	a, b, _ := strings.Cut(strings.TrimSpace(first), "-")
	if a == "" { // a suffix: the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			return 0
		}
		return max(size-n, 0)
	}
	n, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// getManifest answers ?multipart-manifest=get: the stored manifest as JSON, ETag its MD5, or
// with format=raw the manifest as a client would PUT it.
func (s *Service) getManifest(w http.ResponseWriter, r *http.Request, o *Object) {
	body := o.manifestJSON()
	if r.URL.Query().Get("format") == "raw" {
		body = o.rawManifestJSON()
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Static-Large-Object", "True")
	h.Set("ETag", o.manifestETag())
	h.Set("X-Timestamp", xTimestamp(o))
	h.Set("Last-Modified", lastModified(o).Format(http.TimeFormat))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(200)
	_, _ = w.Write(body)
}

// lastModified is an object's Last-Modified: its write time rounded up to the second, as Swift
// gives it (an object written at 06:14:07.26 was last modified at 06:14:08).
func lastModified(o *Object) time.Time {
	t := o.LastModified.UTC()
	if r := t.Truncate(time.Second); r.Before(t) {
		return r.Add(time.Second)
	}
	return t
}

// xTimestamp is an object's X-Timestamp: its write time in seconds, five decimals, as Swift's.
func xTimestamp(o *Object) string {
	return strconv.FormatFloat(float64(o.LastModified.UnixMicro())/1e6, 'f', 5, 64)
}

// conditionsHold applies If-Match and If-None-Match, accepting quoted or bare ETags as Swift does.
func conditionsHold(w http.ResponseWriter, r *http.Request, etag string) bool {
	match := func(hdr string) bool {
		for _, v := range strings.Split(hdr, ",") {
			v = strings.Trim(strings.TrimSpace(v), "\"")
			if v == "*" || v == etag {
				return true
			}
		}
		return false
	}
	if im := r.Header.Get("If-Match"); im != "" && !match(im) {
		w.WriteHeader(412)
		return false
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && match(inm) {
		w.WriteHeader(304)
		return false
	}
	return true
}

func (s *Service) deleteObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	w, unlock := s.store.LockReply(w)
	defer unlock()
	c := fs.containers()[cname]
	if c == nil || c.Objects[oname] == nil {
		core.Fail(w, 404, "Object %s/%s not found.", cname, oname)
		return
	}
	o := c.Objects[oname]
	if o.SLO != nil && r.URL.Query().Get("multipart-manifest") == "delete" {
		for _, seg := range o.SLO {
			sc, so, _ := strings.Cut(strings.TrimPrefix(seg.Path, "/"), "/")
			if seg := fs.findObject(sc, so); seg != nil {
				s.store.RemoveFile(seg.File)
				delete(fs.containers()[sc].Objects, so)
			}
		}
	}
	s.store.RemoveFile(o.File)
	delete(c.Objects, oname)
	s.store.Commit()
	w.WriteHeader(204)
}

func (s *Service) postObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	w, unlock := s.store.LockReply(w)
	defer unlock()
	o := fs.findObject(cname, oname)
	if o == nil {
		core.Fail(w, 404, "Object %s/%s not found.", cname, oname)
		return
	}
	o.Meta = objectMeta(r.Header)
	if m := r.Header.Get("X-Object-Manifest"); m != "" {
		o.Manifest = m
	}
	s.store.Commit()
	w.WriteHeader(202)
}

// copyObject copies src ("container/object", manifests followed) to dc/do in the same region.
func (s *Service) copyObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, src, dc, do string) {
	sc, so, ok := strings.Cut(src, "/")
	if !ok {
		core.Fail(w, 412, "copy source must be <container>/<object>, got %q", src)
		return
	}
	if u, err := url.PathUnescape(so); err == nil {
		so = u
	}
	o, res, err := fs.open(sc, so)
	s.store.Lock()
	dstExists := fs.containers()[dc] != nil
	s.store.Unlock()
	switch {
	case o == nil:
		core.Fail(w, 404, "Copy source %s/%s not found.", sc, so)
		return
	case err != nil:
		core.Fail(w, 409, "%v", err)
		return
	case len(res.gaps) > 0:
		core.Fail(w, 409, "a segment of copy source %s/%s is missing or changed", sc, so)
		return
	case !dstExists:
		core.Fail(w, 404, "Container %s not found.", dc)
		return
	case res.size > s.maxObjectSize:
		core.Fail(w, 413, "Copy source is larger than the %d-byte object limit.", s.maxObjectSize)
		return
	}
	n, err := s.copyBytes(fs, o, res)
	if err != nil {
		core.Fail(w, 500, "copy %s/%s: %v", sc, so, err)
		return
	}
	meta := map[string]string{}
	for k, v := range o.Meta {
		meta[k] = v
	}
	for k, v := range objectMeta(r.Header) {
		meta[k] = v
	}
	n.Name, n.Meta, n.ContentType = do, meta, o.ContentType
	if !s.storeObject(w, fs, dc, n) {
		return
	}
	// Swift names the copy's source, its account and its time, and the new object's time.
	h := w.Header()
	h.Set("ETag", n.ETag)
	h.Set("X-Copied-From", sc+"/"+so)
	h.Set("X-Copied-From-Account", "MossoCloudFS_"+fs.tenant)
	h.Set("X-Copied-From-Last-Modified", lastModified(o).Format(http.TimeFormat))
	h.Set("Last-Modified", lastModified(n).Format(http.TimeFormat))
	w.WriteHeader(201)
}

// copyBytes makes the bytes of a copy of o: a reference to the same generated section when o is
// one, else a new file.
func (s *Service) copyBytes(fs *fileSpace, o *Object, res *resolved) (*Object, error) {
	if o.Gen != nil && o.Manifest == "" && o.SLO == nil {
		ref := *o.Gen
		return &Object{Size: o.Size, ETag: o.ETag, Gen: &ref}, nil
	}
	body := s.store.OpenParts(res.parts)
	defer body.Close()
	rel, size, etag, err := s.store.WriteBlob(fs.dataDir(), body, s.maxObjectSize)
	if err != nil {
		return nil, err
	}
	return &Object{Size: size, ETag: etag, File: rel}, nil
}
