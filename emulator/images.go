package emulator

import (
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (e *Emulator) routeImages(mux *http.ServeMux, rname string) {
	h := func(f func(w http.ResponseWriter, r *http.Request, reg *region, rname string)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { f(w, r, e.st.Regions[rname], rname) }
	}
	mux.HandleFunc("GET /v2/images", h(e.listImages))
	mux.HandleFunc("POST /v2/images", func(w http.ResponseWriter, r *http.Request) {
		fail(w, 403, "Images are created by import tasks or server snapshots; POST /v2/images is not allowed.")
	})
	mux.HandleFunc("GET /v2/images/{id}", h(e.getImage))
	mux.HandleFunc("GET /v2/images/{id}/file", h(e.downloadImage))
	mux.HandleFunc("PATCH /v2/images/{id}", h(e.patchImage))
	mux.HandleFunc("DELETE /v2/images/{id}", h(e.deleteImage))
	mux.HandleFunc("PUT /v2/images/{id}/tags/{tag}", h(e.putTag))
	mux.HandleFunc("DELETE /v2/images/{id}/tags/{tag}", h(e.deleteTag))
	mux.HandleFunc("GET /v2/images/{id}/members", h(e.listMembers))
	mux.HandleFunc("POST /v2/images/{id}/members", h(e.addMember))
	mux.HandleFunc("GET /v2/images/{id}/members/{member}", h(e.getMember))
	mux.HandleFunc("PUT /v2/images/{id}/members/{member}", h(e.updateMember))
	mux.HandleFunc("DELETE /v2/images/{id}/members/{member}", h(e.deleteMember))
	mux.HandleFunc("POST /v2/tasks", h(e.createTask))
	mux.HandleFunc("GET /v2/tasks", h(e.listTasks))
	mux.HandleFunc("GET /v2/tasks/{id}", h(e.getTask))
	mux.HandleFunc("GET /v2/schemas/{name}", serveSchema)
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, 404, "The resource %s %s could not be found.", r.Method, r.URL.Path)
	})
}

func canSee(img *image, tenant string) bool {
	return img.Owner == tenant || img.Visibility == "public" || img.Members[tenant] != nil
}

// visibleImage finds an image the caller may see, answering 404 itself otherwise. Call with e.mu held.
func visibleImage(w http.ResponseWriter, reg *region, id, tenant string) *image {
	img := reg.Images[id]
	if img == nil || !canSee(img, tenant) {
		fail(w, 404, "No image found with ID %s", id)
		return nil
	}
	return img
}

// ownedImage is visibleImage plus the owner check: 403 for an image the caller sees but does not own.
func ownedImage(w http.ResponseWriter, reg *region, id, tenant string) *image {
	img := visibleImage(w, reg, id, tenant)
	if img != nil && img.Owner != tenant {
		fail(w, 403, "You are not permitted to modify image %s: it is owned by another account.", id)
		return nil
	}
	return img
}

const timeFormat = "2006-01-02T15:04:05Z"

func (img *image) view() map[string]any {
	m := map[string]any{}
	for k, v := range img.Props {
		m[k] = v
	}
	var checksum any
	if img.Checksum != "" {
		checksum = img.Checksum
	}
	m["id"], m["name"], m["status"], m["visibility"] = img.ID, img.Name, img.Status, img.Visibility
	m["protected"], m["tags"], m["checksum"], m["size"] = img.Protected, img.Tags, checksum, img.Size
	m["virtual_size"] = nil
	m["disk_format"], m["container_format"] = img.DiskFormat, img.ContainerFormat
	m["min_disk"], m["min_ram"], m["owner"] = img.MinDisk, img.MinRAM, img.Owner
	m["created_at"], m["updated_at"] = img.CreatedAt.Format(timeFormat), img.UpdatedAt.Format(timeFormat)
	m["self"], m["file"], m["schema"] = "/v2/images/"+img.ID, "/v2/images/"+img.ID+"/file", "/v2/schemas/image"
	return m
}

func (e *Emulator) getImage(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if img := visibleImage(w, reg, r.PathValue("id"), caller(r)); img != nil {
		writeJSON(w, 200, img.view())
	}
}

var sortKeys = map[string]bool{"name": true, "status": true, "container_format": true, "disk_format": true,
	"size": true, "id": true, "created_at": true, "updated_at": true}

