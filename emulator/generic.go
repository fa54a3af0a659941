package emulator

import (
	"crypto/sha512"
	"encoding/hex"
	"io"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
)

// A generic OpenStack region (Config.GenericRegions) is Glance as a private cloud runs it:
// images are created (POST /v2/images, status queued) and their data uploaded
// (PUT /v2/images/{id}/file, then active with checksum and os_hash_value) or staged and imported
// (PUT .../stage, POST .../import with glance-direct, the one interoperable method served), and
// there are no Rackspace tasks and no object store.

var regionNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (e *Emulator) isGeneric(name string) bool { return slices.Contains(e.cfg.GenericRegions, name) }

// hasFiles reports a region with an object store: Rackspace's, and generic ones with Swift.
func (e *Emulator) hasFiles(name string) bool {
	return !e.isGeneric(name) || slices.Contains(e.cfg.SwiftRegions, name)
}

// regionNames are every region served: Rackspace's six, then the generic ones.
func (e *Emulator) regionNames() []string {
	return append(slices.Clone(Regions), e.cfg.GenericRegions...)
}

// routeGeneric adds what a generic region's Glance has and Rackspace's lacks.
func (e *Emulator) routeGeneric(mux *http.ServeMux, name string) {
	h := func(f func(w http.ResponseWriter, r *http.Request, reg *region, rname string)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { f(w, r, e.st.Regions[name], name) }
	}
	mux.HandleFunc("POST /v2/images", h(e.createImage))
	mux.HandleFunc("PUT /v2/images/{id}/file", h(e.uploadImage))
	mux.HandleFunc("PUT /v2/images/{id}/stage", h(e.stageImage))
	mux.HandleFunc("POST /v2/images/{id}/import", h(e.importStaged))
	mux.HandleFunc("GET /v2/info/import", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"import-methods": map[string]any{
			"description": "Import methods available.", "type": "array", "value": []string{"glance-direct"}}})
	})
}

// createImage makes a queued image: Glance's core attributes, and any other string as a property.
func (e *Emulator) createImage(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	var body map[string]any
	if !readJSON(w, r, &body) {
		return
	}
	img := &image{ID: newID(), Status: "queued", Visibility: "shared", Tags: []string{}, Owner: caller(r),
		DiskFormat: "raw", ContainerFormat: "bare", Props: map[string]string{}, Members: map[string]*member{}}
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
				fail(w, 400, "%s must be a non-negative integer.", k)
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
				fail(w, 400, "tags must be a list of strings.")
				return
			}
			for _, t := range list {
				if ts, ok := t.(string); ok {
					img.Tags = append(img.Tags, ts)
				}
			}
		case "id", "status", "owner", "size", "checksum", "os_hash_algo", "os_hash_value", "created_at",
			"updated_at", "file", "self", "schema", "locations":
			fail(w, 403, "Attribute '%s' is read-only.", k)
			return
		default:
			if !isString {
				fail(w, 400, "Property %s must be a string.", k)
				return
			}
			img.Props[k] = s
		}
	}
	img.CreatedAt, img.UpdatedAt = now(), now()
	e.mu.Lock()
	reg.Images[img.ID] = img
	e.commit()
	view := img.view()
	e.mu.Unlock()
	writeJSON(w, 201, view)
}

// uploadImage stores a queued image's data and makes it active; the hashes are computed here,
// as Glance does, so the uploader can compare them with its own.
func (e *Emulator) uploadImage(w http.ResponseWriter, r *http.Request, reg *region, rname string) {
	if e.receiveData(w, r, reg, rname, "saving", "active") {
		w.WriteHeader(204)
	}
}

// stageImage is glance-direct's first step: the data waits, the image is "uploading".
func (e *Emulator) stageImage(w http.ResponseWriter, r *http.Request, reg *region, rname string) {
	if e.receiveData(w, r, reg, rname, "uploading", "uploading") {
		w.WriteHeader(204)
	}
}

// importStaged is glance-direct's second step: the staged data becomes the image's (202, then
// active once the import has run, as Glance's asynchronous import does).
func (e *Emulator) importStaged(w http.ResponseWriter, r *http.Request, reg *region, _ string) {
	var body struct {
		Method struct {
			Name string `json:"name"`
		} `json:"method"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	w, unlock := e.lockReply(w)
	defer unlock()
	img := reg.Images[r.PathValue("id")]
	switch {
	case img == nil || img.Owner != caller(r):
		fail(w, 404, "No image found with ID %s", r.PathValue("id"))
	case body.Method.Name != "glance-direct":
		fail(w, 400, "Import method %q is not available (this region offers glance-direct).", body.Method.Name)
	case img.Status != "uploading" || img.File == "":
		fail(w, 409, "Image %s is %s; stage its data before importing it.", img.ID, img.Status)
	default:
		img.Status, img.UpdatedAt = "active", now()
		e.commit()
		w.WriteHeader(202)
	}
}

// receiveData streams a request body into a queued image's data, hashing it as Glance does;
// while it runs the image is `during`, after it `after`. A failure leaves it queued.
func (e *Emulator) receiveData(w http.ResponseWriter, r *http.Request, reg *region, rname, during,
	after string) bool {
	e.mu.Lock()
	img := reg.Images[r.PathValue("id")]
	switch {
	case img == nil || img.Owner != caller(r):
		e.mu.Unlock()
		fail(w, 404, "No image found with ID %s", r.PathValue("id"))
		return false
	case img.Status != "queued":
		e.mu.Unlock()
		fail(w, 409, "Image status transition from %s to %s is not allowed", img.Status, during)
		return false
	}
	img.Status = during
	e.mu.Unlock()
	h := sha512.New()
	rel, size, sum, err := e.writeBlob(path.Join("images", rname), io.TeeReader(r.Body, h), e.cfg.MaxImportSize)
	w, unlock := e.lockReply(w)
	defer unlock()
	if err != nil {
		img.Status = "queued" // Glance lets a failed upload be retried
		fail(w, 400, "could not read the image data: %v", err)
		return false
	}
	img.Status, img.Size, img.Checksum, img.File, img.UpdatedAt = after, size, sum, rel, now()
	img.Props["os_hash_algo"], img.Props["os_hash_value"] = "sha512", hex.EncodeToString(h.Sum(nil))
	e.commit()
	return true
}

// genericCatalog lists a generic region's services: Glance at its root (as Keystone catalogs
// name it, without a version) and identity; no object store.
func genericCatalog(name, base, identity string) (image, id map[string]any) {
	return map[string]any{"region": name, "publicURL": strings.TrimSuffix(base, "/"),
			"internalURL": strings.TrimSuffix(base, "/")},
		map[string]any{"region": name, "publicURL": identity, "internalURL": identity}
}
