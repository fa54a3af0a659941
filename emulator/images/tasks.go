package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
	"github.com/imageflow/imageflow/emulator/objectstorage"
)

type exportInput struct {
	ImageUUID string `json:"image_uuid"`
	Container string `json:"receiving_swift_container"`
}

type importInput struct {
	ImportFrom       string            `json:"import_from"`
	ImportFromFormat string            `json:"import_from_format"`
	ImageProperties  map[string]string `json:"image_properties"`
}

func (t *Task) view(full bool) map[string]any {
	m := map[string]any{
		"id": t.ID, "type": t.Type, "status": t.Status, "owner": t.Owner,
		"created_at": t.CreatedAt.Format(core.TimeFormat), "updated_at": t.UpdatedAt.Format(core.TimeFormat),
		"expires_at": nil, "self": "/v2/tasks/" + t.ID, "schema": "/v2/schemas/task",
	}
	if t.ExpiresAt != nil {
		m["expires_at"] = t.ExpiresAt.Format(core.TimeFormat)
	}
	if full {
		m["input"] = t.Input
		m["result"] = nil
		if t.Result != nil {
			m["result"] = t.Result
		}
		m["message"] = t.Message
	}
	return m
}

func (s *Service) createTask(w http.ResponseWriter, r *http.Request, reg *Region, rname string) {
	var body struct {
		Type  string          `json:"type"`
		Input json.RawMessage `json:"input"`
	}
	if !core.ReadJSON(w, r, &body) {
		return
	}
	if err := validateTaskInput(body.Type, body.Input); err != nil {
		core.Fail(w, 400, "%v", err)
		return
	}
	t := core.Now()
	tk := &Task{ID: core.NewID(), Type: body.Type, Status: "pending", Input: body.Input, Message: "None",
		Owner: core.Caller(r), CreatedAt: t, UpdatedAt: t}
	s.store.Lock()
	reg.Tasks[tk.ID] = tk
	s.store.Commit()
	view := tk.view(true)
	s.store.Unlock()
	s.runTask(rname, tk.ID)
	core.WriteJSON(w, 201, view)
}

func validateTaskInput(typ string, raw json.RawMessage) error {
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("task input must be a JSON object")
	}
	switch typ {
	case "export":
		var in exportInput
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("export input: %v", err)
		}
		if in.ImageUUID == "" || in.Container == "" {
			return errors.New("export input needs image_uuid and receiving_swift_container")
		}
		if !objectstorage.ValidContainerName(in.Container) {
			return fmt.Errorf("receiving_swift_container %q is not a valid container name", in.Container)
		}
	case "import":
		var in importInput
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("import input: %v (image_properties values must be strings)", err)
		}
		c, o, ok := strings.Cut(in.ImportFrom, "/")
		if !ok || c == "" || o == "" {
			return errors.New("import input needs import_from as \"<container>/<object>\"")
		}
		if in.ImportFromFormat != "" && !strings.EqualFold(in.ImportFromFormat, "vhd") {
			return fmt.Errorf("import_from_format %q is not supported: only vhd", in.ImportFromFormat)
		}
		for k := range in.ImageProperties {
			if k != "name" {
				return fmt.Errorf("image_properties may only hold name, not %q", k)
			}
		}
	case "":
		return errors.New("task needs a type: export or import")
	default:
		return fmt.Errorf("task type %q is not export or import", typ)
	}
	return nil
}

func (s *Service) getTask(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	w, unlock := s.store.LockReply(w)
	defer unlock()
	t := reg.Tasks[r.PathValue("id")]
	if t == nil || t.Owner != core.Caller(r) {
		core.Fail(w, 404, "Task with the identifier %s not found", r.PathValue("id"))
		return
	}
	if (t.Status == "success" || t.Status == "failure") && t.SeenEndedAt.IsZero() {
		t.SeenEndedAt = time.Now()
	}
	core.WriteJSON(w, 200, t.view(true))
}

// TaskEnds is when task id in region ended and when a GET of it first said so (zero: not yet).
func (s *Service) TaskEnds(region, id string) (ended, seen time.Time) {
	s.store.Lock()
	defer s.store.Unlock()
	if reg := s.regions[region]; reg != nil && reg.Tasks[id] != nil {
		return reg.Tasks[id].EndedAt, reg.Tasks[id].SeenEndedAt
	}
	return time.Time{}, time.Time{}
}

// ResumeTasks restarts the tasks a previous run left unfinished.
func (s *Service) ResumeTasks() {
	for rname, reg := range s.regions {
		for id, t := range reg.Tasks {
			if t.Status == "pending" || t.Status == "processing" {
				s.runTask(rname, id)
			}
		}
	}
}

// runTask moves a task through pending and processing, then runs it, in the background.
func (s *Service) runTask(rname, id string) {
	s.tasks.Add(1)
	go func() {
		defer s.tasks.Done()
		pending := s.cfg.TaskDuration / 4
		if !s.store.Sleep(pending) {
			return
		}
		s.setTask(rname, id, func(t *Task) { t.Status = "processing" })
		if !s.store.Sleep(s.cfg.TaskDuration - pending + s.processingTime(rname, id)) {
			return
		}
		s.store.Lock()
		t := *s.regions[rname].Tasks[id]
		s.store.Unlock()
		var result map[string]string
		var err error
		if t.Type == "export" {
			result, err = s.runExport(rname, &t)
		} else {
			result, err = s.runImport(rname, &t)
		}
		if errors.Is(err, errClosing) {
			return
		}
		s.setTask(rname, id, func(t *Task) {
			end := core.Now()
			exp := end.Add(48 * time.Hour)
			t.ExpiresAt, t.EndedAt = &exp, time.Now()
			if err != nil {
				t.Status, t.Message = "failure", err.Error()
				return
			}
			t.Status, t.Result = "success", result
		})
	}()
}

var errClosing = errors.New("emulator closing")

// processingTime is the size-dependent part of a task's life: the image's size for an export,
// the object's for an import, at TaskBytesPerSecond.
func (s *Service) processingTime(rname, id string) time.Duration {
	if s.cfg.TaskBytesPerSecond <= 0 {
		return 0
	}
	s.store.Lock()
	t := *s.regions[rname].Tasks[id]
	var size int64
	if t.Type == "export" {
		var in exportInput
		_ = json.Unmarshal(t.Input, &in)
		if img := s.regions[rname].Images[in.ImageUUID]; img != nil {
			size = img.Size
		}
	}
	s.store.Unlock()
	if t.Type == "import" {
		var in importInput
		_ = json.Unmarshal(t.Input, &in)
		if c, o, ok := strings.Cut(in.ImportFrom, "/"); ok {
			if src, n, found, err := s.objects.Open(rname, t.Owner, c, o); found && err == nil {
				_ = src.Close()
				size = n
			}
		}
	}
	return time.Duration(float64(size) / float64(s.cfg.TaskBytesPerSecond) * float64(time.Second))
}

func (s *Service) setTask(rname, id string, f func(*Task)) {
	s.store.Lock()
	defer s.store.Unlock()
	t := s.regions[rname].Tasks[id]
	f(t)
	t.UpdatedAt = core.Now()
	s.store.Commit()
}
