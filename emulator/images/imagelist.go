package images

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

var sortKeys = map[string]bool{"name": true, "status": true, "container_format": true, "disk_format": true,
	"size": true, "id": true, "created_at": true, "updated_at": true}

// listParams are the query parameters with their own meaning; any other is a property filter.
var listParams = map[string]bool{"limit": true, "marker": true, "name": true, "visibility": true,
	"member_status": true, "owner": true, "tag": true, "status": true, "size_min": true, "size_max": true,
	"sort_key": true, "sort_dir": true, "sort": true, "created_at": true, "updated_at": true}

func (s *Service) listImages(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	q := r.URL.Query()
	limit, err := pageLimit(q)
	if err != nil {
		core.Fail(w, 400, "%v", err)
		return
	}
	order, err := sortOrder(q)
	if err != nil {
		core.Fail(w, 400, "%v", err)
		return
	}
	vis, memberStatus := q.Get("visibility"), q.Get("member_status")
	if vis != "" && vis != "public" && vis != "private" && vis != "shared" {
		core.Fail(w, 400, "visibility must be public, private or shared, got %q", vis)
		return
	}
	if memberStatus == "" {
		memberStatus = "accepted"
	}
	if memberStatus != "accepted" && memberStatus != "pending" && memberStatus != "rejected" && memberStatus != "all" {
		core.Fail(w, 400, "member_status must be accepted, pending, rejected or all, got %q", memberStatus)
		return
	}
	var sizeMin, sizeMax int64 = -1, -1
	for name, dst := range map[string]*int64{"size_min": &sizeMin, "size_max": &sizeMax} {
		if s := q.Get(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				core.Fail(w, 400, "%s must be a non-negative integer, got %q", name, s)
				return
			}
			*dst = n
		}
	}
	when, err := parseTimeFilters(q)
	if err != nil {
		core.Fail(w, 400, "%v", err)
		return
	}
	tenant := core.Caller(r)
	s.store.Lock()
	var found []*Image
	for _, img := range reg.Images {
		if !listed(img, tenant, vis, memberStatus) || !matches(img, q, sizeMin, sizeMax) || !when.match(img) {
			continue
		}
		found = append(found, img)
	}
	// Sorting reads the images' fields, which writers change under the lock: sort before
	// letting go of it.
	sortImages(found, order)
	start, ok := afterMarker(found, q.Get("marker"))
	if !ok {
		s.store.Unlock()
		core.Fail(w, 400, "marker %s is not an image in this listing", q.Get("marker"))
		return
	}
	end := min(start+limit, len(found))
	// Only the page's views: building every match's made each page of a 100,000-image listing
	// cost the whole listing (bench row 6).
	page := make([]any, 0, end-start)
	for _, img := range found[start:end] {
		page = append(page, img.view())
	}
	s.store.Unlock()
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
	core.WriteJSON(w, 200, body)
}

// listed applies Glance's visibility rules for listings.
func listed(img *Image, tenant, vis, memberStatus string) bool {
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

func matches(img *Image, q url.Values, sizeMin, sizeMax int64) bool {
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
func coreField(img *Image, k string) (string, bool) {
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

// afterMarker is where the page after marker starts in found; false when marker is not in it.
func afterMarker(found []*Image, marker string) (int, bool) {
	if marker == "" {
		return 0, true
	}
	for i, img := range found {
		if img.ID == marker {
			return i + 1, true
		}
	}
	return 0, false
}

// sortKey is one key of a listing's order.
type sortKey struct {
	key  string
	desc bool
}

// sortOrder reads a listing's order as Glance v2 takes it: sort=key[:dir],... or the older
// sort_key and sort_dir (not both); created_at descending when neither is given.
func sortOrder(q url.Values) ([]sortKey, error) {
	if q.Has("sort") && (q.Has("sort_key") || q.Has("sort_dir")) {
		return nil, errors.New("the sort parameter cannot be combined with sort_key or sort_dir")
	}
	pairs := []string{q.Get("sort_key") + ":" + q.Get("sort_dir")}
	if q.Has("sort") {
		pairs = strings.Split(q.Get("sort"), ",")
	}
	var order []sortKey
	for _, p := range pairs {
		k, dir, _ := strings.Cut(strings.TrimSpace(p), ":")
		if k == "" && !q.Has("sort") {
			k = "created_at"
		}
		if !sortKeys[k] {
			return nil, fmt.Errorf(
				"sort key %q is not one of name, status, container_format, disk_format, size, id, created_at, updated_at",
				k)
		}
		if dir == "" {
			dir = "desc"
		}
		if dir != "asc" && dir != "desc" {
			return nil, fmt.Errorf("sort direction must be asc or desc, got %q", dir)
		}
		order = append(order, sortKey{key: k, desc: dir == "desc"})
	}
	return order, nil
}

func sortImages(imgs []*Image, order []sortKey) {
	sort.SliceStable(imgs, func(i, j int) bool {
		for _, o := range order {
			if c := compareBy(imgs[i], imgs[j], o.key); c != 0 {
				return c < 0 != o.desc
			}
		}
		return strings.Compare(imgs[i].ID, imgs[j].ID) < 0 != order[0].desc
	})
}

func compareBy(a, b *Image, key string) int {
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
	case "id":
		return strings.Compare(a.ID, b.ID)
	}
	return 0
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

// timeFilter is Glance's created_at / updated_at filter: "<op>:<ISO 8601 time>", op one of gt,
// gte, lt, lte, eq, neq (a bare time means eq).
type timeFilter struct {
	field string
	op    string
	at    time.Time
}

type timeFilters []timeFilter

func parseTimeFilters(q url.Values) (timeFilters, error) {
	var out timeFilters
	for _, field := range []string{"created_at", "updated_at"} {
		for _, v := range q[field] {
			op, at, found := strings.Cut(v, ":")
			if !found || !slices.Contains([]string{"gt", "gte", "lt", "lte", "eq", "neq"}, op) {
				op, at = "eq", v
			}
			t, err := time.Parse(time.RFC3339, at)
			if err != nil {
				return nil, fmt.Errorf("%s filter %q: want <op>:<time> with op gt, gte, lt, lte, eq or neq "+
					"and an ISO 8601 time such as 2026-11-28T12:00:00Z", field, v)
			}
			out = append(out, timeFilter{field: field, op: op, at: t})
		}
	}
	return out, nil
}

func (fs timeFilters) match(img *Image) bool {
	for _, f := range fs {
		t := img.CreatedAt
		if f.field == "updated_at" {
			t = img.UpdatedAt
		}
		t = t.Truncate(time.Second) // Glance stores seconds
		ok := map[string]bool{"gt": t.After(f.at), "gte": !t.Before(f.at), "lt": t.Before(f.at),
			"lte": !t.After(f.at), "eq": t.Equal(f.at), "neq": !t.Equal(f.at)}[f.op]
		if !ok {
			return false
		}
	}
	return true
}

// pageLimit is a Glance listing's page size: limit, 25 by default, at most 1,000.
func pageLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 25, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("limit must be a non-negative integer, got %q", v)
	}
	return min(n, 1000), nil
}
