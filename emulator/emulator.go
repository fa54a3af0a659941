// Package emulator is a multi-region, multi-account Rackspace cloud for tests, demos and first
// tries: Identity v2.0, Cloud Images (Glance v2 with Rackspace additions: members, import and
// export tasks) and Cloud Files (Swift), with fault injection. Each region is its own host, as at
// Rackspace; clients find them through the service catalog.
package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Regions are Rackspace's public-cloud regions, in the order their default ports follow identity's.
var Regions = []string{"DFW", "ORD", "IAD", "LON", "SYD", "HKG"}

// Account is one customer of the emulated cloud.
type Account struct {
	Username      string `json:"username"`
	APIKey        string `json:"api_key"`
	Password      string `json:"password"`
	Tenant        string `json:"tenant"`
	DefaultRegion string `json:"default_region"`
}

// DefaultAccounts are the accounts the emulator serves when none are configured.
func DefaultAccounts() []Account {
	return []Account{
		{Username: "demo", APIKey: "demo-api-key", Password: "demo-password", Tenant: "100001", DefaultRegion: "DFW"},
		{
			Username:      "partner",
			APIKey:        "partner-api-key",
			Password:      "partner-password",
			Tenant:        "100002",
			DefaultRegion: "IAD",
		},
	}
}

// LoadAccounts reads a JSON array of accounts from path.
func LoadAccounts(path string) ([]Account, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read accounts file: %w", err)
	}
	var accts []Account
	if err := json.Unmarshal(b, &accts); err != nil {
		return nil, fmt.Errorf("parse accounts file %s: %w", path, err)
	}
	for i, a := range accts {
		if a.Username == "" || a.Tenant == "" || (a.APIKey == "" && a.Password == "") {
			return nil, fmt.Errorf("accounts file %s: entry %d needs username, tenant and api_key or password", path, i)
		}
	}
	return accts, nil
}

// Config sets up an emulator. The zero value is usable: default accounts, all regions, a
// temporary data folder, one-second tasks.
type Config struct {
	Accounts []Account
	// PublicHost is the host written into catalog URLs; empty means the listener's host.
	PublicHost string
	// DataDir holds object bytes and state.json; empty means a temporary folder removed by Close.
	DataDir string
	// TaskDuration is the fixed part of a task's life before it ends (default 1s): a quarter
	// pending, the rest processing.
	TaskDuration time.Duration
	// TaskBytesPerSecond, when above 0, adds size/rate of processing to every task, so large
	// images take longer as at Rackspace, where exports and imports take minutes to hours.
	TaskBytesPerSecond int64
	// ExportSegmentSize is the size of export segments (default 1,048,576,000 bytes, as Rackspace).
	ExportSegmentSize int64
	// MaxImportSize bounds imported images, physical and virtual (default 160 GB).
	MaxImportSize int64
	// MaxObjectSize bounds one object PUT (default 5 GiB).
	MaxObjectSize int64
	// TokenTTL is the lifetime of new tokens (default 24h).
	TokenTTL time.Duration
	// Faults are injected from the start; more can be set at run time via /_emulator/faults.
	Faults []Fault
	// NoSeed skips the seed images (for tests that want an empty cloud).
	NoSeed bool
	// GenericRegions are regions of a generic OpenStack cloud beside Rackspace's (RegionOne):
	// Glance without Rackspace's tasks, where images are created and their data uploaded, and no
	// object store. They take the ports after the six Rackspace regions'.
	GenericRegions []string
	// SwiftRegions are generic regions that also run an object store (Swift) but, as most
	// OpenStack clouds, no Rackspace-style import and export tasks.
	SwiftRegions []string
	// Images are extra snapshots for the first account in its default region, next to DemoImages
	// (tests and benchmarks use them for large images).
	Images []SeedImage
	Logger *slog.Logger
}

// Emulator holds the whole cloud's state; its handlers serve identity and each region.
type Emulator struct {
	cfg      Config
	startTTL time.Duration // cfg.TokenTTL as configured; /_emulator/token-ttl can change the live one
	dataDir  string
	tempDir  bool
	log      *slog.Logger
	faults   *faultSet

	mu    sync.Mutex
	st    *state
	stats stats
	dirty bool          // the state changed since it was last written (under mu)
	kick  chan struct{} // wakes the saver
	saver sync.WaitGroup

	tasksWG   sync.WaitGroup
	closing   chan struct{}
	closeOnce sync.Once
	srv       *servers
}

