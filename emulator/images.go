package emulator

import (
	"io"
	"net/http"
	"time"
)

func (e *Emulator) routeImages(mux *http.ServeMux, rname string) {
	h := func(f func(w http.ResponseWriter, r *http.Request, reg *region, rname string)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { f(w, r, e.st.Regions[rname], rname) }
	}
	mux.HandleFunc("GET /v2/images", h(e.listImages))
	if !e.isGeneric(rname) {
		mux.HandleFunc("POST /v2/images", func(w http.ResponseWriter, r *http.Request) {
			fail(w, 403, "Images are created by import tasks or server snapshots; POST /v2/images is not allowed.")
		})
		mux.HandleFunc("POST /v2/tasks", h(e.createTask))
		mux.HandleFunc("GET /v2/tasks", h(e.listTasks))
		mux.HandleFunc("GET /v2/tasks/{id}", h(e.getTask))
	}
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

// onImage runs f under the lock on the image the request names, when find lets the caller at it;
// find answers the 404 or 403 itself otherwise. Both answer through the writer they are given,
// which is sent after the lock is released.
func (e *Emulator) onImage(w http.ResponseWriter, r *http.Request, reg *region,
	find func(http.ResponseWriter, *region, string, string) *image, f func(http.ResponseWriter, *image)) {
	w, unlock := e.lockReply(w)
	defer unlock()
	if img := find(w, reg, r.PathValue("id"), caller(r)); img != nil {
		f(w, img)
	}
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
	w, unlock := e.lockReply(w)
	defer unlock()
	if img := visibleImage(w, reg, r.PathValue("id"), caller(r)); img != nil {
		writeJSON(w, 200, img.view())
	}
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
	e.onImage(w, r, reg, ownedImage, func(w http.ResponseWriter, img *image) {
		if img.Protected {
			fail(w, 403, "Image %s is protected and cannot be deleted.", img.ID)
			return
		}
		delete(reg.Images, img.ID)
		e.removeFile(img.File)
		e.commit()
		w.WriteHeader(204)
	})
}

const maxTags = 128

func (e *Emulator) putTag(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	e.onImage(w, r, reg, ownedImage, func(w http.ResponseWriter, img *image) {
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
	})
}

func (e *Emulator) deleteTag(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	e.onImage(w, r, reg, ownedImage, func(w http.ResponseWriter, img *image) {
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
	})
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
