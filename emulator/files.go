package emulator

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (e *Emulator) routeFiles(mux *http.ServeMux, rname string) {
	h := func(f func(w http.ResponseWriter, r *http.Request, fs *fileSpace)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			tenant := caller(r)
			if r.PathValue("account") != "MossoCloudFS_"+tenant {
				fail(w, 403, "Token does not grant access to account %s.", r.PathValue("account"))
				return
			}
			f(w, r, &fileSpace{e: e, region: rname, tenant: tenant})
		}
	}
	mux.HandleFunc("/v1/{account}", h(e.accountOp))
	mux.HandleFunc("/v1/{account}/{container}", h(e.containerOp))
	mux.HandleFunc("/v1/{account}/{container}/{object...}", h(e.objectOp))
}

// fileSpace is one account's Cloud Files in one region, for the length of a request.
type fileSpace struct {
	e      *Emulator
	region string
	tenant string
}

// containers returns the account's containers in the region; call with e.mu held.
func (fs *fileSpace) containers() map[string]*container {
	files := fs.e.st.Regions[fs.region].Files
	if files[fs.tenant] == nil {
		files[fs.tenant] = map[string]*container{}
	}
	return files[fs.tenant]
}

func (fs *fileSpace) dataDir() string { return path.Join("objects", fs.region, fs.tenant) }

func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

func (e *Emulator) accountOp(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	_, bulk := r.URL.Query()["bulk-delete"]
	switch {
	case bulk && (r.Method == http.MethodPost || r.Method == http.MethodDelete):
		e.bulkDelete(w, r, fs)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		e.mu.Lock()
		var names []string
		var objects, bytes int64
		type row struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
			Bytes int64  `json:"bytes"`
		}
		rows := map[string]row{}
		q := r.URL.Query()
		prefix, marker, endMarker := q.Get("prefix"), q.Get("marker"), q.Get("end_marker")
		limit := 10000
		if v := q.Get("limit"); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				limit = min(n, 10000)
			}
		}
		for name, c := range fs.containers() {
			if !strings.HasPrefix(name, prefix) || (marker != "" && name <= marker) || (endMarker != "" && name >= endMarker) {
				continue
			}
			names = append(names, name)
			rw := row{Name: name, Count: len(c.Objects)}
			for _, o := range c.Objects {
				rw.Bytes += o.Size
			}
			rows[name] = rw
			objects += int64(rw.Count)
			bytes += rw.Bytes
		}
		e.mu.Unlock()
		sort.Strings(names)
		if len(names) > limit {
			names = names[:limit]
		}
		w.Header().Set("X-Account-Container-Count", strconv.Itoa(len(names)))
		w.Header().Set("X-Account-Object-Count", strconv.FormatInt(objects, 10))
		w.Header().Set("X-Account-Bytes-Used", strconv.FormatInt(bytes, 10))
		if r.Method == http.MethodHead {
			w.WriteHeader(204)
			return
		}
		if wantsJSON(r) {
			out := []row{}
			for _, n := range names {
				out = append(out, rows[n])
			}
			writeJSON(w, 200, out)
			return
		}
		writeNames(w, names)
	default:
		fail(w, 405, "%s is not allowed on an account", r.Method)
	}
}

func writeNames(w http.ResponseWriter, names []string) {
	if len(names) == 0 {
		w.WriteHeader(204)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, strings.Join(names, "\n")+"\n")
}

func validContainerName(n string) bool {
	return n != "" && len(n) <= 256 && !strings.Contains(n, "/")
}