// listParams are the query parameters with their own meaning; any other is a property filter.
var listParams = map[string]bool{"limit": true, "marker": true, "name": true, "visibility": true,
	"member_status": true, "owner": true, "tag": true, "status": true, "size_min": true, "size_max": true,
	"sort_key": true, "sort_dir": true}

func (e *Emulator) listImages(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	q := r.URL.Query()
	limit := 25
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			fail(w, 400, "limit must be a non-negative integer, got %q", s)
			return
		}
		limit = min(n, 1000)
	}
	sortKey, sortDir := q.Get("sort_key"), q.Get("sort_dir")
	if sortKey == "" {
		sortKey = "created_at"
	}
	if sortDir == "" {
		sortDir = "desc"
	}
	if !sortKeys[sortKey] {
		fail(w, 400, "sort_key %q is not one of name, status, container_format, disk_format, size, id, created_at, updated_at", sortKey)
		return
	}
	if sortDir != "asc" && sortDir != "desc" {
		fail(w, 400, "sort_dir must be asc or desc, got %q", sortDir)
		return
	}
	vis, memberStatus := q.Get("visibility"), q.Get("member_status")
	if vis != "" && vis != "public" && vis != "private" && vis != "shared" {
		fail(w, 400, "visibility must be public, private or shared, got %q", vis)
		return
	}
	if memberStatus == "" {
		memberStatus = "accepted"
	}
	if memberStatus != "accepted" && memberStatus != "pending" && memberStatus != "rejected" && memberStatus != "all" {
		fail(w, 400, "member_status must be accepted, pending, rejected or all, got %q", memberStatus)
		return
	}
	var sizeMin, sizeMax int64 = -1, -1
	for name, dst := range map[string]*int64{"size_min": &sizeMin, "size_max": &sizeMax} {
		if s := q.Get(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				fail(w, 400, "%s must be a non-negative integer, got %q", name, s)
				return
			}
			*dst = n
		}
	}
	tenant := caller(r)
	e.mu.Lock()
	var found []*image
	for _, img := range reg.Images {
		if !listed(img, tenant, vis, memberStatus) || !matches(img, q, sizeMin, sizeMax) {
			continue
		}
		found = append(found, img)
	}
	// Sorting reads the images' fields, which writers change under the lock: sort before
	// letting go of it.
	sortImages(found, sortKey, sortDir == "desc")
	views := map[string]map[string]any{}
	for _, img := range found {
		views[img.ID] = img.view()
	}
	e.mu.Unlock()
	start := 0
	if m := q.Get("marker"); m != "" {
		start = -1
		for i, img := range found {
			if img.ID == m {
				start = i + 1
			}
		}
		if start < 0 {
			fail(w, 400, "marker %s is not an image in this listing", m)
			return
		}
	}
	end := min(start+limit, len(found))
	page := []any{}
	for _, img := range found[start:end] {
		page = append(page, views[img.ID])
	}
	first := url.Values{}
	for k, v := range q {
		if k != "marker" {
			first[k] = v
		}
	}
	body := map[string]any{"images": page, "schema": "/v2/schemas/images", "first": "/v2/images?" + first.Encode()}
	if end < len(found) && end > start {
		next := url.Values{}
		for k, v := range first {
			next[k] = v
		}
		next.Set("marker", found[end-1].ID)
		body["next"] = "/v2/images?" + next.Encode()
	}
	writeJSON(w, 200, body)
}

// listed applies Glance's visibility rules for listings.
func listed(img *image, tenant, vis, memberStatus string) bool {
	shared := func() bool {
		m := img.Members[tenant]
		return m != nil && img.Owner != tenant && (memberStatus == "all" || m.Status == memberStatus)
	}
	switch vis {
	case "public":
		return img.Visibility == "public"
	case "private":
		return img.Owner == tenant && img.Visibility == "private"
	case "shared":
		return shared()
	}
	return img.Owner == tenant || img.Visibility == "public" || shared()
}

