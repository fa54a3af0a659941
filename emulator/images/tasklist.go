package images

import (
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// listTasks is Glance's task listing: the caller's tasks, filtered by type and status, sorted
// by sort_key (created_at, updated_at or id; created_at by default) in sort_dir (desc by default),
// a page of limit (25 by default, at most 1,000) after marker, with a next link while more
// remain. Only the page is built: an account that has run twenty thousand tasks asks for its
// newest hundred, as imageflow does, and must not be handed them all (bench row 13 found the
// whole list returned on every call, growing with the run).
func (s *Service) listTasks(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	q := r.URL.Query()
	limit, err := pageLimit(q)
	if err != nil {
		core.Fail(w, 400, "%v", err)
		return
	}
	key, dir := q.Get("sort_key"), q.Get("sort_dir")
	if key == "" {
		key = "created_at"
	}
	if key != "created_at" && key != "updated_at" && key != "id" {
		core.Fail(w, 400, "sort_key must be created_at, updated_at or id, got %q", key)
		return
	}
	if dir != "" && dir != "asc" && dir != "desc" {
		core.Fail(w, 400, "sort_dir must be asc or desc, got %q", dir)
		return
	}
	tenant := core.Caller(r)
	s.store.Lock()
	var ts []*Task
	for _, t := range reg.Tasks {
		if t.Owner == tenant && (q.Get("type") == "" || q.Get("type") == t.Type) &&
			(q.Get("status") == "" || q.Get("status") == t.Status) {
			ts = append(ts, t)
		}
	}
	sortTasks(ts, key, dir != "asc")
	start := 0
	if m := q.Get("marker"); m != "" {
		start = -1
		for i, t := range ts {
			if t.ID == m {
				start = i + 1
				break
			}
		}
		if start < 0 {
			s.store.Unlock()
			core.Fail(w, 400, "marker %s is not a task in this listing", m)
			return
		}
	}
	end := min(start+limit, len(ts))
	page := make([]any, 0, end-start)
	for _, t := range ts[start:end] {
		page = append(page, t.view(false))
	}
	s.store.Unlock()
	first := url.Values{}
	for k, v := range q {
		if k != "marker" {
			first[k] = v
		}
	}
	body := map[string]any{"tasks": page, "schema": "/v2/schemas/tasks", "first": "/v2/tasks?" + first.Encode()}
	if end < len(ts) && end > start {
		first.Set("marker", ts[end-1].ID)
		body["next"] = "/v2/tasks?" + first.Encode()
	}
	core.WriteJSON(w, 200, body)
}

// sortTasks orders tasks by key, ties by id, newest (or highest) first when desc.
func sortTasks(ts []*Task, key string, desc bool) {
	at := func(t *Task) time.Time {
		if key == "updated_at" {
			return t.UpdatedAt
		}
		return t.CreatedAt
	}
	sort.Slice(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		less := a.ID < b.ID
		if key != "id" && !at(a).Equal(at(b)) {
			less = at(a).Before(at(b))
		}
		if desc {
			return !less
		}
		return less
	})
}
