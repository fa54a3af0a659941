package emulator

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	f, err := ParseFault("kind=rate-limit,region=dfw,service=images,count=5,retry-after=2")
	if err != nil || f.Kind != "rate-limit" || f.Region != "DFW" || f.Service != "images" || f.Count != 5 ||
		f.RetryAfter != 2 {
		t.Fatalf("%+v %v", f, err)
	}
	for _, bad := range []string{"kind=meteor", "kind=error,status=404", "kind=latency", "kind=latency,latency=soon",
		"kind=bandwidth", "kind=error,region=MARS", "kind=error,service=dns", "kind=error,count=-1", "kind=error,color=red", "kind"} {
		if _, err := ParseFault(bad); err == nil {
			t.Errorf("ParseFault(%q) accepted", bad)
		}
	}
}

func TestFaultRateLimit(t *testing.T) {
	e := startEmu(t, func(c *Config) {
		c.Faults = []Fault{{Kind: "rate-limit", Region: "DFW", Service: "images", Count: 2, RetryAfter: 3}}
	})
	s := demo(t, e)
	for i := 0; i < 2; i++ {
		r := s.do("GET", "DFW", "/v2/images", nil)
		wantFault(t, r, 413)
		if r.header.Get("Retry-After") != "3" {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	wantCode(t, s.do("GET", "DFW", "/v2/images", nil), 200)
	wantCode(t, s.do("PUT", "DFW", s.files("c"), nil), 201) // files were never limited
}

func TestFaultErrorsScopedByRegionServiceAndPath(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	if err := e.AddFault(Fault{Kind: "error", Region: "IAD", Service: "files", Method: "PUT", Path: s.files("c") + "/", Count: 3}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.do("PUT", "IAD", s.files("c"), nil), 201) // container PUT is outside the path prefix
	for i := 0; i < 3; i++ {
		wantFault(t, s.do("PUT", "IAD", s.files("c")+"/o", "x"), 503)
	}
	wantCode(t, s.do("PUT", "IAD", s.files("c")+"/o", "x"), 201)
	wantCode(t, s.do("GET", "IAD", "/v2/images", nil), 200)
	e.ClearFaults()
	if err := e.AddFault(Fault{Kind: "error", Status: 500}); err != nil {
		t.Fatal(err)
	}
	wantFault(t, s.do("GET", "HKG", "/v2/images", nil), 500)
	resp, err := http.Post(e.IdentityURL()+"tokens", "application/json", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("identity under an unscoped error fault: %v %v", err, resp.StatusCode)
	}
	resp.Body.Close()
}

func TestFaultLatencyAndBandwidth(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	wantCode(t, s.do("PUT", "LON", s.files("c"), nil), 201)
	if err := e.AddFault(Fault{Kind: "latency", Region: "LON", Latency: "150ms", Count: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	wantCode(t, s.do("GET", "LON", "/v2/images", nil), 200)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("latency fault added only %v", d)
	}
	data := bytes.Repeat([]byte{1}, 256<<10)
	if err := e.AddFault(Fault{Kind: "bandwidth", Region: "LON", Service: "files", BytesPerSecond: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	wantCode(t, s.do("PUT", "LON", s.files("c")+"/o", data), 201)
	up := time.Since(start)
	start = time.Now()
	if got := s.do("GET", "LON", s.files("c")+"/o", nil); !bytes.Equal(got.body, data) {
		t.Fatal("throttled download changed the bytes")
	}
	down := time.Since(start)
	// 256 KiB at 1 MiB/s takes at least a quarter second each way.
	if up < 200*time.Millisecond || down < 200*time.Millisecond {
		t.Fatalf("bandwidth cap not applied: upload %v, download %v", up, down)
	}
}

func TestFaultTaskFailureAndAdminEndpoint(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("exports"), nil), 201)
	body := `{"kind":"task-failure","task_type":"export","image":"demo-web-01","message":"Error code 111: disk on fire","count":1}`
	resp, err := http.Post(e.BaseURL()+"/_emulator/faults", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("add fault: %v %v", err, resp.StatusCode)
	}
	resp.Body.Close()
	resp, _ = http.Post(e.BaseURL()+"/_emulator/faults", "application/json", strings.NewReader(`{"kind":"nope"}`))
	if resp.StatusCode != 400 {
		t.Fatalf("bad fault accepted: %d", resp.StatusCode)
	}
	resp.Body.Close()
	web := s.imageID("DFW", "demo-web-01")
	if tk := s.runTask("DFW", exportBody(web, "exports")); tk["status"] != "failure" ||
		tk["message"] != "Error code 111: disk on fire" {
		t.Fatalf("injected failure: %v", tk)
	}
	if tk := s.runTask("DFW", exportBody(web, "exports")); tk["status"] != "success" {
		t.Fatalf("after the one failure: %v", tk)
	}
	req, _ := http.NewRequest("DELETE", e.BaseURL()+"/_emulator/faults", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("clear: %v %v", err, resp)
	}
	resp.Body.Close()
	// Token lifetime set at run time.
	req, _ = http.NewRequest("PUT", e.BaseURL()+"/_emulator/token-ttl", strings.NewReader(`{"seconds":0.1}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("token ttl: %v %v", err, resp)
	}
	resp.Body.Close()
	short := demo(t, e)
	time.Sleep(200 * time.Millisecond)
	wantFault(t, short.do("GET", "DFW", "/v2/images", nil), 401)
	// DELETE undoes it: new tokens live as long as the emulator was started with.
	req, _ = http.NewRequest("DELETE", e.BaseURL()+"/_emulator/token-ttl", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("token ttl reset: %v %v", err, resp)
	}
	resp.Body.Close()
	fresh := demo(t, e)
	time.Sleep(200 * time.Millisecond)
	if r := fresh.do("GET", "DFW", "/v2/images", nil); r.code != 200 {
		t.Fatalf("after the reset a new token still expires: %d", r.code)
	}
}

// TestStalledListingHoldsNoLock: a container listing whose link stalls after 10 bytes (a client
// that stops reading, a hung network) must not hold the emulator's one lock: other accounts and
// regions keep answering, and Close returns. Before, the listing was written under the lock, so
// one slow reader froze every region for minutes and devstack could not stop.
func TestStalledListingHoldsNoLock(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s, p := demo(t, e), partner(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("c"), nil), 201)
	for i := range 50 {
		wantCode(t, s.do("PUT", "DFW", fmt.Sprintf("%s/object-with-a-long-name-%03d", s.files("c"), i), "x"), 201)
	}
	if err := e.AddFault(Fault{Kind: "stall", Region: "DFW", Service: "files", Method: "GET",
		AfterBytes: 10}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.RegionURL("DFW")+s.files("c"), nil)
	req.Header.Set("X-Auth-Token", s.token)
	stalled := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		stalled <- err
	}()
	time.Sleep(300 * time.Millisecond) // the listing is built and its writer stalls
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		wantCode(t, p.do("GET", "IAD", p.files(""), nil), 204)
		wantCode(t, s.do("HEAD", "LON", s.files(""), nil), 204)
		wantCode(t, s.do("GET", "DFW", "/v2/images?limit=1", nil), 200)
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("other accounts and regions did not answer while one listing stalled")
	}
	closed := make(chan error, 1)
	go func() { closed <- e.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a listing stalled")
	}
	if err := <-stalled; err == nil {
		t.Fatal("the stalled listing ended without an error: it was not stalled")
	}
}
