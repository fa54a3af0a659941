package objectstorage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// readTime is how long a whole GET of path takes.
func readTime(t *testing.T, url string) time.Duration {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Auth-Token", "t1")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return time.Since(start)
}

// TestManifestsArePacedAsSwiftPacesThem follows Swift's dlo and slo middlewares: a DLO's every
// segment past the first After is served at PerSecond, an SLO's only when under UnderSize.
func TestManifestsArePacedAsSwiftPacesThem(t *testing.T) {
	s, srv := newService(t)
	s.throttle = Throttle{After: 2, PerSecond: 2, UnderSize: 1 << 20}
	base := "/v1/MossoCloudFS_t1/c"
	if code, _ := call(t, srv, "t1", "PUT", base, nil); code != 201 {
		t.Fatalf("create container: %d", code)
	}
	small, big := bytes.Repeat([]byte("s"), 1000), bytes.Repeat([]byte("b"), 1<<20)
	var smallRows, bigRows []map[string]any
	for i := range 5 {
		for _, seg := range []struct {
			name string
			data []byte
			rows *[]map[string]any
		}{{fmt.Sprintf("small/%02d", i), small, &smallRows}, {fmt.Sprintf("big/%02d", i), big, &bigRows}} {
			if code, body := call(t, srv, "t1", "PUT", base+"/"+seg.name, seg.data); code != 201 {
				t.Fatalf("put %s: %d %s", seg.name, code, body)
			}
			*seg.rows = append(*seg.rows, map[string]any{"path": "/c/" + seg.name, "size_bytes": len(seg.data)})
		}
	}
	req, _ := http.NewRequest("PUT", srv.URL+base+"/dlo", nil)
	req.Header.Set("X-Auth-Token", "t1")
	req.Header.Set("X-Object-Manifest", "c/small/")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("put DLO: %v %v", resp, err)
	}
	// Five segments, two free: the third waits nothing, the fourth and fifth half a second each.
	if d := readTime(t, srv.URL+base+"/dlo"); d < 900*time.Millisecond {
		t.Fatalf("a DLO of 5 segments read in %v; Swift's pacing would take at least 1 s", d)
	}
	// Segments of 1 MiB are not under rate_limit_under_size: a static manifest of them is not paced.
	bigManifest, _ := json.Marshal(bigRows)
	if code, body := call(t, srv, "t1", "PUT", base+"/big-slo?multipart-manifest=put", bigManifest); code != 201 {
		t.Fatalf("put SLO: %d %s", code, body)
	}
	s.throttle.PerSecond = 0.25 // were it paced, 8 s
	if d := readTime(t, srv.URL+base+"/big-slo"); d > 4*time.Second {
		t.Fatalf("an SLO of 1 MiB segments read in %v: paced, though Swift paces only smaller ones", d)
	}
}
