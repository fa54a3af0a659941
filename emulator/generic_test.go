package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"testing"
)

// TestGenericRegion: a generic OpenStack region's Glance creates images and takes their data by
// upload or by glance-direct (stage, import); it has no tasks and no object store, and its data
// reads back byte for byte.
func TestGenericRegion(t *testing.T) {
	e := startEmu(t, func(c *Config) { c.GenericRegions = []string{"RegionOne"} })
	s := demo(t, e)
	data := bytes.Repeat([]byte("imageflow"), 100000)
	sum := md5.Sum(data)
	for _, how := range []string{"upload", "glance-direct"} {
		created := s.do("POST", "RegionOne", "/v2/images", map[string]any{"name": how, "disk_format": "raw",
			"container_format": "bare", "app": "x"})
		if created.code != 201 {
			t.Fatalf("%s: create %d %s", how, created.code, created.body)
		}
		id := created.json(t)["id"].(string)
		if how == "upload" {
			if r := s.do("PUT", "RegionOne", "/v2/images/"+id+"/file", data); r.code != 204 {
				t.Fatalf("upload %d %s", r.code, r.body)
			}
		} else {
			if r := s.do("POST", "RegionOne", "/v2/images/"+id+"/import",
				map[string]any{"method": map[string]any{"name": "glance-direct"}}); r.code != 409 {
				t.Fatalf("import before staging: %d %s", r.code, r.body)
			}
			if r := s.do("PUT", "RegionOne", "/v2/images/"+id+"/stage", data); r.code != 204 {
				t.Fatalf("stage %d %s", r.code, r.body)
			}
			if r := s.do("POST", "RegionOne", "/v2/images/"+id+"/import",
				map[string]any{"method": map[string]any{"name": "web-download"}}); r.code != 400 {
				t.Fatalf("web-download: %d %s", r.code, r.body)
			}
			if r := s.do("POST", "RegionOne", "/v2/images/"+id+"/import",
				map[string]any{"method": map[string]any{"name": "glance-direct"}}); r.code != 202 {
				t.Fatalf("import %d %s", r.code, r.body)
			}
		}
		img := s.do("GET", "RegionOne", "/v2/images/"+id, nil).json(t)
		if img["status"] != "active" || img["checksum"] != hex.EncodeToString(sum[:]) ||
			img["os_hash_algo"] != "sha512" {
			t.Fatalf("%s: %v", how, img)
		}
		if got := s.do("GET", "RegionOne", "/v2/images/"+id+"/file", nil); !bytes.Equal(got.body, data) {
			t.Fatalf("%s: data reads back as %d bytes", how, len(got.body))
		}
		if r := s.do("PUT", "RegionOne", "/v2/images/"+id+"/file", data); r.code != 409 {
			t.Fatalf("%s: a second upload got %d", how, r.code)
		}
	}
	if r := s.do("GET", "RegionOne", "/v2/tasks", nil); r.code != 404 {
		t.Fatalf("tasks in a generic region: %d", r.code)
	}
	if r := s.do("GET", "RegionOne", "/v1/MossoCloudFS_100001", nil); r.code != 404 {
		t.Fatalf("object store in a generic region: %d", r.code)
	}
	if r := s.do("POST", "DFW", "/v2/images", map[string]any{"name": "x"}); r.code != 403 {
		t.Fatalf("Rackspace region took an image create: %d", r.code)
	}
}
