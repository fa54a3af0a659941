package emulator

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

func (e *Emulator) objectOp(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	cname, oname := r.PathValue("container"), r.PathValue("object")
	if len(oname) > 1024 {
		fail(w, 400, "Object name is longer than 1024 characters.")
		return
	}
	if !cleanName(cname) || !cleanName(oname) {
		fail(w, 412, "Invalid UTF8 or contains NULL")
		return
	}
	switch r.Method {
	case http.MethodPut:
		e.putObject(w, r, fs, cname, oname)
	case http.MethodGet, http.MethodHead:
		e.getObject(w, r, fs, cname, oname)
	case http.MethodDelete:
		e.deleteObject(w, r, fs, cname, oname)
	case http.MethodPost:
		e.postObject(w, r, fs, cname, oname)
	case "COPY":
		dst := strings.TrimPrefix(r.Header.Get("Destination"), "/")
		dc, do, ok := strings.Cut(dst, "/")
		if !ok || do == "" {
			fail(w, 412, "Destination header must be <container>/<object>, got %q", r.Header.Get("Destination"))
			return
		}
		e.copyObject(w, r, fs, cname+"/"+oname, dc, do)
	default:
		fail(w, 405, "%s is not allowed on an object", r.Method)
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

func (e *Emulator) putObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	e.mu.Lock()
	exists := fs.containers()[cname] != nil
	e.mu.Unlock()
	if !exists {
		fail(w, 404, "Container %s not found.", cname)
		return
	}
	if src := r.Header.Get("X-Copy-From"); src != "" {
		e.copyObject(w, r, fs, strings.TrimPrefix(src, "/"), cname, oname)
		return
	}
	if r.URL.Query().Get("multipart-manifest") == "put" {
		e.putSLO(w, r, fs, cname, oname)
		return
	}
	if r.ContentLength > e.cfg.MaxObjectSize {
		fail(
			w,
			413,
			"Your request is too large: objects are limited to %d bytes; use segments and a manifest.",
			e.cfg.MaxObjectSize,
		)
		return
	}
	body := &countingBody{r: r.Body}
	rel, size, etag, err := e.writeBlob(fs.dataDir(), body, e.cfg.MaxObjectSize)
	e.stats.received(fs.region, body.n)
	switch {
	case errors.Is(err, errTooLarge):
		fail(
			w,
			413,
			"Your request is too large: objects are limited to %d bytes; use segments and a manifest.",
			e.cfg.MaxObjectSize,
		)
		return
	case err != nil:
		fail(w, 400, "Could not read the object body (did the client hang up?): %v", err)
		return
	}
	if want := strings.Trim(r.Header.Get("ETag"), "\""); want != "" && !strings.EqualFold(want, etag) {
		e.removeFile(rel)
		fail(w, 422, "The ETag %s you sent does not match the MD5 %s of the data received.", want, etag)
		return
	}
	o := &object{Name: oname, Size: size, ETag: etag, File: rel, Meta: objectMeta(r.Header),
		ContentType: contentType(r), Manifest: r.Header.Get("X-Object-Manifest")}
	if !e.storeObject(w, fs, cname, o) {
		return
	}
	w.Header().Set("ETag", etag)
	w.WriteHeader(201)
}

func contentType(r *http.Request) string {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// store records o in its container, replacing (and deleting the bytes of) any object of the
// same name. The container may have been deleted while the bytes were written: then the new
// bytes are removed and errNoContainer returned.
func (e *Emulator) store(fs *fileSpace, cname string, o *object) error {
	o.LastModified = time.Now().UTC()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := fs.containers()[cname]
	if c == nil {
		e.removeFile(o.File)
		return errNoContainer
	}
	if old := c.Objects[o.Name]; old != nil {
		e.removeFile(old.File)
	}
	c.Objects[o.Name] = o
	e.commit()
	return nil
}

// storeObject is store for a request: it answers 404 itself when the container is gone.
func (e *Emulator) storeObject(w http.ResponseWriter, fs *fileSpace, cname string, o *object) bool {
	if err := e.store(fs, cname, o); err != nil {
		fail(w, 404, "Container %s not found.", cname)
		return false
	}
	return true
}

// open finds an object and resolves its parts under the lock; o is nil when it does not exist.
func (fs *fileSpace) open(cname, oname string) (o *object, res *resolved, err error) {
	fs.e.mu.Lock()
	defer fs.e.mu.Unlock()
	if o = fs.findObject(cname, oname); o != nil {
		res, err = fs.resolve(o)
	}
	return o, res, err
}

// findObject resolves "container/object" in the account; call with e.mu held.
func (fs *fileSpace) findObject(cname, oname string) *object {
	c := fs.containers()[cname]
	if c == nil {
		return nil
	}
	return c.Objects[oname]
}

func (e *Emulator) getObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	o, res, err := fs.open(cname, oname)
	if o == nil {
		fail(w, 404, "Object %s/%s not found.", cname, oname)
		return
	}
	if err != nil {
		fail(w, 409, "%v", err)
		return
	}
	if o.SLO != nil && r.URL.Query().Get("multipart-manifest") == "get" {
		rows := []map[string]any{}
		for _, s := range o.SLO {
			rows = append(rows, map[string]any{"name": s.Path, "hash": s.ETag, "bytes": s.Size})
		}
		writeJSON(w, 200, rows)
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
	}
	h.Set("Content-Type", o.ContentType)
	h.Set("ETag", res.etag)
	h.Set("Last-Modified", o.LastModified.Format(http.TimeFormat))
	if !conditionsHold(w, r, strings.Trim(res.etag, "\"")) {
		return
	}
	// ServeContent handles Range (206, 416); conditions were judged above with Swift's lax quoting.
	r.Header.Del("If-Match")
	r.Header.Del("If-None-Match")
	body := e.openParts(res.parts)
	defer body.Close()
	http.ServeContent(w, r, "", time.Time{}, body)
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

func (e *Emulator) deleteObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	w, unlock := e.lockReply(w)
	defer unlock()
	c := fs.containers()[cname]
	if c == nil || c.Objects[oname] == nil {
		fail(w, 404, "Object %s/%s not found.", cname, oname)
		return
	}
	o := c.Objects[oname]
	if o.SLO != nil && r.URL.Query().Get("multipart-manifest") == "delete" {
		for _, s := range o.SLO {
			sc, so, _ := strings.Cut(strings.TrimPrefix(s.Path, "/"), "/")
			if seg := fs.findObject(sc, so); seg != nil {
				e.removeFile(seg.File)
				delete(fs.containers()[sc].Objects, so)
			}
		}
	}
	e.removeFile(o.File)
	delete(c.Objects, oname)
	e.commit()
	w.WriteHeader(204)
}

func (e *Emulator) postObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	w, unlock := e.lockReply(w)
	defer unlock()
	o := fs.findObject(cname, oname)
	if o == nil {
		fail(w, 404, "Object %s/%s not found.", cname, oname)
		return
	}
	o.Meta = objectMeta(r.Header)
	if m := r.Header.Get("X-Object-Manifest"); m != "" {
		o.Manifest = m
	}
	e.commit()
	w.WriteHeader(202)
}

// copyObject copies src ("container/object", manifests followed) to dc/do in the same region.
func (e *Emulator) copyObject(w http.ResponseWriter, r *http.Request, fs *fileSpace, src, dc, do string) {
	sc, so, ok := strings.Cut(src, "/")
	if !ok {
		fail(w, 412, "copy source must be <container>/<object>, got %q", src)
		return
	}
	if u, err := url.PathUnescape(so); err == nil {
		so = u
	}
	o, res, err := fs.open(sc, so)
	e.mu.Lock()
	dstExists := fs.containers()[dc] != nil
	e.mu.Unlock()
	switch {
	case o == nil:
		fail(w, 404, "Copy source %s/%s not found.", sc, so)
		return
	case err != nil:
		fail(w, 409, "%v", err)
		return
	case !dstExists:
		fail(w, 404, "Container %s not found.", dc)
		return
	case res.size > e.cfg.MaxObjectSize:
		fail(w, 413, "Copy source is larger than the %d-byte object limit.", e.cfg.MaxObjectSize)
		return
	}
	body := e.openParts(res.parts)
	defer body.Close()
	rel, size, etag, err := e.writeBlob(fs.dataDir(), body, e.cfg.MaxObjectSize)
	if err != nil {
		fail(w, 500, "copy %s/%s: %v", sc, so, err)
		return
	}
	meta := map[string]string{}
	for k, v := range o.Meta {
		meta[k] = v
	}
	for k, v := range objectMeta(r.Header) {
		meta[k] = v
	}
	n := &object{Name: do, Size: size, ETag: etag, File: rel, Meta: meta, ContentType: o.ContentType}
	if !e.storeObject(w, fs, dc, n) {
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("X-Copied-From", sc+"/"+so)
	w.WriteHeader(201)
}
