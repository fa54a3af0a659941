package emulator

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
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
			if !strings.HasPrefix(name, prefix) || (marker != "" && name <= marker) ||
				(endMarker != "" && name >= endMarker) {
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

// cleanName is what Swift takes in a path: valid UTF-8 and no NUL (it answers 412 otherwise).
func cleanName(n string) bool {
	return utf8.ValidString(n) && !strings.ContainsRune(n, 0)
}

func (e *Emulator) containerOp(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	name := r.PathValue("container")
	if !cleanName(name) {
		fail(w, 412, "Invalid UTF8 or contains NULL")
		return
	}
	if !validContainerName(name) {
		fail(w, 400, "Container name %q is invalid: 1 to 256 characters, no '/'.", name)
		return
	}
	w, unlock := e.lockReply(w)
	defer unlock()
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

// errNoContainer says the container vanished while an object's bytes were written.
var errNoContainer = errors.New("container not found")

const (
	maxSLOSegments = 1000
	minSLOSegment  = 1 << 20
)

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
