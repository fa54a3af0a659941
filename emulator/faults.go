package emulator

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is one injected misbehaviour. Region and Service ("identity", "images", "files") narrow
// where it applies (empty: everywhere); Method and Path (a prefix) narrow it further. Count is how
// many requests it affects; 0 means every request until the faults are cleared.
type Fault struct {
	Kind    string `json:"kind"` // rate-limit, error, latency, bandwidth, corrupt, task-failure
	Region  string `json:"region,omitempty"`
	Service string `json:"service,omitempty"`
	Method  string `json:"method,omitempty"`
	Path    string `json:"path,omitempty"`
	Count   int    `json:"count,omitempty"`
	// Status is the error kind's answer: 500 or 503 (default 503).
	Status int `json:"status,omitempty"`
	// RetryAfter is the rate-limit kind's Retry-After in seconds (default 1).
	RetryAfter int `json:"retry_after,omitempty"`
	// Latency is added before the answer, e.g. "40ms".
	Latency string `json:"latency,omitempty"`
	// BytesPerSecond caps each request's body and each response's body.
	BytesPerSecond int64 `json:"bytes_per_second,omitempty"`
	// TaskType ("export" or "import") and Image (id or name; empty: any) choose failing tasks;
	// Message is the failure message (default: an unspecified error, code 111).
	TaskType string `json:"task_type,omitempty"`
	Image    string `json:"image,omitempty"`
	Message  string `json:"message,omitempty"`
}

var faultKinds = map[string]bool{"rate-limit": true, "error": true, "latency": true, "bandwidth": true, "corrupt": true,
	"task-failure": true}

func (f *Fault) validate() (time.Duration, error) {
	if !faultKinds[f.Kind] {
		return 0, fmt.Errorf("fault kind %q is not one of rate-limit, error, latency, bandwidth, corrupt, task-failure", f.Kind)
	}
	switch f.Service {
	case "", "identity", "images", "files":
	default:
		return 0, fmt.Errorf("fault service %q is not one of identity, images, files", f.Service)
	}
	if f.Region != "" && !isRegion(f.Region) {
		return 0, fmt.Errorf("fault region %q is not one of %s", f.Region, strings.Join(Regions, ", "))
	}
	if f.Count < 0 {
		return 0, fmt.Errorf("fault count %d is negative", f.Count)
	}
	var lat time.Duration
	switch f.Kind {
	case "error":
		if f.Status == 0 {
			f.Status = 503
		}
		if f.Status < 500 || f.Status > 599 {
			return 0, fmt.Errorf("error fault status %d is not a 5xx code", f.Status)
		}
	case "rate-limit":
		if f.RetryAfter <= 0 {
			f.RetryAfter = 1
		}
	case "latency":
		d, err := time.ParseDuration(f.Latency)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("latency fault needs a positive duration such as \"40ms\", got %q", f.Latency)
		}
		lat = d
	case "bandwidth":
		if f.BytesPerSecond <= 0 {
			return 0, fmt.Errorf("bandwidth fault needs bytes_per_second above 0")
		}
	case "task-failure":
		if f.TaskType != "" && f.TaskType != "export" && f.TaskType != "import" {
			return 0, fmt.Errorf("task-failure task_type %q is not export or import", f.TaskType)
		}
	}
	return lat, nil
}

func isRegion(name string) bool {
	for _, r := range Regions {
		if r == name {
			return true
		}
	}
	return false
}

