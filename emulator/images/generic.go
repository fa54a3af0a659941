package images

import (
	"crypto/sha512"
	"encoding/hex"
	"io"
	"net/http"
	"path"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// A generic OpenStack region (Config.GenericRegions) is Glance as a private cloud runs it:
// images are created (POST /v2/images, status queued) and their data uploaded
// (PUT /v2/images/{id}/file, then active with checksum and os_hash_value) or staged and imported
// (PUT .../stage, POST .../import with glance-direct, the one interoperable method served), and
// there are no Rackspace tasks and no object store.

// routeGeneric adds what a generic region's Glance has and Rackspace's lacks.
func (s *Service) routeGeneric(mux *http.ServeMux, name string) {
	h := s.handler(name)
	mux.HandleFunc("POST /v2/images", h(s.createImage))
	mux.HandleFunc("PUT /v2/images/{id}/file", h(s.uploadImage))
	mux.HandleFunc("PUT /v2/images/{id}/stage", h(s.stageImage))
	mux.HandleFunc("POST /v2/images/{id}/import", h(s.importImage))
	methods := s.importMethods(name)
	mux.HandleFunc("GET /v2/info/import", func(w http.ResponseWriter, r *http.Request) {
		core.WriteJSON(w, 200, map[string]any{"import-methods": map[string]any{
			"description": "Import methods available.", "type": "array", "value": methods}})
	})
}

// createImage makes a queued image: Glance's core attributes, and any other string as a property.
func (s *Service) createImage(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	var body map[string]any
	if !core.ReadJSON(w, r, &body) {
		return
	}
	img := &Image{ID: core.NewID(), Status: "queued", Visibility: "shared", Tags: []string{}, Owner: core.Caller(r),
		DiskFormat: "raw", ContainerFormat: "bare", Props: map[string]string{}, Members: map[string]*Member{}}
	for k, v := range body {
		s, isString := v.(string)
		switch k {
		case "name":
			img.Name = s
		case "disk_format":
			img.DiskFormat = s
		case "container_format":
			img.ContainerFormat = s
		case "visibility":
			img.Visibility = s
		case "min_disk", "min_ram":
			n, ok := v.(float64)
			if !ok || n < 0 || n != float64(int(n)) {
				core.Fail(w, 400, "%s must be a non-negative integer.", k)
				return
			}
			if k == "min_disk" {
				img.MinDisk = int(n)
			} else {
				img.MinRAM = int(n)
			}
		case "tags":
			list, ok := v.([]any)
			if !ok {
				core.Fail(w, 400, "tags must be a list of strings.")
				return
			}
			for _, t := range list {
				if ts, ok := t.(string); ok {
					img.Tags = append(img.Tags, ts)
				}
			}
		case "id", "status", "owner", "size", "checksum", "os_hash_algo", "os_hash_value", "created_at",
			"updated_at", "file", "self", "schema", "locations":
			core.Fail(w, 403, "Attribute '%s' is read-only.", k)
			return
		default:
			if !isString {
				core.Fail(w, 400, "Property %s must be a string.", k)
				return
			}
			img.Props[k] = s
		}
	}
	img.CreatedAt, img.UpdatedAt = core.Now(), core.Now()
	s.store.Lock()
	reg.Images[img.ID] = img
	s.store.Commit()
	view := img.view()
	s.store.Unlock()
	core.WriteJSON(w, 201, view)
}

// uploadImage stores a queued image's data and makes it active; the hashes are computed here,
// as Glance does, so the uploader can compare them with its own.
func (s *Service) uploadImage(w http.ResponseWriter, r *http.Request, reg *Region, rname string) {
	if s.receiveData(w, r, reg, rname, "saving", "active") {
		w.WriteHeader(204)
	}
}

// stageImage is glance-direct's first step: the data waits, the image is "uploading".
func (s *Service) stageImage(w http.ResponseWriter, r *http.Request, reg *Region, rname string) {
	if s.receiveData(w, r, reg, rname, "uploading", "uploading") {
		w.WriteHeader(204)
	}
}

// importStaged is glance-direct's second step: the staged data becomes the image's (202, then
// active once the import has run, as Glance's asynchronous import does).
func (s *Service) importStaged(w http.ResponseWriter, r *http.Request, reg *Region, body importRequest) {
	w, unlock := s.store.LockReply(w)
	defer unlock()
	img := reg.Images[r.PathValue("id")]
	switch {
	case img == nil || img.Owner != core.Caller(r):
		core.Fail(w, 404, "No image found with ID %s", r.PathValue("id"))
	case img.Status != "uploading" || img.File == "":
		core.Fail(w, 409, "Image %s is %s; stage its data before importing it.", img.ID, img.Status)
	default:
		img.Status, img.UpdatedAt = "active", core.Now()
		s.store.Commit()
		w.WriteHeader(202)
	}
}

// receiveData streams a request body into a queued image's data, hashing it as Glance does;
// while it runs the image is `during`, after it `after`. A failure leaves it queued.
func (s *Service) receiveData(w http.ResponseWriter, r *http.Request, reg *Region, rname, during,
	after string) bool {
	s.store.Lock()
	img := reg.Images[r.PathValue("id")]
	switch {
	case img == nil || img.Owner != core.Caller(r):
		s.store.Unlock()
		core.Fail(w, 404, "No image found with ID %s", r.PathValue("id"))
		return false
	case img.Status != "queued":
		s.store.Unlock()
		core.Fail(w, 409, "Image status transition from %s to %s is not allowed", img.Status, during)
		return false
	}
	img.Status = during
	s.store.Unlock()
	h := sha512.New()
	rel, size, sum, err := s.store.WriteBlob(path.Join("images", rname), io.TeeReader(r.Body, h), s.cfg.MaxImportSize)
	w, unlock := s.store.LockReply(w)
	defer unlock()
	if err != nil {
		img.Status = "queued" // Glance lets a failed upload be retried
		core.Fail(w, 400, "could not read the image data: %v", err)
		return false
	}
	img.Status, img.Size, img.Checksum, img.File, img.UpdatedAt = after, size, sum, rel, core.Now()
	img.Props["os_hash_algo"], img.Props["os_hash_value"] = "sha512", hex.EncodeToString(h.Sum(nil))
	s.store.Commit()
	return true
}
