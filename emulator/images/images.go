package images

import (
	"io"
	"net/http"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

func canSee(img *Image, tenant string) bool {
	return img.Owner == tenant || img.Visibility == "public" || img.Members[tenant] != nil
}

// visibleImage finds an image the caller may see, answering 404 itself otherwise. Call with e.mu held.
func visibleImage(w http.ResponseWriter, reg *Region, id, tenant string) *Image {
	img := reg.Images[id]
	if img == nil || !canSee(img, tenant) {
		core.Fail(w, 404, "No image found with ID %s", id)
		return nil
	}
	return img
}

// onImage runs f under the lock on the image the request names, when find lets the caller at it;
// find answers the 404 or 403 itself otherwise. Both answer through the writer they are given,
// which is sent after the lock is released.
func (s *Service) onImage(w http.ResponseWriter, r *http.Request, reg *Region,
	find func(http.ResponseWriter, *Region, string, string) *Image, f func(http.ResponseWriter, *Image)) {
	w, unlock := s.store.LockReply(w)
	defer unlock()
	if img := find(w, reg, r.PathValue("id"), core.Caller(r)); img != nil {
		f(w, img)
	}
}

// ownedImage is visibleImage plus the owner check: 403 for an image the caller sees but does not own.
func ownedImage(w http.ResponseWriter, reg *Region, id, tenant string) *Image {
	img := visibleImage(w, reg, id, tenant)
	if img != nil && img.Owner != tenant {
		core.Fail(w, 403, "You are not permitted to modify image %s: it is owned by another account.", id)
		return nil
	}
	return img
}

func (img *Image) view() map[string]any {
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
	m["created_at"], m["updated_at"] = img.CreatedAt.Format(core.TimeFormat), img.UpdatedAt.Format(core.TimeFormat)
	m["self"], m["file"], m["schema"] = "/v2/images/"+img.ID, "/v2/images/"+img.ID+"/file", "/v2/schemas/image"
	return m
}

func (s *Service) getImage(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	w, unlock := s.store.LockReply(w)
	defer unlock()
	if img := visibleImage(w, reg, r.PathValue("id"), core.Caller(r)); img != nil {
		core.WriteJSON(w, 200, img.view())
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

func (s *Service) deleteImage(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	s.onImage(w, r, reg, ownedImage, func(w http.ResponseWriter, img *Image) {
		if img.Protected {
			core.Fail(w, 403, "Image %s is protected and cannot be deleted.", img.ID)
			return
		}
		delete(reg.Images, img.ID)
		s.store.RemoveFile(img.File)
		s.store.Commit()
		w.WriteHeader(204)
	})
}

const maxTags = 128

func (s *Service) putTag(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	s.onImage(w, r, reg, ownedImage, func(w http.ResponseWriter, img *Image) {
		tag := r.PathValue("tag")
		if len(tag) > 255 {
			core.Fail(w, 400, "tag is longer than 255 characters")
			return
		}
		if !contains(img.Tags, tag) {
			if len(img.Tags) >= maxTags {
				core.Fail(w, 413, "Attempted to add a tag past the limit of %d tags.", maxTags)
				return
			}
			img.Tags = append(img.Tags, tag)
			img.UpdatedAt = core.Now()
			s.store.Commit()
		}
		w.WriteHeader(204)
	})
}

func (s *Service) deleteTag(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	s.onImage(w, r, reg, ownedImage, func(w http.ResponseWriter, img *Image) {
		tag := r.PathValue("tag")
		for i, t := range img.Tags {
			if t == tag {
				img.Tags = append(img.Tags[:i:i], img.Tags[i+1:]...)
				img.UpdatedAt = core.Now()
				s.store.Commit()
				w.WriteHeader(204)
				return
			}
		}
		core.Fail(w, 404, "Tag %s not found on image %s", tag, img.ID)
	})
}

// downloadImage streams an image's bytes (GET /v2/images/{id}/file).
func (s *Service) downloadImage(w http.ResponseWriter, r *http.Request, reg *Region, rname string) {
	held, unlock := s.store.LockReply(w)
	img := visibleImage(held, reg, r.PathValue("id"), core.Caller(r))
	var src io.ReadSeeker
	var checksum string
	if img != nil {
		checksum, src = img.Checksum, s.imageReader(img)
	}
	unlock() // answers the 404, if any
	if src == nil {
		return
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-MD5", checksum)
	counted := &countingWriter{ResponseWriter: w}
	http.ServeContent(counted, r, "", time.Time{}, src)
	s.served.Add(rname, counted.n)
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}
