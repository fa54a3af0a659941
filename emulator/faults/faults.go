// Package faults is the emulator's misbehaviour: one layer that every service's requests pass
// through (errors, rate limits, latency, bandwidth, corruption, stalls and resets), and the
// failures import and export tasks meet.
package faults

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Fault is one injected misbehaviour. Region and Service ("identity", "images", "files") narrow
// where it applies (empty: everywhere); Method and Path (a prefix) narrow it further. Count is how
// many requests it affects; 0 means every request until the faults are cleared.
type Fault struct {
	// Kind is rate-limit, error, latency, bandwidth (per request), link (shared by all the
	// requests it applies to), corrupt, task-failure, stall (stop moving
	// bytes after AfterBytes and hold the connection open, as a link that hangs) or reset (close
	// the connection after AfterBytes, mid-body).
	Kind    string `json:"kind"`
	Region  string `json:"region,omitempty"`
	Service string `json:"service,omitempty"`
	Method  string `json:"method,omitempty"`
	Path    string `json:"path,omitempty"`
	Count   int    `json:"count,omitempty"`
	// Status is the error kind's answer: 500 or 503 (default 503).
	Status int `json:"status,omitempty"`
	// RetryAfter is the rate-limit kind's Retry-After in seconds (default 1).
	RetryAfter int `json:"retry_after,omitempty"`
	// RequestsPerSecond, for the rate-limit kind, is the rate it allows: requests within it pass
	// (a token bucket holding one second's worth), only those beyond it are refused, as a cloud's
	// API limit does. 0 refuses every request the fault applies to. The rate-limit kind answers
	// Status 413 (Rackspace's, the default) or 429.
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	// Passed and Refused count a rated rate-limit's requests so far; the emulator sets them in
	// its list of faults and ignores them in a request.
	Passed  int64 `json:"passed,omitempty"`
	Refused int64 `json:"refused,omitempty"`
	// Latency is added before the answer, e.g. "40ms".
	Latency string `json:"latency,omitempty"`
	// BytesPerSecond caps each request's body and each response's body (bandwidth), or all the
	// bodies the fault applies to together (link: one link's capacity, shared by its connections).
	BytesPerSecond int64 `json:"bytes_per_second,omitempty"`
	// AfterBytes is where a stall or reset strikes: after this many bytes of the request's body
	// (PUT, POST) or the response's (others).
	AfterBytes int64 `json:"after_bytes,omitempty"`
	// TaskType ("export" or "import") and Image (id or name; empty: any) choose failing tasks;
	// Message is the failure message (default: an unspecified error, code 111).
	TaskType string `json:"task_type,omitempty"`
	Image    string `json:"image,omitempty"`
	Message  string `json:"message,omitempty"`
}

var faultKinds = map[string]bool{"rate-limit": true, "error": true, "latency": true, "bandwidth": true, "link": true,
	"corrupt": true, "task-failure": true, "stall": true, "reset": true}

// validate checks a fault against the emulator's regions (Rackspace's, and any generic ones).
func (f *Fault) validate(regions []string) (time.Duration, error) {
	if !faultKinds[f.Kind] {
		return 0, fmt.Errorf(
			"fault kind %q is not one of rate-limit, error, latency, bandwidth, link, corrupt, task-failure, stall, "+
				"reset",
			f.Kind,
		)
	}
	switch f.Service {
	case "", "identity", "images", "files":
	default:
		return 0, fmt.Errorf("fault service %q is not one of identity, images, files", f.Service)
	}
	if f.Region != "" && !slices.Contains(regions, f.Region) {
		return 0, fmt.Errorf("fault region %q is not one of %s", f.Region, strings.Join(regions, ", "))
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
		if f.Status == 0 {
			f.Status = 413
		}
		if f.Status != 413 && f.Status != 429 {
			return 0, fmt.Errorf("rate-limit fault status %d is not 413 or 429", f.Status)
		}
		if f.RequestsPerSecond < 0 || math.IsNaN(f.RequestsPerSecond) || math.IsInf(f.RequestsPerSecond, 0) {
			return 0, fmt.Errorf("rate-limit fault requests_per_second %v is not a rate", f.RequestsPerSecond)
		}
	case "latency":
		d, err := time.ParseDuration(f.Latency)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("latency fault needs a positive duration such as \"40ms\", got %q", f.Latency)
		}
		lat = d
	case "bandwidth", "link":
		if f.BytesPerSecond <= 0 {
			return 0, fmt.Errorf("%s fault needs bytes_per_second above 0", f.Kind)
		}
	case "stall", "reset":
		if f.AfterBytes < 0 {
			return 0, fmt.Errorf("%s fault after_bytes %d is negative", f.Kind, f.AfterBytes)
		}
	case "task-failure":
		if f.TaskType != "" && f.TaskType != "export" && f.TaskType != "import" {
			return 0, fmt.Errorf("task-failure task_type %q is not export or import", f.TaskType)
		}
	}
	return lat, nil
}

