package images

import (
	"crypto/sha512"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

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
		// URI is web-download's source: a URL the region fetches (a Swift temporary URL, say).
		URI string `json:"uri"`
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
	case body.Method.Name == "web-download" && slices.Contains(s.cfg.WebDownload, rname):
		s.webDownload(w, r, reg, rname, body)
	default:
		core.Fail(w, 400, "Import method %q is not available (this region offers %s).", body.Method.Name,
			strings.Join(s.importMethods(rname), ", "))
	}
}

// glanceDownload starts pulling the source image into the queued image.
func (s *Service) glanceDownload(w http.ResponseWriter, r *http.Request, reg *Region, rname string,
	body importRequest) {
	w, unlock := s.store.LockReply(w)
	defer unlock()
	m := body.Method
	var src *Image
	if from := s.regions[m.GlanceRegion]; from != nil {
		src = from.Images[m.GlanceImageID]
	}
	img := queuedForImport(w, r, reg, "glance-download")
	switch {
	case img == nil:
	case m.GlanceRegion == rname || src == nil || !canSee(src, core.Caller(r)) || src.Status != "active":
		core.Fail(w, 400, "glance-download: no active image %s visible to the caller in region %q",
			m.GlanceImageID, m.GlanceRegion)
	default:
		s.importing(w, img)
		s.pull(rname, img.ID, *src)
	}
}

// queuedForImport is the caller's queued image the request names, or nil with the 404 or 409
// answered.
func queuedForImport(w http.ResponseWriter, r *http.Request, reg *Region, method string) *Image {
	img := reg.Images[r.PathValue("id")]
	switch {
	case img == nil || img.Owner != core.Caller(r):
		core.Fail(w, 404, "No image found with ID %s", r.PathValue("id"))
	case img.Status != "queued":
		core.Fail(w, 409, "Image %s is %s; %s imports into a queued image.", img.ID, img.Status, method)
	default:
		return img
	}
	return nil
}

// importing marks an import started (202); call with the store locked.
func (s *Service) importing(w http.ResponseWriter, img *Image) {
	img.Status, img.UpdatedAt = "importing", core.Now()
	s.store.Commit()
	w.WriteHeader(202)
}

// importMethods are the interoperable import methods region offers.
func (s *Service) importMethods(region string) []string {
	methods := []string{"glance-direct"}
	if slices.Contains(s.cfg.GlanceDownload, region) {
		methods = append(methods, "glance-download")
	}
	if slices.Contains(s.cfg.WebDownload, region) {
		methods = append(methods, "web-download")
	}
	return methods
}

// webDownload starts fetching the URI into the queued image.
func (s *Service) webDownload(w http.ResponseWriter, r *http.Request, reg *Region, rname string, body importRequest) {
	u, err := url.Parse(body.Method.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		core.Fail(w, 400, "web-download needs an http or https uri, got %q", body.Method.URI)
		return
	}
	w, unlock := s.store.LockReply(w)
	defer unlock()
	if img := queuedForImport(w, r, reg, "web-download"); img != nil {
		s.importing(w, img)
		s.fetch(rname, img.ID, u.String())
	}
}

// fetch GETs uri into image id of region, hashing it as Glance does; a failure leaves the image
// queued, as Glance leaves a failed import.
func (s *Service) fetch(region, id, uri string) {
	s.tasks.Add(1)
	go func() {
		defer s.tasks.Done()
		resp, err := http.Get(uri)
		if err != nil || resp.StatusCode != 200 {
			if err == nil {
				resp.Body.Close()
			}
			s.setStatus(region, id, "queued")
			return
		}
		defer resp.Body.Close()
		h := sha512.New()
		rel, size, sum, err := s.store.WriteBlob(path.Join("images", region), io.TeeReader(resp.Body, h),
			s.cfg.MaxImportSize)
		if err != nil {
			s.setStatus(region, id, "queued")
			return
		}
		s.activate(region, id, rel, func(img *Image) {
			img.Size, img.Checksum = size, sum
			img.Props["os_hash_algo"], img.Props["os_hash_value"] = "sha512", hex.EncodeToString(h.Sum(nil))
		})
	}()
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
		s.activate(region, id, file, func(img *Image) {
			img.Size, img.Checksum = src.Size, src.Checksum
			img.Seed, img.Overlays = src.Seed, slices.Clone(src.Overlays)
			for _, k := range []string{"os_hash_algo", "os_hash_value"} {
				if v, ok := src.Props[k]; ok {
					img.Props[k] = v
				}
			}
		})
	}()
}

// activate makes image id of region active with its bytes in file (empty: generated) and what set
// adds; an image deleted while its bytes arrived leaves no file behind.
func (s *Service) activate(region, id, file string, set func(*Image)) {
	s.store.Lock()
	defer s.store.Unlock()
	img := s.regions[region].Images[id]
	if img == nil {
		s.store.RemoveFile(file)
		return
	}
	img.Status, img.File, img.UpdatedAt = "active", file, core.Now()
	set(img)
	s.store.Commit()
}

func (s *Service) setStatus(region, id, status string) {
	s.store.Lock()
	defer s.store.Unlock()
	if img := s.regions[region].Images[id]; img != nil {
		img.Status = status
		s.store.Commit()
	}
}

// BytesServed is how many image bytes region's Glance sent to clients since start.
func (s *Service) BytesServed(region string) int64 { return s.served.Get(region) }