func matches(img *image, q url.Values, sizeMin, sizeMax int64) bool {
	if v := q.Get("name"); v != "" && img.Name != v {
		return false
	}
	if v := q.Get("owner"); v != "" && img.Owner != v {
		return false
	}
	if v := q.Get("status"); v != "" && img.Status != v {
		return false
	}
	if (sizeMin >= 0 && img.Size < sizeMin) || (sizeMax >= 0 && img.Size > sizeMax) {
		return false
	}
	for _, t := range q["tag"] {
		if !contains(img.Tags, t) {
			return false
		}
	}
	for k, vs := range q {
		if listParams[k] {
			continue
		}
		v, core := coreField(img, k)
		if !core {
			v = img.Props[k]
			if _, ok := img.Props[k]; !ok {
				return false
			}
		}
		if v != vs[0] {
			return false
		}
	}
	return true
}

// coreField gives a core attribute as the string a filter compares against.
func coreField(img *image, k string) (string, bool) {
	switch k {
	case "id":
		return img.ID, true
	case "disk_format":
		return img.DiskFormat, true
	case "container_format":
		return img.ContainerFormat, true
	case "checksum":
		return img.Checksum, true
	case "protected":
		return strconv.FormatBool(img.Protected), true
	case "min_disk":
		return strconv.Itoa(img.MinDisk), true
	case "min_ram":
		return strconv.Itoa(img.MinRAM), true
	}
	return "", false
}

func sortImages(imgs []*image, key string, desc bool) {
	less := func(a, b *image) int {
		switch key {
		case "name":
			return strings.Compare(a.Name, b.Name)
		case "status":
			return strings.Compare(a.Status, b.Status)
		case "container_format":
			return strings.Compare(a.ContainerFormat, b.ContainerFormat)
		case "disk_format":
			return strings.Compare(a.DiskFormat, b.DiskFormat)
		case "size":
			return cmpInt(a.Size, b.Size)
		case "updated_at":
			return a.UpdatedAt.Compare(b.UpdatedAt)
		case "created_at":
			return a.CreatedAt.Compare(b.CreatedAt)
		}
		return 0
	}
	sort.SliceStable(imgs, func(i, j int) bool {
		c := less(imgs[i], imgs[j])
		if c == 0 {
			c = strings.Compare(imgs[i].ID, imgs[j].ID)
		}
		if desc {
			return c > 0
		}
		return c < 0
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (e *Emulator) deleteImage(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img := ownedImage(w, reg, r.PathValue("id"), caller(r))
	if img == nil {
		return
	}
	if img.Protected {
		fail(w, 403, "Image %s is protected and cannot be deleted.", img.ID)
		return
	}
	delete(reg.Images, img.ID)
	e.removeFile(img.File)
	e.commit()
	w.WriteHeader(204)
}

const maxTags = 128

func (e *Emulator) putTag(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img := ownedImage(w, reg, r.PathValue("id"), caller(r))
	if img == nil {
		return
	}
	tag := r.PathValue("tag")
	if len(tag) > 255 {
		fail(w, 400, "tag is longer than 255 characters")
		return
	}
	if !contains(img.Tags, tag) {
		if len(img.Tags) >= maxTags {
			fail(w, 413, "Attempted to add a tag past the limit of %d tags.", maxTags)
			return
		}
		img.Tags = append(img.Tags, tag)
		img.UpdatedAt = now()
		e.commit()
	}
	w.WriteHeader(204)
}

func (e *Emulator) deleteTag(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	img := ownedImage(w, reg, r.PathValue("id"), caller(r))
	if img == nil {
		return
	}
	tag := r.PathValue("tag")
	for i, t := range img.Tags {
		if t == tag {
			img.Tags = append(img.Tags[:i:i], img.Tags[i+1:]...)
			img.UpdatedAt = now()
			e.commit()
			w.WriteHeader(204)
			return
		}
	}
	fail(w, 404, "Tag %s not found on image %s", tag, img.ID)
}

// downloadImage streams an image's bytes (GET /v2/images/{id}/file).
func (e *Emulator) downloadImage(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	e.mu.Lock()
	img := visibleImage(w, reg, r.PathValue("id"), caller(r))
	var src io.ReadSeeker
	var checksum string
	if img != nil {
		checksum = img.Checksum
		rs, err := e.imageReader(img)
		if err != nil {
			e.mu.Unlock()
			fail(w, 500, "read image data: %v", err)
			return
		}
		src = rs
	}
	e.mu.Unlock()
	if src == nil {
		return
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-MD5", checksum)
	http.ServeContent(w, r, "", time.Time{}, src)
}