// New builds an emulator from cfg, loading state from cfg.DataDir when it has some.
func New(cfg Config) (*Emulator, error) {
	if len(cfg.Accounts) == 0 {
		cfg.Accounts = DefaultAccounts()
	}
	if cfg.TaskDuration == 0 {
		cfg.TaskDuration = time.Second
	}
	if cfg.ExportSegmentSize <= 0 {
		cfg.ExportSegmentSize = 1_048_576_000
	}
	if cfg.MaxImportSize <= 0 {
		cfg.MaxImportSize = 160_000_000_000
	}
	if cfg.MaxObjectSize <= 0 {
		cfg.MaxObjectSize = 5 << 30
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{cfg: cfg, startTTL: cfg.TokenTTL, log: cfg.Logger, closing: make(chan struct{}),
		kick: make(chan struct{}, 1)}
	faults, err := newFaultSet(cfg.Faults, e.regionNames())
	if err != nil {
		return nil, err
	}
	e.faults = faults
	if err := e.openDataDir(); err != nil {
		return nil, err
	}
	loaded, err := e.load()
	if err != nil {
		return nil, err
	}
	if !loaded {
		e.st = newState()
		if !cfg.NoSeed {
			e.seed()
		}
		if err := e.save(); err != nil {
			return nil, err
		}
	}
	for _, sw := range cfg.SwiftRegions {
		if !slices.Contains(cfg.GenericRegions, sw) {
			return nil, fmt.Errorf("swift region %q: not one of the generic regions", sw)
		}
	}
	for _, g := range cfg.GenericRegions {
		if slices.Contains(Regions, g) || !regionNamePattern.MatchString(g) {
			return nil, fmt.Errorf("generic region %q: not a new region name", g)
		}
		if e.st.Regions[g] == nil {
			e.st.Regions[g] = &region{}
			e.st.fill()
		}
	}
	e.resumeTasks()
	e.saver.Add(1)
	go e.saveLoop()
	return e, nil
}

func (e *Emulator) openDataDir() error {
	if e.cfg.DataDir == "" {
		d, err := os.MkdirTemp("", "imageflow-emulator-*")
		if err != nil {
			return fmt.Errorf("make emulator data folder: %w", err)
		}
		e.dataDir, e.tempDir = d, true
		return nil
	}
	if err := os.MkdirAll(e.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("make emulator data folder: %w", err)
	}
	e.dataDir = e.cfg.DataDir
	return nil
}

// Accounts returns the accounts the emulator serves.
func (e *Emulator) Accounts() []Account { return append([]Account(nil), e.cfg.Accounts...) }

// Close stops the listeners, waits for running tasks and removes a temporary data folder.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.closing)
		if e.srv != nil {
			err = e.srv.close()
		}
		e.tasksWG.Wait()
		e.saver.Wait()
		e.mu.Lock()
		if serr := e.saveLocked(); serr != nil && err == nil {
			err = serr
		}
		e.mu.Unlock()
		if e.tempDir {
			if rerr := os.RemoveAll(e.dataDir); rerr != nil && err == nil {
				err = rerr
			}
		}
	})
	return err
}

const stateFile = "state.json"

func (e *Emulator) load() (bool, error) {
	b, err := os.ReadFile(filepath.Join(e.dataDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read emulator state: %w", err)
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil {
		return false, fmt.Errorf("parse emulator state %s: %w", filepath.Join(e.dataDir, stateFile), err)
	}
	st.fill()
	e.st = st
	return true, nil
}

func (e *Emulator) save() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.saveLocked()
}

// saveLocked writes the whole state atomically (write then rename), so a crash never leaves a
// half-written file behind.
func (e *Emulator) saveLocked() error {
	b, err := json.Marshal(e.st)
	if err != nil {
		return fmt.Errorf("encode emulator state: %w", err)
	}
	tmp := filepath.Join(e.dataDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write emulator state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dataDir, stateFile)); err != nil {
		return fmt.Errorf("write emulator state: %w", err)
	}
	return nil
}

// saveDelay gathers changes into one write of the state. Writing the whole state after every
// change made a burst of N changes cost N writes of a state that grows with N: ten thousand share
// offers took minutes. A crash of the process loses the changes since the last write (this, or
// ten times a write's duration for a large state); Close writes the rest.
const saveDelay = 50 * time.Millisecond

// commit records a mutation made under e.mu; the saver writes it within saveDelay.
func (e *Emulator) commit() {
	e.dirty = true
	select {
	case e.kick <- struct{}{}:
	default: // a write is already due
	}
}

// saveLoop writes the state after changes until Close: at most once per saveDelay, and never
// more than a tenth of the time, since a write costs in proportion to the whole state (a bench
// with ten thousand images spent half a core writing it every 50 ms).
func (e *Emulator) saveLoop() {
	defer e.saver.Done()
	wait := saveDelay
	for {
		select {
		case <-e.closing:
			return
		case <-e.kick:
		}
		select {
		case <-e.closing:
			return
		case <-time.After(wait):
		}
		e.mu.Lock()
		if e.dirty {
			e.dirty = false
			start := time.Now()
			if err := e.saveLocked(); err != nil {
				e.log.Error("save state", "err", err)
			}
			wait = max(saveDelay, 9*time.Since(start))
		}
		e.mu.Unlock()
	}
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
func (e *Emulator) BytesReceived(region string) int64 {
	e.stats.mu.Lock()
	defer e.stats.mu.Unlock()
	return e.stats.bytesIn[region]
}
