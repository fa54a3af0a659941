package images

import (
	"testing"
	"time"
)

// TestSortTasksNewestFirst: created_at descending by default, ties by id; ascending on asking.
func TestSortTasksNewestFirst(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ts := []*Task{{ID: "b", CreatedAt: t0}, {ID: "c", CreatedAt: t0.Add(time.Second)}, {ID: "a", CreatedAt: t0}}
	sortTasks(ts, "created_at", true)
	if ts[0].ID != "c" || ts[1].ID != "b" || ts[2].ID != "a" {
		t.Fatalf("desc: %s %s %s", ts[0].ID, ts[1].ID, ts[2].ID)
	}
	sortTasks(ts, "created_at", false)
	if ts[0].ID != "a" || ts[1].ID != "b" || ts[2].ID != "c" {
		t.Fatalf("asc: %s %s %s", ts[0].ID, ts[1].ID, ts[2].ID)
	}
}
