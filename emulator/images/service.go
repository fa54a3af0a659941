// Package images is the emulator's Cloud Images: Glance v2 with Rackspace's additions (images,
// members, JSON patch, schemas, import and export tasks), and plain Glance as a private
// OpenStack cloud runs it (images created and uploaded, glance-direct import) in generic
// regions. Image bytes are generated from a seed or kept as files; tasks move them to and from
// the object store through Objects.
package images

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imageflow/imageflow/emulator/internal/core"
	"github.com/imageflow/imageflow/emulator/internal/seeded"
)

// Image is one image of a region, as its owner and members see it.
type Image struct {
	ID              string             `json:"id"`
	Name            string             `json:"name"`
	Status          string             `json:"status"`
	Visibility      string             `json:"visibility"`
	Protected       bool               `json:"protected"`
	Tags            []string           `json:"tags"`
	Checksum        string             `json:"checksum"`
	Size            int64              `json:"size"`
	DiskFormat      string             `json:"disk_format"`
	ContainerFormat string             `json:"container_format"`
	MinDisk         int                `json:"min_disk"`
	MinRAM          int                `json:"min_ram"`
	Owner           string             `json:"owner"`
	CreatedAt       time.Time          `json:"created_at"`
	UpdatedAt       time.Time          `json:"updated_at"`
	Props           map[string]string  `json:"props"`
	Members         map[string]*Member `json:"members"`
	// Seed names generated content; File names an imported image's bytes under the data folder.
	Seed string `json:"seed,omitempty"`
	File string `json:"file,omitempty"`
	// Overlays are the changes of a snapshot made from a seeded one (see Snapshot).
	Overlays []Overlay `json:"overlays,omitempty"`
}

// Member is an account an image is shared with, and its answer.
type Member struct {
	MemberID  string    `json:"member_id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Task is a Rackspace import or export task.
type Task struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Status    string            `json:"status"`
	Input     json.RawMessage   `json:"input"`
	Result    map[string]string `json:"result"`
	Message   string            `json:"message"`
	Owner     string            `json:"owner"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	ExpiresAt *time.Time        `json:"expires_at"`

	// EndedAt and SeenEndedAt are when the task ended and when a client first read it ended
	// (GET of the task), at full clock resolution where the API's times are whole seconds: how
	// late a poller noticed is what tests of task waits measure. Not saved.
	EndedAt     time.Time `json:"-"`
	SeenEndedAt time.Time `json:"-"`
}

// Region is one region's images and tasks.
type Region struct {
	Images map[string]*Image `json:"images"`
	Tasks  map[string]*Task  `json:"tasks"`
}

// Fill makes every map a loaded state may lack, so handlers never meet a nil map.
func (r *Region) Fill() {
	if r.Images == nil {
		r.Images = map[string]*Image{}
	}
	if r.Tasks == nil {
		r.Tasks = map[string]*Task{}
	}
	for _, img := range r.Images {
		if img.Props == nil {
			img.Props = map[string]string{}
		}
		if img.Members == nil {
			img.Members = map[string]*Member{}
		}
		if img.Tags == nil {
			img.Tags = []string{}
		}
	}
}

// Objects is what tasks need of a region's object store.
type Objects interface {
	// Lookup says whether tenant has container in region, and whether it holds object.
	Lookup(region, tenant, container, object string) (containerFound, objectFound bool)
	// Open reads an object whole (manifests followed); found is false when there is none.
	Open(region, tenant, container, object string) (r io.ReadSeekCloser, size int64, found bool, err error)
	// Put stores the n bytes src gives as an object.
	Put(region, tenant, container, object string, src io.Reader, n int64) error
	// PutManifest stores a dynamic large object over the objects named prefix and more.
	PutManifest(region, tenant, container, object, prefix string) error
	// PutGenerated stores a section of a generated image as an object that refers to it.
	PutGenerated(region, tenant, container, object string, sec seeded.Section) error
	// Sections are an object's parts when all are generated content, each at its offset.
	Sections(region, tenant, container, object string) ([]seeded.Section, bool)
}

// TaskFaults decides which tasks fail on purpose.
type TaskFaults interface {
	// TaskFailure says whether a task of this type on this image must fail, and with what message.
	TaskFailure(region, taskType, imageID, imageName string) (string, bool)
}