func (e *Emulator) containerOp(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	name := r.PathValue("container")
	if !validContainerName(name) {
		fail(w, 400, "Container name %q is invalid: 1 to 256 characters, no '/'.", name)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := fs.containers()
	c := cs[name]
	switch r.Method {
	case http.MethodPut:
		if c != nil {
			w.WriteHeader(202)
			return
		}
		cs[name] = &container{Name: name, CreatedAt: now(), Objects: map[string]*object{}}
		e.commit()
		w.WriteHeader(201)
	case http.MethodPost:
		if c == nil {
			fail(w, 404, "Container %s not found.", name)
			return
		}
		w.WriteHeader(204)
	case http.MethodHead, http.MethodGet:
		if c == nil {
			fail(w, 404, "Container %s not found.", name)
			return
		}
		var bytes int64
		for _, o := range c.Objects {
			bytes += o.Size
		}
		w.Header().Set("X-Container-Object-Count", strconv.Itoa(len(c.Objects)))
		w.Header().Set("X-Container-Bytes-Used", strconv.FormatInt(bytes, 10))
		if r.Method == http.MethodHead {
			w.WriteHeader(204)
			return
		}
		listObjects(w, r, c)
	case http.MethodDelete:
		if c == nil {
			fail(w, 404, "Container %s not found.", name)
			return
		}
		if len(c.Objects) > 0 {
			fail(w, 409, "There was a conflict when trying to complete your request: container %s is not empty.", name)
			return
		}
		delete(cs, name)
		e.commit()
		w.WriteHeader(204)
	default:
		fail(w, 405, "%s is not allowed on a container", r.Method)
	}
}

func listObjects(w http.ResponseWriter, r *http.Request, c *container) {
	q := r.URL.Query()
	prefix, marker, endMarker, delim := q.Get("prefix"), q.Get("marker"), q.Get("end_marker"), q.Get("delimiter")
	limit := 10000
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			fail(w, 400, "limit must be a non-negative integer, got %q", s)
			return
		}
		limit = min(n, 10000)
	}
	names := make([]string, 0, len(c.Objects))
	for n := range c.Objects {
		names = append(names, n)
	}
	sort.Strings(names)
	type row struct {
		Name         string `json:"name,omitempty"`
		Subdir       string `json:"subdir,omitempty"`
		Hash         string `json:"hash,omitempty"`
		Bytes        int64  `json:"bytes"`
		ContentType  string `json:"content_type,omitempty"`
		LastModified string `json:"last_modified,omitempty"`
	}
	var rows []row
	seen := map[string]bool{}
	for _, n := range names {
		if len(rows) >= limit {
			break
		}
		if !strings.HasPrefix(n, prefix) || (marker != "" && n <= marker) || (endMarker != "" && n >= endMarker) {
			continue
		}
		if delim != "" {
			if i := strings.Index(n[len(prefix):], delim); i >= 0 {
				sub := n[:len(prefix)+i+len(delim)]
				if !seen[sub] {
					seen[sub] = true
					rows = append(rows, row{Subdir: sub})
				}
				continue
			}
		}
		o := c.Objects[n]
		rows = append(rows, row{Name: n, Hash: o.ETag, Bytes: o.Size, ContentType: o.ContentType,
			LastModified: o.LastModified.Format("2006-01-02T15:04:05.000000")})
	}
	if wantsJSON(r) {
		if rows == nil {
			rows = []row{}
		}
		writeJSON(w, 200, rows)
		return
	}
	var out []string
	for _, rw := range rows {
		out = append(out, rw.Name+rw.Subdir)
	}
	writeNames(w, out)
}

func (e *Emulator) objectOp(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	cname, oname := r.PathValue("container"), r.PathValue("object")
	if len(oname) > 1024 {
		fail(w, 400, "Object name is longer than 1024 characters.")
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
		fail(w, 413, "Your request is too large: objects are limited to %d bytes; use segments and a manifest.", e.cfg.MaxObjectSize)
		return
	}
	body := &countingBody{r: r.Body}
	rel, size, etag, err := e.writeBlob(fs.dataDir(), body, e.cfg.MaxObjectSize)
	e.stats.received(fs.region, body.n)
	switch {
	case errors.Is(err, errTooLarge):
		fail(w, 413, "Your request is too large: objects are limited to %d bytes; use segments and a manifest.", e.cfg.MaxObjectSize)
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

// errNoContainer says the container vanished while an object's bytes were written.
var errNoContainer = errors.New("container not found")

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

// resolved is an object ready to stream: its parts and the ETag clients see.
type resolved struct {
	obj   *object
	parts []filePart
	size  int64
	etag  string // quoted for manifests, as Swift does
}

// resolve turns an object into its byte parts, following DLO and SLO manifests; call with e.mu held.
func (fs *fileSpace) resolve(o *object) (*resolved, error) {
	res := &resolved{obj: o}
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
			res.parts = append(res.parts, filePart{rel: seg.File, size: seg.Size})
			res.size += seg.Size
			etags.WriteString(seg.ETag)
		}
		res.etag = quotedMD5(etags.String())
	case o.SLO != nil:
		var etags strings.Builder
		for _, s := range o.SLO {
			sc, so, _ := strings.Cut(strings.TrimPrefix(s.Path, "/"), "/")
			seg := fs.findObject(sc, so)
			if seg == nil || seg.ETag != s.ETag {
				return nil, fmt.Errorf("segment %s of manifest %s is missing or changed", s.Path, o.Name)
			}
			res.parts = append(res.parts, filePart{rel: seg.File, size: seg.Size})
			res.size += seg.Size
			etags.WriteString(seg.ETag)
		}
		res.etag = quotedMD5(etags.String())
	default:
		res.parts = []filePart{{rel: o.File, size: o.Size}}
		res.size, res.etag = o.Size, o.ETag
	}
	return res, nil
}