// ParseFault reads the flag form "kind=rate-limit,region=DFW,service=images,count=5,retry_after=2".
func ParseFault(spec string) (Fault, error) {
	var f Fault
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return f, fmt.Errorf("fault %q: %q is not key=value", spec, kv)
		}
		var err error
		switch strings.ReplaceAll(k, "-", "_") {
		case "kind":
			f.Kind = v
		case "region":
			f.Region = strings.ToUpper(v)
		case "service":
			f.Service = v
		case "method":
			f.Method = strings.ToUpper(v)
		case "path":
			f.Path = v
		case "count":
			f.Count, err = strconv.Atoi(v)
		case "status":
			f.Status, err = strconv.Atoi(v)
		case "retry_after":
			f.RetryAfter, err = strconv.Atoi(v)
		case "latency":
			f.Latency = v
		case "bytes_per_second":
			f.BytesPerSecond, err = strconv.ParseInt(v, 10, 64)
		case "task_type":
			f.TaskType = v
		case "image":
			f.Image = v
		case "message":
			f.Message = v
		default:
			return f, fmt.Errorf("fault %q: unknown key %q", spec, k)
		}
		if err != nil {
			return f, fmt.Errorf("fault %q: %s: %w", spec, k, err)
		}
	}
	if _, err := f.validate(); err != nil {
		return f, fmt.Errorf("fault %q: %w", spec, err)
	}
	return f, nil
}

type activeFault struct {
	Fault
	latency time.Duration
	used    int
}

type faultSet struct {
	mu     sync.Mutex
	faults []*activeFault
}

func newFaultSet(fs []Fault) (*faultSet, error) {
	s := &faultSet{}
	for _, f := range fs {
		if err := s.add(f); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *faultSet) add(f Fault) error {
	lat, err := f.validate()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &activeFault{Fault: f, latency: lat})
	return nil
}

func (s *faultSet) list() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Fault{}
	for _, f := range s.faults {
		if f.Count == 0 || f.used < f.Count {
			out = append(out, f.Fault)
		}
	}
	return out
}

func (s *faultSet) clear() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// take returns the faults that apply to this request and counts them as used.
func (s *faultSet) take(region, service, method, path string) []*activeFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*activeFault
	for _, f := range s.faults {
		if f.Kind == "task-failure" || (f.Count > 0 && f.used >= f.Count) {
			continue
		}
		if (f.Region != "" && f.Region != region) || (f.Service != "" && f.Service != service) ||
			(f.Method != "" && f.Method != method) || (f.Path != "" && !strings.HasPrefix(path, f.Path)) {
			continue
		}
		f.used++
		out = append(out, f)
	}
	return out
}

// taskFailure says whether a task of this type on this image must fail, and with what message.
func (s *faultSet) taskFailure(region, taskType, imageID, imageName string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.Kind != "task-failure" || (f.Count > 0 && f.used >= f.Count) {
			continue
		}
		if (f.Region != "" && f.Region != region) || (f.TaskType != "" && f.TaskType != taskType) ||
			(f.Image != "" && f.Image != imageID && f.Image != imageName) {
			continue
		}
		f.used++
		msg := f.Message
		if msg == "" {
			msg = "Error code 111: unspecified error injected by the emulator"
		}
		return msg, true
	}
	return "", false
}

