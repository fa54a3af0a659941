package cloud

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/tasks"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// Task is an export or import task.
type Task struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Status    string            `json:"status"` // pending, processing, success, failure
	Message   string            `json:"message,omitempty"`
	Result    map[string]string `json:"result,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// Done reports whether the task has finished, either way.
func (t Task) Done() bool { return t.Status == "success" || t.Status == "failure" }

func fromTask(t *tasks.Task) Task {
	res := map[string]string{}
	for k, v := range t.Result {
		res[k] = fmt.Sprint(v)
	}
	msg := t.Message
	if msg == "None" {
		msg = ""
	}
	return Task{
		ID:        t.ID,
		Type:      t.Type,
		Status:    t.Status,
		Message:   msg,
		Result:    res,
		CreatedAt: t.CreatedAt,
		UpdatedAt: t.UpdatedAt,
	}
}

// Export starts exporting an image to a container in the same region.
func (c *Client) Export(ctx context.Context, region, imageID, container string) (Task, error) {
	return c.createTask(ctx, region, fmt.Sprintf("export image %s in %s to %s", imageID, region, container), "export",
		map[string]any{"image_uuid": imageID, "receiving_swift_container": container})
}

// Import starts importing "<container>/<object>" (a VHD) as a new image named name.
func (c *Client) Import(ctx context.Context, region, container, object, name string) (Task, error) {
	return c.createTask(ctx, region, fmt.Sprintf("import %s/%s in %s", container, object, region), "import",
		map[string]any{"import_from": container + "/" + object, "import_from_format": "vhd",
			"image_properties": map[string]any{"name": name}})
}

func (c *Client) createTask(ctx context.Context, region, op, typ string, input map[string]any) (Task, error) {
	sc, err := c.Images(region)
	if err != nil {
		return Task{}, err
	}
	t, err := tasks.Create(ctx, sc, tasks.CreateOpts{Type: typ, Input: input}).Extract()
	if err != nil {
		return Task{}, classify(op, err)
	}
	return fromTask(t), nil
}

// GetTask reads a task the account created.
func (c *Client) GetTask(ctx context.Context, region, id string) (Task, error) {
	sc, err := c.Images(region)
	if err != nil {
		return Task{}, err
	}
	t, err := tasks.Get(ctx, sc, id).Extract()
	if err != nil {
		return Task{}, classify(fmt.Sprintf("get task %s in %s", id, region), err)
	}
	return fromTask(t), nil
}

// ExportLocation splits a finished export's result into container and object.
func (t Task) ExportLocation() (container, object string, ok bool) {
	return strings.Cut(t.Result["export_location"], "/")
}

// TaskFilter chooses tasks in FindTask.
type TaskFilter struct {
	// Type is export or import.
	Type string
	// Input holds values the task's input must carry (e.g. image_uuid, import_from).
	Input map[string]string
	// Since leaves out tasks created before it (zero: no limit).
	Since time.Time
	// NotFailed leaves out failed tasks.
	NotFailed bool
	// Except leaves out these tasks (an import whose image failed its check).
	Except []string
}

// FindTask returns the newest task matching the filter among the account's 100 most recent in
// the region. A retried export or import uses it to find the task an
// earlier attempt created (its answer lost with a crashed worker) instead of starting another.
func (c *Client) FindTask(ctx context.Context, region string, f TaskFilter) (Task, bool, error) {
	op := fmt.Sprintf("look for the %s task of %v in %s", f.Type, f.Input, region)
	summaries, err := c.ListTasks(ctx, region)
	if err != nil {
		return Task{}, false, classify(op, err)
	}
	sc, err := c.Images(region)
	if err != nil {
		return Task{}, false, err
	}
	for _, s := range summaries {
		if s.Type != f.Type || s.CreatedAt.Before(f.Since) || (f.NotFailed && s.Status == "failure") ||
			slices.Contains(f.Except, s.ID) {
			continue
		}
		full, err := tasks.Get(ctx, sc, s.ID).Extract()
		if err != nil {
			return Task{}, false, classify(op, err)
		}
		if inputMatches(full.Input, f.Input) {
			return fromTask(full), true, nil
		}
	}
	return Task{}, false, nil
}

func inputMatches(input map[string]any, want map[string]string) bool {
	for k, v := range want {
		if fmt.Sprint(input[k]) != v {
			return false
		}
	}
	return true
}

// ListTasks lists the account's 100 most recent tasks in the region, newest first, without
// their input and result (the API leaves them out of listings).
func (c *Client) ListTasks(ctx context.Context, region string) ([]Task, error) {
	sc, err := c.Images(region)
	if err != nil {
		return nil, err
	}
	var out []Task
	err = tasks.List(sc, tasks.ListOpts{Limit: 100, SortKey: "created_at", SortDir: "desc"}).EachPage(ctx,
		func(_ context.Context, page pagination.Page) (bool, error) {
			ts, err := tasks.ExtractTasks(page)
			for i := range ts {
				out = append(out, fromTask(&ts[i]))
			}
			return false, err // the first page is enough
		})
	if err != nil {
		return nil, classify("list tasks in "+region, err)
	}
	return out, nil
}

// HasTasks reports whether region runs Rackspace-style import and export tasks: a tasks
// listing that answers. Most OpenStack clouds run Swift beside Glance without them (the tasks API
// is off, or for administrators only), so an object store alone says nothing. The answer is
// kept for the client's life.
func (c *Client) HasTasks(ctx context.Context, region string) (bool, error) {
	c.mu.Lock()
	known, ok := c.tasks[region]
	c.mu.Unlock()
	if ok {
		return known, nil
	}
	sc, err := c.Images(region)
	if err != nil {
		return false, err
	}
	_, err = sc.Get(ctx, sc.ServiceURL("tasks")+"?limit=1", nil, &gophercloud.RequestOpts{OkCodes: []int{200}})
	err = classify("look for import and export tasks in "+region, err)
	switch KindOf(err) {
	case "":
		if err != nil {
			return false, err
		}
	case NotFound, Forbidden, Invalid, Unauthorized:
		// 404 (no tasks API), 403 (administrators only), 405: no tasks for this account.
	default:
		return false, err
	}
	has := err == nil
	c.mu.Lock()
	c.tasks[region] = has
	c.mu.Unlock()
	return has, nil
}