func quotedMD5(s string) string {
	sum := md5.Sum([]byte(s))
	return "\"" + hex.EncodeToString(sum[:]) + "\""
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
	e.mu.Lock()
	defer e.mu.Unlock()
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
	e.mu.Lock()
	defer e.mu.Unlock()
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

const (
	maxSLOSegments = 1000
	minSLOSegment  = 1 << 20
)

func (e *Emulator) putSLO(w http.ResponseWriter, r *http.Request, fs *fileSpace, cname, oname string) {
	var segs []sloSegment
	if !readJSON(w, r, &segs) {
		return
	}
	if len(segs) == 0 || len(segs) > maxSLOSegments {
		fail(w, 400, "A static large object manifest needs 1 to %d segments, got %d.", maxSLOSegments, len(segs))
		return
	}
	e.mu.Lock()
	var etags strings.Builder
	var problems []string
	for i := range segs {
		s := &segs[i]
		sc, so, _ := strings.Cut(strings.TrimPrefix(s.Path, "/"), "/")
		seg := fs.findObject(sc, so)
		switch {
		case seg == nil:
			problems = append(problems, fmt.Sprintf("%s: 404 Not Found", s.Path))
			continue
		case s.ETag != "" && !strings.EqualFold(strings.Trim(s.ETag, "\""), seg.ETag):
			problems = append(problems, fmt.Sprintf("%s: ETag mismatch", s.Path))
		case s.Size != 0 && s.Size != seg.Size:
			problems = append(problems, fmt.Sprintf("%s: Size mismatch", s.Path))
		case seg.Size < minSLOSegment && i < len(segs)-1:
			problems = append(problems, fmt.Sprintf("%s: too small; each segment but the last must be at least %d bytes", s.Path, minSLOSegment))
		}
		s.Path = "/" + sc + "/" + so
		s.ETag, s.Size = seg.ETag, seg.Size
		etags.WriteString(seg.ETag)
	}
	e.mu.Unlock()
	if len(problems) > 0 {
		fail(w, 400, "Errors in the manifest: %s", strings.Join(problems, "; "))
		return
	}
	o := &object{Name: oname, ETag: strings.Trim(quotedMD5(etags.String()), "\""), SLO: segs,
		Meta: objectMeta(r.Header), ContentType: contentType(r)}
	for _, s := range segs {
		o.Size += s.Size
	}
	if !e.storeObject(w, fs, cname, o) {
		return
	}
	w.Header().Set("ETag", quotedMD5(etags.String()))
	w.WriteHeader(201)
}

func (e *Emulator) bulkDelete(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	var deleted, notFound int
	errs := [][]string{}
	sc := bufio.NewScanner(io.LimitReader(r.Body, maxJSONBody))
	lines := 0
	e.mu.Lock()
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if lines++; lines > 10000 {
			errs = append(errs, []string{line, "413 Too many deletes in one request (max 10000)"})
			break
		}
		p, err := url.PathUnescape(strings.TrimPrefix(line, "/"))
		if err != nil {
			errs = append(errs, []string{line, "400 Bad Request"})
			continue
		}
		cname, oname, isObj := strings.Cut(p, "/")
		c := fs.containers()[cname]
		switch {
		case c == nil, isObj && c.Objects[oname] == nil:
			notFound++
		case isObj:
			e.removeFile(c.Objects[oname].File)
			delete(c.Objects, oname)
			deleted++
		case len(c.Objects) > 0:
			errs = append(errs, []string{line, "409 Conflict"})
		default:
			delete(fs.containers(), cname)
			deleted++
		}
	}
	e.commit()
	e.mu.Unlock()
	status := "200 OK"
	if len(errs) > 0 {
		status = "400 Bad Request"
	}
	writeJSON(w, 200, map[string]any{"Number Deleted": deleted, "Number Not Found": notFound,
		"Response Status": status, "Response Body": "", "Errors": errs})
}

// countingBody counts the bytes a request body delivered, whether or not the upload completed.
type countingBody struct {
	r io.Reader
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
