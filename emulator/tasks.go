package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
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

func (t *task) view(full bool) map[string]any {
	m := map[string]any{
		"id": t.ID, "type": t.Type, "status": t.Status, "owner": t.Owner,
		"created_at": t.CreatedAt.Format(timeFormat), "updated_at": t.UpdatedAt.Format(timeFormat),
		"expires_at": nil, "self": "/v2/tasks/" + t.ID, "schema": "/v2/schemas/task",
	}
	if t.ExpiresAt != nil {
		m["expires_at"] = t.ExpiresAt.Format(timeFormat)
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

func (e *Emulator) createTask(w http.ResponseWriter, r *http.Request, reg *region, rname string) {
	var body struct {
		Type  string          `json:"type"`
		Input json.RawMessage `json:"input"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if err := validateTaskInput(body.Type, body.Input); err != nil {
		fail(w, 400, "%v", err)
		return
	}
	t := now()
	tk := &task{ID: newID(), Type: body.Type, Status: "pending", Input: body.Input, Message: "None",
		Owner: caller(r), CreatedAt: t, UpdatedAt: t}
	e.mu.Lock()
	reg.Tasks[tk.ID] = tk
	e.commit()
	view := tk.view(true)
	e.mu.Unlock()
	e.runTask(rname, tk.ID)
	writeJSON(w, 201, view)
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
		if !validContainerName(in.Container) {
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

func (e *Emulator) listTasks(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	tenant := caller(r)
	q := r.URL.Query()
	e.mu.Lock()
	var ts []*task
	for _, t := range reg.Tasks {
		if t.Owner == tenant && (q.Get("type") == "" || q.Get("type") == t.Type) &&
			(q.Get("status") == "" || q.Get("status") == t.Status) {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool {
		if !ts[i].CreatedAt.Equal(ts[j].CreatedAt) {
			return ts[i].CreatedAt.After(ts[j].CreatedAt)
		}
		return ts[i].ID > ts[j].ID
	})
	out := []any{}
	for _, t := range ts {
		out = append(out, t.view(false))
	}
	e.mu.Unlock()
	writeJSON(w, 200, map[string]any{"tasks": out, "schema": "/v2/schemas/tasks", "first": "/v2/tasks"})
}

func (e *Emulator) getTask(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	w, unlock := e.lockReply(w)
	defer unlock()
	t := reg.Tasks[r.PathValue("id")]
	if t == nil || t.Owner != caller(r) {
		fail(w, 404, "Task with the identifier %s not found", r.PathValue("id"))
		return
	}
	writeJSON(w, 200, t.view(true))
}

// resumeTasks restarts the tasks a previous run left unfinished.
func (e *Emulator) resumeTasks() {
	for rname, reg := range e.st.Regions {
		for id, t := range reg.Tasks {
			if t.Status == "pending" || t.Status == "processing" {
				e.runTask(rname, id)
			}
		}
	}
}

// runTask moves a task through pending and processing, then runs it, in the background.
func (e *Emulator) runTask(rname, id string) {
	e.tasksWG.Add(1)
	go func() {
		defer e.tasksWG.Done()
		pending := e.cfg.TaskDuration / 4
		if !e.sleep(pending) {
			return
		}
		e.setTask(rname, id, func(t *task) { t.Status = "processing" })
		if !e.sleep(e.cfg.TaskDuration - pending + e.processingTime(rname, id)) {
			return
		}
		e.mu.Lock()
		t := *e.st.Regions[rname].Tasks[id]
		e.mu.Unlock()
		var result map[string]string
		var err error
		if t.Type == "export" {
			result, err = e.runExport(rname, &t)
		} else {
			result, err = e.runImport(rname, &t)
		}
		if errors.Is(err, errClosing) {
			return
		}
		e.setTask(rname, id, func(t *task) {
			end := now()
			exp := end.Add(48 * time.Hour)
			t.ExpiresAt = &exp
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
func (e *Emulator) processingTime(rname, id string) time.Duration {
	if e.cfg.TaskBytesPerSecond <= 0 {
		return 0
	}
	e.mu.Lock()
	t := *e.st.Regions[rname].Tasks[id]
	var size int64
	if t.Type == "export" {
		var in exportInput
		_ = json.Unmarshal(t.Input, &in)
		if img := e.st.Regions[rname].Images[in.ImageUUID]; img != nil {
			size = img.Size
		}
	}
	e.mu.Unlock()
	if t.Type == "import" {
		var in importInput
		_ = json.Unmarshal(t.Input, &in)
		fs := &fileSpace{e: e, region: rname, tenant: t.Owner}
		if c, o, ok := strings.Cut(in.ImportFrom, "/"); ok {
			if _, res, err := fs.open(c, o); err == nil && res != nil {
				size = res.size
			}
		}
	}
	return time.Duration(float64(size) / float64(e.cfg.TaskBytesPerSecond) * float64(time.Second))
}

func (e *Emulator) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-e.closing:
		return false
	}
}

func (e *Emulator) setTask(rname, id string, f func(*task)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.st.Regions[rname].Tasks[id]
	f(t)
	t.UpdatedAt = now()
	e.commit()
}

func (e *Emulator) runExport(rname string, t *task) (map[string]string, error) {
	var in exportInput
	_ = json.Unmarshal(t.Input, &in)
	fs := &fileSpace{e: e, region: rname, tenant: t.Owner}
	objName := in.ImageUUID + ".vhd"
	e.mu.Lock()
	img := e.st.Regions[rname].Images[in.ImageUUID]
	err := exportAllowed(img, t.Owner, in.ImageUUID)
	if err == nil {
		c := fs.containers()[in.Container]
		switch {
		case c == nil:
			err = fmt.Errorf(
				"Swift container '%s' was not found in %s; create it before exporting",
				in.Container,
				rname,
			)
		case c.Objects[objName] != nil:
			err = fmt.Errorf("Swift already has an object with id '%s' in container '%s'", objName, in.Container)
		}
	}
	var src io.ReadSeeker
	var imgCopy image
	if err == nil {
		imgCopy = *img
		src, err = e.imageReader(img)
	}
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	if msg, bad := e.faults.taskFailure(rname, "export", imgCopy.ID, imgCopy.Name); bad {
		return nil, errors.New(msg)
	}
	for i, off := 1, int64(0); off < imgCopy.Size; i++ {
		select {
		case <-e.closing:
			return nil, errClosing
		default:
		}
		n := min(e.cfg.ExportSegmentSize, imgCopy.Size-off)
		rel, size, etag, err := e.writeBlob(fs.dataDir(), io.LimitReader(src, n), n)
		if err != nil {
			return nil, fmt.Errorf("write export segment %d: %v", i, err)
		}
		seg := &object{Name: fmt.Sprintf("%s-%05d", objName, i), Size: size, ETag: etag, File: rel,
			ContentType: "application/octet-stream"}
		if err := e.storeTaskObject(fs, in.Container, seg); err != nil {
			return nil, err
		}
		off += n
	}
	manifest := &object{Name: objName, ETag: emptyMD5, ContentType: "application/octet-stream",
		Manifest: in.Container + "/" + objName + "-"}
	if err := e.storeTaskObject(fs, in.Container, manifest); err != nil {
		return nil, err
	}
	return map[string]string{"export_location": in.Container + "/" + objName}, nil
}

const emptyMD5 = "d41d8cd98f00b204e9800998ecf8427e"

func exportAllowed(img *image, owner, id string) error {
	switch {
	case img == nil || !canSee(img, owner):
		return fmt.Errorf("Requested image for export was not found: %s", id)
	case img.Visibility == "public" || img.Props["image_type"] == "base":
		return fmt.Errorf("Base images cannot be exported: %s", id)
	case img.Owner != owner:
		return fmt.Errorf("Images shared with you cannot be exported; ask the owner to export it: %s", id)
	case img.Props["com.rackspace__1__options"] != "" && img.Props["com.rackspace__1__options"] != "0":
		return fmt.Errorf(
			"Image %s cannot be exported: it carries licensed software (com.rackspace__1__options=%s)",
			id,
			img.Props["com.rackspace__1__options"],
		)
	case img.Status != "active":
		return fmt.Errorf("Image %s cannot be exported while its status is %s", id, img.Status)
	}
	return nil
}

func (e *Emulator) storeTaskObject(fs *fileSpace, cname string, o *object) error {
	if err := e.store(fs, cname, o); err != nil {
		return fmt.Errorf("Swift container '%s' was deleted during the export", cname)
	}
	return nil
}

const importNotFound = "Error: Image not found for import. Possible invalid location"

func (e *Emulator) runImport(rname string, t *task) (map[string]string, error) {
	var in importInput
	_ = json.Unmarshal(t.Input, &in)
	fs := &fileSpace{e: e, region: rname, tenant: t.Owner}
	cname, oname, _ := strings.Cut(in.ImportFrom, "/")
	o, res, err := fs.open(cname, oname)
	if o == nil || err != nil {
		return nil, errors.New(importNotFound)
	}
	name := in.ImageProperties["name"]
	if name == "" {
		name = path.Base(oname)
	}
	if msg, bad := e.faults.taskFailure(rname, "import", "", name); bad {
		return nil, errors.New(msg)
	}
	if res.size > e.cfg.MaxImportSize {
		return nil, &ImportError{
			609,
			fmt.Sprintf("physical size %d is larger than the limit of %d bytes", res.size, e.cfg.MaxImportSize),
		}
	}
	src := e.openParts(res.parts)
	defer src.Close()
	if err := e.checkFooter(src, res.size); err != nil {
		return nil, err
	}
	rel, size, sum, err := e.writeBlob(path.Join("images", rname), src, e.cfg.MaxImportSize)
	if err != nil {
		return nil, &ImportError{111, fmt.Sprintf("could not read the object: %v", err)}
	}
	tm := now()
	img := &image{ID: newID(), Name: name, Status: "active", Visibility: "private", Tags: []string{},
		Checksum: sum, Size: size, DiskFormat: "vhd", ContainerFormat: "ovf", Owner: t.Owner,
		CreatedAt: tm, UpdatedAt: tm, Props: map[string]string{"image_type": "import"},
		Members: map[string]*member{}, File: rel}
	e.mu.Lock()
	e.st.Regions[rname].Images[img.ID] = img
	e.commit()
	e.mu.Unlock()
	return map[string]string{"image_id": img.ID}, nil
}

// checkFooter validates the VHD footer at the end of src and rewinds it.
func (e *Emulator) checkFooter(src io.ReadSeeker, size int64) error {
	if size < vhdFooterSize {
		return &ImportError{396, fmt.Sprintf("not a valid VHD: %d bytes is shorter than a footer", size)}
	}
	footer := make([]byte, vhdFooterSize)
	if _, err := src.Seek(size-vhdFooterSize, io.SeekStart); err != nil {
		return &ImportError{111, err.Error()}
	}
	if _, err := io.ReadFull(src, footer); err != nil {
		return &ImportError{111, fmt.Sprintf("could not read the VHD footer: %v", err)}
	}
	f, err := ParseVHDFooter(footer)
	if err != nil {
		return err
	}
	if int64(f.CurrentSize) > e.cfg.MaxImportSize || int64(f.CurrentSize) < 0 {
		return &ImportError{
			413,
			fmt.Sprintf("virtual size %d is larger than the limit of %d bytes", f.CurrentSize, e.cfg.MaxImportSize),
		}
	}
	_, err = src.Seek(0, io.SeekStart)
	return err
}