// Parse reads the flag form "kind=rate-limit,region=DFW,service=images,count=5,retry_after=2";
// a region it names must be one of regions.
func Parse(spec string, regions []string) (Fault, error) {
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
		case "requests_per_second":
			f.RequestsPerSecond, err = strconv.ParseFloat(v, 64)
		case "latency":
			f.Latency = v
		case "bytes_per_second":
			f.BytesPerSecond, err = strconv.ParseInt(v, 10, 64)
		case "after_bytes":
			f.AfterBytes, err = strconv.ParseInt(v, 10, 64)
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
	if _, err := f.validate(regions); err != nil {
		return f, fmt.Errorf("fault %q: %w", spec, err)
	}
	return f, nil
}

type activeFault struct {
	Fault
	latency time.Duration
	used    int
	link    *rate.Limiter // a link fault's capacity, shared by every body it slows
	allowed *rate.Limiter // a rated rate-limit's allowance, shared by every request it applies to
	passed  atomic.Int64
	refused atomic.Int64
}

// refuses says whether a rate-limit fault refuses this request, and counts it.
func (f *activeFault) refuses() bool {
	if f.allowed != nil && f.allowed.Allow() {
		f.passed.Add(1)
		return false
	}
	f.refused.Add(1)
	return true
}

type Set struct {
	mu      sync.Mutex
	faults  []*activeFault
	regions []string // a fault may name these
}

// New validates fs against the regions a fault may name.
func New(fs []Fault, regions []string) (*Set, error) {
	s := &Set{regions: regions}
	for _, f := range fs {
		if err := s.Add(f); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Add validates and injects f.
func (s *Set) Add(f Fault) error {
	lat, err := f.validate(s.regions)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Passed, f.Refused = 0, 0
	af := &activeFault{Fault: f, latency: lat}
	if f.Kind == "link" {
		af.link = rate.NewLimiter(rate.Limit(f.BytesPerSecond), paceChunk)
	}
	if f.Kind == "rate-limit" && f.RequestsPerSecond > 0 {
		af.allowed = rate.NewLimiter(rate.Limit(f.RequestsPerSecond), max(1, int(math.Ceil(f.RequestsPerSecond))))
	}
	s.faults = append(s.faults, af)
	return nil
}

// List is the faults not used up yet.
func (s *Set) List() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Fault{}
	for _, f := range s.faults {
		if f.Count == 0 || f.used < f.Count {
			c := f.Fault
			if f.allowed != nil {
				c.Passed, c.Refused = f.passed.Load(), f.refused.Load()
			}
			out = append(out, c)
		}
	}
	return out
}

// Replace puts fs in place of every fault, or changes nothing when one is invalid.
func (s *Set) Replace(fs []Fault) error {
	next, err := New(fs, s.regions)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = next.faults
	s.mu.Unlock()
	return nil
}

// Clear removes every fault.
func (s *Set) Clear() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// take returns the faults that apply to this request and counts them as used.
func (s *Set) take(region, service, method, path string) []*activeFault {
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

// TaskFailure says whether a task of this type on this image must fail, and with what message.
func (s *Set) TaskFailure(region, taskType, imageID, imageName string) (string, bool) {
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
