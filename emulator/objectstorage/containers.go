package objectstorage

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

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// fileSpace is one account's Cloud Files in one region, for the length of a request.
type fileSpace struct {
	s      *Service
	region string
	tenant string
}

// containers returns the account's containers in the region; call with the store locked.
func (fs *fileSpace) containers() map[string]*Container {
	files := fs.s.files[fs.region]
	if files[fs.tenant] == nil {
		files[fs.tenant] = map[string]*Container{}
	}
	return files[fs.tenant]
}

func (fs *fileSpace) dataDir() string { return path.Join("objects", fs.region, fs.tenant) }

func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

func (s *Service) accountOp(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	_, bulk := r.URL.Query()["bulk-delete"]
	switch {
	case bulk && (r.Method == http.MethodPost || r.Method == http.MethodDelete):
		s.bulkDelete(w, r, fs)
	case r.Method == http.MethodPost:
		s.setAccountMeta(fs, r.Header)
		w.WriteHeader(204)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		s.store.Lock()
		var names []string
		var objects, bytes int64
		type row struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
			Bytes int64  `json:"bytes"`
			// LastModified is when the container was made (Swift 2.30 lists its put time).
			LastModified string `json:"last_modified"`
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
			rw := row{Name: name, Count: len(c.Objects), LastModified: c.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000")}
			for _, o := range c.Objects {
				rw.Bytes += o.storedBytes()
			}
			rows[name] = rw
			objects += int64(rw.Count)
			bytes += rw.Bytes
		}
		for k, v := range fs.accountMeta() {
			w.Header().Set(k, v)
		}
		s.store.Unlock()
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
			core.WriteJSON(w, 200, out)
			return
		}
		writeNames(w, names)
	default:
		core.Fail(w, 405, "%s is not allowed on an account", r.Method)
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

// ValidContainerName is Swift's rule: 1 to 256 characters, no slash.
func ValidContainerName(n string) bool {
	return n != "" && len(n) <= 256 && !strings.Contains(n, "/")
}

// cleanName is what Swift takes in a path: valid UTF-8 and no NUL (it answers 412 otherwise).
func cleanName(n string) bool {
	return utf8.ValidString(n) && !strings.ContainsRune(n, 0)
}

func (s *Service) containerOp(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	name := r.PathValue("container")
	if !cleanName(name) {
		core.Fail(w, 412, "Invalid UTF8 or contains NULL")
		return
	}
	if !ValidContainerName(name) {
		core.Fail(w, 400, "Container name %q is invalid: 1 to 256 characters, no '/'.", name)
		return
	}
	w, unlock := s.store.LockReply(w)
	defer unlock()
	cs := fs.containers()
	c := cs[name]
	switch r.Method {
	case http.MethodPut:
		if c != nil {
			w.WriteHeader(202)
			return
		}
		cs[name] = &Container{Name: name, CreatedAt: core.Now(), Objects: map[string]*Object{}}
		s.store.Commit()
		w.WriteHeader(201)
	case http.MethodPost:
		if c == nil {
			core.Fail(w, 404, "Container %s not found.", name)
			return
		}
		w.WriteHeader(204)
	case http.MethodHead, http.MethodGet:
		if c == nil {
			core.Fail(w, 404, "Container %s not found.", name)
			return
		}
		var bytes int64
		for _, o := range c.Objects {
			bytes += o.storedBytes()
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
			core.Fail(w, 404, "Container %s not found.", name)
			return
		}
		if len(c.Objects) > 0 {
			core.Fail(w, 409, "There was a conflict when trying to complete your request: container %s is not empty.", name)
			return
		}
		delete(cs, name)
		s.store.Commit()
		w.WriteHeader(204)
	default:
		core.Fail(w, 405, "%s is not allowed on a container", r.Method)
	}
}

func listObjects(w http.ResponseWriter, r *http.Request, c *Container) {
	q := r.URL.Query()
	prefix, marker, endMarker, delim := q.Get("prefix"), q.Get("marker"), q.Get("end_marker"), q.Get("delimiter")
	limit := 10000
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			core.Fail(w, 400, "limit must be a non-negative integer, got %q", s)
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
		SLOETag      string `json:"slo_etag,omitempty"`
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
		rw := row{Name: n, Hash: o.ETag, Bytes: o.Size, ContentType: o.ContentType, LastModified: listingTime(o)}
		if o.SLO != nil { // Swift lists an SLO's manifest hash, and its own ETag beside it
			rw.Hash, rw.SLOETag = o.manifestETag(), `"`+o.ETag+`"`
		}
		rows = append(rows, rw)
	}
	if wantsJSON(r) {
		if rows == nil {
			rows = []row{}
		}
		core.WriteJSON(w, 200, rows)
		return
	}
	var out []string
	for _, rw := range rows {
		out = append(out, rw.Name+rw.Subdir)
	}
	writeNames(w, out)
}

// listingTime is an object's last_modified as Swift lists it.
func listingTime(o *Object) string { return o.LastModified.Format("2006-01-02T15:04:05.000000") }

// ErrNoContainer says the container vanished while an object's bytes were written.
var ErrNoContainer = errors.New("container not found")

// Static manifests' limits. Rackspace states none for these (it recommends segments of 100 MB
// and more, and says a container slows past about a million objects), so they are Swift 2.30's
// defaults: max_manifest_segments 1000 and min_segment_size 1 byte. Segments under 1 MiB are
// taken but served slowly (see Throttle), as Swift does.
const (
	maxSLOSegments = 1000
	minSLOSegment  = 1
)

func (s *Service) bulkDelete(w http.ResponseWriter, r *http.Request, fs *fileSpace) {
	var deleted, notFound int
	errs := [][]string{}
	sc := bufio.NewScanner(io.LimitReader(r.Body, core.MaxJSONBody))
	lines := 0
	s.store.Lock()
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
			s.store.RemoveFile(c.Objects[oname].File)
			delete(c.Objects, oname)
			deleted++
		case len(c.Objects) > 0:
			errs = append(errs, []string{line, "409 Conflict"})
		default:
			delete(fs.containers(), cname)
			deleted++
		}
	}
	s.store.Commit()
	s.store.Unlock()
	status := "200 OK"
	if len(errs) > 0 {
		status = "400 Bad Request"
	}
	core.WriteJSON(w, 200, map[string]any{"Number Deleted": deleted, "Number Not Found": notFound,
		"Response Status": status, "Response Body": "", "Errors": errs})
}
