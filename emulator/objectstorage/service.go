// Package objectstorage is the emulator's Cloud Files (Swift): accounts, containers, objects,
// static and dynamic large objects, server-side copies and bulk deletes, one account's files per
// region. Image tasks reach it through the methods in tasks.go.
package objectstorage

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// Container is a named set of objects.
type Container struct {
	Name      string             `json:"name"`
	CreatedAt time.Time          `json:"created_at"`
	Objects   map[string]*Object `json:"objects"`
}

// Object is stored bytes (File), or a manifest that names other objects as its parts.
type Object struct {
	Name         string            `json:"name"`
	Size         int64             `json:"size"`
	ETag         string            `json:"etag"`
	ContentType  string            `json:"content_type"`
	LastModified time.Time         `json:"last_modified"`
	Meta         map[string]string `json:"meta,omitempty"`
	// Manifest is a DLO's "<container>/<prefix>"; SLO lists a static manifest's segments.
	Manifest string       `json:"manifest,omitempty"`
	SLO      []SLOSegment `json:"slo,omitempty"`
	// File is the bytes' path relative to the data folder (empty for manifests).
	File string `json:"file,omitempty"`
}

// SLOSegment is one entry of a static manifest.
type SLOSegment struct {
	Path string `json:"path"`
	ETag string `json:"etag"`
	Size int64  `json:"size_bytes"`
}

// Files is one region's files: tenant -> container name -> container.
type Files map[string]map[string]*Container

// Service serves the object store of every region that has one.
type Service struct {
	store *core.Store
	// files is region -> its files and meta region -> tenant -> the account's metadata, both the
	// saved state's, under the store's lock.
	files         map[string]Files
	meta          map[string]map[string]map[string]string
	maxObjectSize int64
	stats         stats
}

// New serves files and the accounts' metadata (the saved state's, by region); one PUT may bring
// at most maxObjectSize bytes.
func New(store *core.Store, files map[string]Files, meta map[string]map[string]map[string]string,
	maxObjectSize int64) *Service {
	return &Service{store: store, files: files, meta: meta, maxObjectSize: maxObjectSize}
}

// Route adds region's Cloud Files (/v1/MossoCloudFS_<tenant>/...) to mux; the handlers expect
// requests that identity authenticated.
func (s *Service) Route(mux *http.ServeMux, region string) {
	h := func(f func(w http.ResponseWriter, r *http.Request, fs *fileSpace)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			tenant := core.Caller(r)
			if r.PathValue("account") != "MossoCloudFS_"+tenant {
				core.Fail(w, 403, "Token does not grant access to account %s.", r.PathValue("account"))
				return
			}
			f(w, r, &fileSpace{s: s, region: region, tenant: tenant})
		}
	}
	mux.HandleFunc("/v1/{account}", h(s.accountOp))
	mux.HandleFunc("/v1/{account}/{container}", h(s.containerOp))
	mux.HandleFunc("/v1/{account}/{container}/{object...}", h(s.objectOp))
}

// stats count traffic for tests and benchmarks.
type stats struct {
	mu      sync.Mutex
	bytesIn map[string]int64
}

func (s *stats) received(region string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bytesIn == nil {
		s.bytesIn = map[string]int64{}
	}
	s.bytesIn[region] += n
}

// BytesReceived is how many object bytes PUT requests delivered to region since start, counting
// uploads that were cut off (a killed copy's partial segments included).
func (s *Service) BytesReceived(region string) int64 {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	return s.stats.bytesIn[region]
}

// countingBody counts the bytes a request body delivered, whether or not the upload completed.
type countingBody struct {
	r io.Reader
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
