package emulator

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"
)

// state is everything the emulator remembers; it is saved whole as JSON after each change.
type state struct {
	Regions map[string]*region `json:"regions"`
	Tokens  map[string]*token  `json:"tokens"`
}

type token struct {
	Tenant  string    `json:"tenant"`
	Expires time.Time `json:"expires"`
}

type region struct {
	Images map[string]*image `json:"images"`
	Tasks  map[string]*task  `json:"tasks"`
	// Files is tenant -> container name -> container.
	Files map[string]map[string]*container `json:"files"`
}

type image struct {
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
	Members         map[string]*member `json:"members"`
	// Seed names generated content; File names an imported image's bytes under the data folder.
	Seed string `json:"seed,omitempty"`
	File string `json:"file,omitempty"`
	// Overlays are the changes of a snapshot made from a seeded one (see Snapshot).
	Overlays []overlay `json:"overlays,omitempty"`
}

type member struct {
	MemberID  string    `json:"member_id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type task struct {
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
}

type container struct {
	Name      string             `json:"name"`
	CreatedAt time.Time          `json:"created_at"`
	Objects   map[string]*object `json:"objects"`
}

type object struct {
	Name         string            `json:"name"`
	Size         int64             `json:"size"`
	ETag         string            `json:"etag"`
	ContentType  string            `json:"content_type"`
	LastModified time.Time         `json:"last_modified"`
	Meta         map[string]string `json:"meta,omitempty"`
	// Manifest is a DLO's "<container>/<prefix>"; SLO lists a static manifest's segments.
	Manifest string       `json:"manifest,omitempty"`
	SLO      []sloSegment `json:"slo,omitempty"`
	// File is the bytes' path relative to the data folder (empty for manifests).
	File string `json:"file,omitempty"`
}

type sloSegment struct {
	Path string `json:"path"`
	ETag string `json:"etag"`
	Size int64  `json:"size_bytes"`
}

func newState() *state {
	st := &state{Regions: map[string]*region{}, Tokens: map[string]*token{}}
	st.fill()
	return st
}

// fill makes every map a loaded state may lack, so handlers never meet a nil map.
func (st *state) fill() {
	if st.Regions == nil {
		st.Regions = map[string]*region{}
	}
	if st.Tokens == nil {
		st.Tokens = map[string]*token{}
	}
	for _, name := range Regions {
		if st.Regions[name] == nil {
			st.Regions[name] = &region{}
		}
	}
	for _, r := range st.Regions {
		if r.Images == nil {
			r.Images = map[string]*image{}
		}
		if r.Tasks == nil {
			r.Tasks = map[string]*task{}
		}
		if r.Files == nil {
			r.Files = map[string]map[string]*container{}
		}
		for _, img := range r.Images {
			if img.Props == nil {
				img.Props = map[string]string{}
			}
			if img.Members == nil {
				img.Members = map[string]*member{}
			}
			if img.Tags == nil {
				img.Tags = []string{}
			}
		}
		for _, cs := range r.Files {
			for _, c := range cs {
				if c.Objects == nil {
					c.Objects = map[string]*object{}
				}
			}
		}
	}
}

// newID returns a random version-4 UUID.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return formatUUID(b, 4)
}

// stableID derives a UUID from a name, so seed images keep their ids across runs.
func stableID(name string) string {
	return formatUUID(md5.Sum([]byte(name)), 3)
}

func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// now is second-resolution UTC, as Glance reports timestamps.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }
