package emulator

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"testing"
)

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *Config) { c.DataDir = dir }
	e := startEmu(t, cfg)
	s, p := demo(t, e), partner(t, e)
	id := s.imageID("DFW", "demo-web-01")
	wantCode(t, s.do("PATCH", "DFW", "/v2/images/"+id, `[{"op":"add","path":"/kept","value":"yes"}]`,
		"Content-Type", "application/openstack-images-v2.1-json-patch"), 200)
	wantCode(t, s.do("POST", "DFW", "/v2/images/"+id+"/members", `{"member":"100002"}`), 200)
	wantCode(t, p.do("PUT", "DFW", "/v2/images/"+id+"/members/100002", `{"status":"accepted"}`), 200)
	wantCode(t, s.do("PUT", "DFW", s.files("exports"), nil), 201)
	tk := s.runTask("DFW", exportBody(id, "exports"))
	wantCode(t, s.do("PUT", "ORD", s.files("c"), nil), 201)
	wantCode(t, s.do("PUT", "ORD", s.files("c")+"/o", "persisted bytes"), 201)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := startEmu(t, cfg)
	s.e, p.e = e2, e2 // tokens survive too
	if got := s.do("GET", "DFW", "/v2/images/"+id, nil).json(t)["kept"]; got != "yes" {
		t.Fatalf("property after restart: %v", got)
	}
	if st := p.do("GET", "DFW", "/v2/images/"+id+"/members/100002", nil).json(t)["status"]; st != "accepted" {
		t.Fatalf("member after restart: %v", st)
	}
	if got := s.do("GET", "DFW", "/v2/tasks/"+tk["id"].(string), nil).json(t)["status"]; got != "success" {
		t.Fatalf("task after restart: %v", got)
	}
	if got := s.do("GET", "ORD", s.files("c")+"/o", nil); !bytes.Equal(got.body, []byte("persisted bytes")) {
		t.Fatalf("object after restart: %q", got.body)
	}
	if got := s.do("GET", "DFW", s.files("exports")+"/"+id+".vhd", nil); int64(len(got.body)) != 64<<20 {
		t.Fatalf("export after restart: %d bytes", len(got.body))
	}
}

// TestUnfinishedTaskResumesAfterRestart closes the emulator while a task is pending.
func TestUnfinishedTaskResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	e := startEmu(t, func(c *Config) { c.DataDir = dir; c.TaskDuration = 1e9 * 60 })
	s := demo(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("exports"), nil), 201)
	r := s.do("POST", "DFW", "/v2/tasks", exportBody(s.imageID("DFW", "demo-web-01"), "exports"))
	wantCode(t, r, 201)
	_ = e.Close()
	e2 := startEmu(t, func(c *Config) { c.DataDir = dir })
	s.e = e2
	if tk := s.waitTask("DFW", r.json(t)["id"].(string)); tk["status"] != "success" {
		t.Fatalf("resumed task %v", tk)
	}
}

// TestStreamingKeepsHeapFlat streams 1 GiB through PUT and GET; the emulator never holds it.
func TestStreamingKeepsHeapFlat(t *testing.T) {
	e := startEmu(t, func(c *Config) { c.NoSeed = true })
	s := demo(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("big"), nil), 201)
	const size = 1 << 30
	before := heapInUse()
	peak := before
	sample := func() {
		if h := heapInUse(); h > peak {
			peak = h
		}
	}
	src := &countingZeros{left: size, every: 64 << 20, tick: sample}
	up := s.do("PUT", "DFW", s.files("big")+"/obj", src)
	wantCode(t, up, 201)
	resp := s.do("HEAD", "DFW", s.files("big")+"/obj", nil)
	if resp.header.Get("Content-Length") != "1073741824" {
		t.Fatalf("stored size %s", resp.header.Get("Content-Length"))
	}
	n := s.stream("DFW", s.files("big")+"/obj", sample)
	if n != size {
		t.Fatalf("downloaded %d bytes", n)
	}
	sample()
	if grew := int64(peak) - int64(before); grew > 32<<20 {
		t.Fatalf("heap grew by %d MiB streaming 1 GiB", grew>>20)
	}
	t.Logf("heap in use: before %d MiB, peak %d MiB", before>>20, peak>>20)
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// countingZeros yields left zero bytes, calling tick every `every` bytes.
type countingZeros struct {
	left, every, since int64
	tick               func()
}

func (c *countingZeros) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > c.left {
		n = c.left
	}
	clear(p[:n])
	c.left -= n
	if c.since += n; c.since >= c.every {
		c.since = 0
		c.tick()
	}
	return int(n), nil
}

// stream downloads path and discards it, calling tick every 64 MiB; it returns the byte count.
func (s *session) stream(region, path string, tick func()) int64 {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.e.RegionURL(region)+path, nil)
	req.Header.Set("X-Auth-Token", s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var total int64
	for {
		n, err := io.CopyN(io.Discard, resp.Body, 64<<20)
		total += n
		tick()
		if err != nil {
			return total
		}
	}
}