// wrap applies the matching faults before handing the request to next.
func (s *faultSet) wrap(region, service string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_emulator/") {
			next.ServeHTTP(w, r)
			return
		}
		for _, f := range s.take(region, service, r.Method, r.URL.Path) {
			switch f.Kind {
			case "latency":
				time.Sleep(f.latency)
			case "bandwidth":
				r.Body = &throttledReader{r: r.Body, limit: f.BytesPerSecond, start: time.Now()}
				w = &throttledWriter{ResponseWriter: w, limit: f.BytesPerSecond, start: time.Now()}
			case "corrupt":
				// A bit flipped on the way in: what an MD5 check exists to catch.
				r.Body = &corruptReader{r: r.Body}
			case "rate-limit":
				w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
				fail(w, 413, "Rate limit exceeded, retry after %d seconds.", f.RetryAfter)
				return
			case "error":
				fail(w, f.Status, "The service is temporarily unavailable (injected fault).")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// pace sleeps until sent bytes fit under limit bytes per second since start.
func pace(sent, limit int64, start time.Time) {
	want := time.Duration(float64(sent) / float64(limit) * float64(time.Second))
	if d := want - time.Since(start); d > 0 {
		time.Sleep(d)
	}
}

const paceChunk = 32 << 10

type throttledReader struct {
	r     io.ReadCloser
	limit int64
	start time.Time
	n     int64
}

func (t *throttledReader) Read(p []byte) (int, error) {
	if len(p) > paceChunk {
		p = p[:paceChunk]
	}
	n, err := t.r.Read(p)
	t.n += int64(n)
	pace(t.n, t.limit, t.start)
	return n, err
}

func (t *throttledReader) Close() error { return t.r.Close() }

type throttledWriter struct {
	http.ResponseWriter
	limit int64
	start time.Time
	n     int64
}

func (t *throttledWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := min(len(p), paceChunk)
		n, err := t.ResponseWriter.Write(p[:c])
		written += n
		t.n += int64(n)
		if err != nil {
			return written, err
		}
		pace(t.n, t.limit, t.start)
		p = p[c:]
	}
	return written, nil
}

// adminFaults: GET lists the active faults, POST adds one (JSON body), PUT replaces all (JSON
// array), DELETE clears them.
func (e *Emulator) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, 200, map[string]any{"faults": e.faults.list()})
	case http.MethodPost:
		var f Fault
		if !readJSON(w, r, &f) {
			return
		}
		if err := e.faults.add(f); err != nil {
			fail(w, 400, "%v", err)
			return
		}
		writeJSON(w, 201, map[string]any{"faults": e.faults.list()})
	case http.MethodPut:
		var fs []Fault
		if !readJSON(w, r, &fs) {
			return
		}
		next, err := newFaultSet(fs)
		if err != nil {
			fail(w, 400, "%v", err)
			return
		}
		e.faults.mu.Lock()
		e.faults.faults = next.faults
		e.faults.mu.Unlock()
		writeJSON(w, 200, map[string]any{"faults": e.faults.list()})
	case http.MethodDelete:
		e.faults.clear()
		w.WriteHeader(204)
	default:
		fail(w, 405, "use GET, POST, PUT or DELETE on /_emulator/faults")
	}
}

// AddFault injects a fault at run time.
func (e *Emulator) AddFault(f Fault) error { return e.faults.add(f) }

// Faults lists the injected faults not used up yet.
func (e *Emulator) Faults() []Fault { return e.faults.list() }

// ClearFaults removes every injected fault.
func (e *Emulator) ClearFaults() { e.faults.clear() }

func (e *Emulator) tokenTTL() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.TokenTTL
}

// SetTokenTTL sets the lifetime of tokens issued from now on.
func (e *Emulator) SetTokenTTL(d time.Duration) {
	e.mu.Lock()
	e.cfg.TokenTTL = d
	e.mu.Unlock()
}

// ExpireTokens makes every issued token invalid at once, as if each reached its expiry.
func (e *Emulator) ExpireTokens() {
	e.mu.Lock()
	e.st.Tokens = map[string]*token{}
	e.commit()
	e.mu.Unlock()
}

func (e *Emulator) adminExpireTokens(w http.ResponseWriter, r *http.Request) {
	e.ExpireTokens()
	w.WriteHeader(204)
}

// adminTokenTTL sets the lifetime of new tokens (PUT {"seconds":N}) or restores the one the
// emulator started with (DELETE), so a token-expiry experiment can be undone.
func (e *Emulator) adminTokenTTL(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		e.SetTokenTTL(e.startTTL)
		w.WriteHeader(204)
		return
	}
	var body struct {
		Seconds float64 `json:"seconds"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Seconds <= 0 {
		fail(w, 400, "seconds must be above 0")
		return
	}
	e.SetTokenTTL(time.Duration(body.Seconds * float64(time.Second)))
	w.WriteHeader(204)
}

// corruptReader flips one bit of the first byte it reads.
type corruptReader struct {
	r    io.ReadCloser
	done bool
}

func (c *corruptReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.done {
		p[0] ^= 0x01
		c.done = true
	}
	return n, err
}

func (c *corruptReader) Close() error { return c.r.Close() }