// Config sets how images and tasks behave.
type Config struct {
	// TaskDuration is the fixed part of a task's life: a quarter pending, the rest processing.
	TaskDuration time.Duration
	// TaskBytesPerSecond, when above 0, adds size/rate of processing to every task.
	TaskBytesPerSecond int64
	// ExportSegmentSize is the size of export segments.
	ExportSegmentSize int64
	// MaxImportSize bounds imported and uploaded images.
	MaxImportSize int64
	// Generic are the regions that run plain Glance rather than Rackspace's.
	Generic []string
	// GlanceDownload are the generic regions whose Glance offers the glance-download import.
	GlanceDownload []string
	// WebDownload are the generic regions whose Glance offers the web-download import.
	WebDownload []string
	// GeneratedObjects exports seeded images as references to their generated bytes, and
	// imports objects of generated bytes as generated images (see emulator.Config).
	GeneratedObjects bool
}

// Service serves every region's images.
type Service struct {
	store   *core.Store
	cfg     Config
	regions map[string]*Region // the saved state's, under the store's lock
	objects Objects
	faults  TaskFaults
	tasks   sync.WaitGroup
	served  core.Counter // image bytes served per region (GET .../file)
}

// New serves regions (the saved state's); tasks read and write objects through objects.
func New(store *core.Store, cfg Config, regions map[string]*Region, objects Objects, faults TaskFaults) *Service {
	return &Service{store: store, cfg: cfg, regions: regions, objects: objects, faults: faults}
}

// Wait returns when every running task has stopped (they stop when the store closes).
func (s *Service) Wait() { s.tasks.Wait() }

func (s *Service) isGeneric(name string) bool { return slices.Contains(s.cfg.Generic, name) }

type regionHandler func(w http.ResponseWriter, r *http.Request, reg *Region, rname string)

// handler binds handlers to one region.
func (s *Service) handler(rname string) func(regionHandler) http.HandlerFunc {
	return func(f regionHandler) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { f(w, r, s.regions[rname], rname) }
	}
}

// Route adds region's image API (/v2/...) to mux; the handlers expect requests that identity
// authenticated.
func (s *Service) Route(mux *http.ServeMux, rname string) {
	if s.isGeneric(rname) {
		s.routeGeneric(mux, rname)
	}
	h := s.handler(rname)
	mux.HandleFunc("GET /v2/images", h(s.listImages))
	if !s.isGeneric(rname) {
		mux.HandleFunc("POST /v2/images", func(w http.ResponseWriter, r *http.Request) {
			core.Fail(w, 403, "Images are created by import tasks or server snapshots; POST /v2/images is not allowed.")
		})
		mux.HandleFunc("POST /v2/tasks", h(s.createTask))
		mux.HandleFunc("GET /v2/tasks", h(s.listTasks))
		mux.HandleFunc("GET /v2/tasks/{id}", h(s.getTask))
	}
	mux.HandleFunc("GET /v2/images/{id}", h(s.getImage))
	mux.HandleFunc("GET /v2/images/{id}/file", h(s.downloadImage))
	mux.HandleFunc("PATCH /v2/images/{id}", h(s.patchImage))
	mux.HandleFunc("DELETE /v2/images/{id}", h(s.deleteImage))
	mux.HandleFunc("PUT /v2/images/{id}/tags/{tag}", h(s.putTag))
	mux.HandleFunc("DELETE /v2/images/{id}/tags/{tag}", h(s.deleteTag))
	mux.HandleFunc("GET /v2/images/{id}/members", h(s.listMembers))
	mux.HandleFunc("POST /v2/images/{id}/members", h(s.addMember))
	mux.HandleFunc("GET /v2/images/{id}/members/{member}", h(s.getMember))
	mux.HandleFunc("PUT /v2/images/{id}/members/{member}", h(s.updateMember))
	mux.HandleFunc("DELETE /v2/images/{id}/members/{member}", h(s.deleteMember))
	mux.HandleFunc("GET /v2/schemas/{name}", serveSchema)
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		core.Fail(w, 404, "The resource %s %s could not be found.", r.Method, r.URL.Path)
	})
}

// Versions is Glance's version document: 300 Multiple Choices at the root, 200 at /versions
// (glanceclient asks <endpoint>/versions, and its endpoint here ends in /v2).
func Versions(w http.ResponseWriter, r *http.Request) {
	self := "http://" + r.Host + "/v2/"
	code := http.StatusMultipleChoices
	if strings.HasSuffix(r.URL.Path, "/versions") {
		code = http.StatusOK
	}
	core.WriteJSON(w, code, map[string]any{"versions": []any{
		map[string]any{"id": "v2.9", "status": "CURRENT", "links": []any{map[string]any{"rel": "self", "href": self}}},
	}})
}

// imageReader gives an image's bytes: generated for seed images, from disk for imported ones.
func (s *Service) imageReader(img *Image) io.ReadSeeker {
	if img.Seed != "" {
		return io.NewSectionReader(img.generated(), 0, img.Size)
	}
	return s.store.OpenParts([]core.FilePart{{Rel: img.File, Size: img.Size}})
}
