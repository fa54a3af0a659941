package images

import (
	"net/http"
	"slices"
	"sync"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// Glance's interoperable import, beyond glance-direct: glance-download (Zed and later), where a
// region's Glance pulls an image from another region of the same identity with the caller's
// token, so no byte passes through the client. The emulator copies the source's data inside
// itself (a seeded image's generator, or a copy of the file) after the import's pending time.

// importRequest is POST /v2/images/{id}/import's body.
type importRequest struct {
	Method struct {
		Name string `json:"name"`
		// GlanceImageID and GlanceRegion name glance-download's source.
		GlanceImageID          string `json:"glance_image_id"`
		GlanceRegion           string `json:"glance_region"`
		GlanceServiceInterface string `json:"glance_service_interface"`
	} `json:"method"`
}

// importImage dispatches an import by its method.
func (s *Service) importImage(w http.ResponseWriter, r *http.Request, reg *Region, rname string) {
	var body importRequest
	if !core.ReadJSON(w, r, &body) {
		return
	}
	switch {
	case body.Method.Name == "glance-direct":
		s.importStaged(w, r, reg, body)
	case body.Method.Name == "glance-download" && slices.Contains(s.cfg.GlanceDownload, rname):
		s.glanceDownload(w, r, reg, rname, body)
	default:
		offered := "glance-direct"
		if slices.Contains(s.cfg.GlanceDownload, rname) {
			offered += " and glance-download"
		}
		core.Fail(w, 400, "Import method %q is not available (this region offers %s).", body.Method.Name, offered)
	}
}

// glanceDownload starts pulling the source image into the queued image.
func (s *Service) glanceDownload(w http.ResponseWriter, r *http.Request, reg *Region, rname string,
	body importRequest) {
	w, unlock := s.store.LockReply(w)
	defer unlock()
	tenant, m := core.Caller(r), body.Method
	img := reg.Images[r.PathValue("id")]
	var src *Image
	if from := s.regions[m.GlanceRegion]; from != nil {
		src = from.Images[m.GlanceImageID]
	}
	switch {
	case img == nil || img.Owner != tenant:
		core.Fail(w, 404, "No image found with ID %s", r.PathValue("id"))
	case img.Status != "queued":
		core.Fail(w, 409, "Image %s is %s; glance-download imports into a queued image.", img.ID, img.Status)
	case m.GlanceRegion == rname || src == nil || !canSee(src, tenant) || src.Status != "active":
		core.Fail(w, 400, "glance-download: no active image %s visible to the caller in region %q",
			m.GlanceImageID, m.GlanceRegion)
	default:
		img.Status, img.UpdatedAt = "importing", core.Now()
		s.store.Commit()
		s.pull(rname, img.ID, *src)
		w.WriteHeader(202)
	}
}

// pull copies src's data into image id of region once the import's pending time has passed.
func (s *Service) pull(region, id string, src Image) {
	s.tasks.Add(1)
	go func() {
		defer s.tasks.Done()
		if !s.store.Sleep(s.cfg.TaskDuration) {
			return
		}
		file := ""
		if src.Seed == "" {
			rel, _, _, err := s.store.WriteBlob("images/"+region, s.store.OpenParts(
				[]core.FilePart{{Rel: src.File, Size: src.Size}}), src.Size)
			if err != nil {
				s.setStatus(region, id, "queued") // as Glance leaves a failed import to be tried again
				return
			}
			file = rel
		}
		s.store.Lock()
		defer s.store.Unlock()
		img := s.regions[region].Images[id]
		if img == nil {
			s.store.RemoveFile(file)
			return
		}
		img.Status, img.Size, img.Checksum, img.UpdatedAt = "active", src.Size, src.Checksum, core.Now()
		img.Seed, img.Overlays, img.File = src.Seed, slices.Clone(src.Overlays), file
		for _, k := range []string{"os_hash_algo", "os_hash_value"} {
			if v, ok := src.Props[k]; ok {
				img.Props[k] = v
			}
		}
		s.store.Commit()
	}()
}

func (s *Service) setStatus(region, id, status string) {
	s.store.Lock()
	defer s.store.Unlock()
	if img := s.regions[region].Images[id]; img != nil {
		img.Status = status
		s.store.Commit()
	}
}

// served counts image bytes served per region (GET .../file), for tests and benchmarks.
type served struct {
	mu    sync.Mutex
	bytes map[string]int64
}

func (c *served) add(region string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes == nil {
		c.bytes = map[string]int64{}
	}
	c.bytes[region] += n
}

// BytesServed is how many image bytes region's Glance sent to clients since start.
func (s *Service) BytesServed(region string) int64 {
	s.served.mu.Lock()
	defer s.served.mu.Unlock()
	return s.served.bytes[region]
}
