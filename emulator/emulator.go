// Package emulator is a multi-region, multi-account Rackspace cloud for tests, demos and first
// tries: Identity v2.0, Cloud Images (Glance v2 with Rackspace additions: members, import and
// export tasks) and Cloud Files (Swift), with fault injection. Each region is its own host, as at
// Rackspace; clients find them through the service catalog.
package emulator

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/imageflow/imageflow/emulator/faults"
	"github.com/imageflow/imageflow/emulator/identity"
	"github.com/imageflow/imageflow/emulator/images"
	"github.com/imageflow/imageflow/emulator/internal/core"
	"github.com/imageflow/imageflow/emulator/objectstorage"
)

// Regions are Rackspace's public-cloud regions, in the order their default ports follow identity's.
var Regions = []string{"DFW", "ORD", "IAD", "LON", "SYD", "HKG"}

// Account is one customer of the emulated cloud.
type Account = identity.Account

// DefaultAccounts are the accounts the emulator serves when none are configured.
func DefaultAccounts() []Account { return identity.DefaultAccounts() }

// LoadAccounts reads a JSON array of accounts from path.
func LoadAccounts(path string) ([]Account, error) { return identity.LoadAccounts(path) }

// Fault is one injected misbehaviour (see package faults).
type Fault = faults.Fault

// ParseFault reads the flag form "kind=rate-limit,region=DFW,service=images,count=5,retry_after=2".
func ParseFault(spec string) (Fault, error) { return faults.Parse(spec, Regions) }

// SnapshotRequest asks for a new snapshot of a seeded image (see images.SnapshotRequest).
type SnapshotRequest = images.SnapshotRequest

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
	// GlanceDownloadRegions are generic regions whose Glance offers the glance-download import
	// (Zed and later): it pulls an image from another region itself, no byte through the client.
	GlanceDownloadRegions []string
	// WebDownloadRegions are generic regions whose Glance offers the web-download import: it
	// fetches a URL itself (a Swift temporary URL of an export, say).
	WebDownloadRegions []string
	// Images are extra snapshots for the first account in its default region, next to DemoImages
	// (tests and benchmarks use them for large images).
	Images []SeedImage
	Logger *slog.Logger
}

// Emulator assembles the cloud: identity, and in each region images and object storage, all
// behind the fault layer, over one store whose state it saves and restores.
type Emulator struct {
	cfg     Config
	dataDir string
	tempDir bool
	log     *slog.Logger
	faults  *faults.Set

	store    *core.Store
	st       *state
	identity *identity.Service
	images   *images.Service
	objects  *objectstorage.Service
	saver    sync.WaitGroup

	closeOnce sync.Once
	srv       *servers
}

// New builds an emulator from cfg, loading state from cfg.DataDir when it has some.
func New(cfg Config) (*Emulator, error) {
	cfg = withDefaults(cfg)
	if err := checkRegions(cfg); err != nil {
		return nil, err
	}
	e := &Emulator{cfg: cfg, log: cfg.Logger}
	fs, err := faults.New(cfg.Faults, e.regionNames())
	if err != nil {
		return nil, err
	}
	e.faults = fs
	if err := e.openDataDir(); err != nil {
		return nil, err
	}
	e.store = core.NewStore(e.dataDir, e.log)
	if e.st, err = e.load(); err != nil {
		return nil, err
	}
	fresh := e.st == nil
	if fresh {
		e.st = newState()
	}
	for _, g := range cfg.GenericRegions {
		e.st.addRegion(g)
	}
	e.assemble()
	if fresh && !cfg.NoSeed {
		e.seed()
	}
	if fresh {
		if err := e.save(); err != nil {
			return nil, err
		}
	}
	e.images.ResumeTasks()
	e.saver.Add(1)
	go e.saveLoop()
	return e, nil
}

// assemble builds the services over the loaded state.
func (e *Emulator) assemble() {
	e.identity = identity.New(e.store, identity.Config{Accounts: e.cfg.Accounts, TokenTTL: e.cfg.TokenTTL,
		URL: e.IdentityURL, Regions: e.catalogRegions}, e.st.Tokens)
	e.objects = objectstorage.New(e.store, e.st.files(), e.st.accountMeta(), e.cfg.MaxObjectSize)
	e.images = images.New(e.store, images.Config{TaskDuration: e.cfg.TaskDuration,
		TaskBytesPerSecond: e.cfg.TaskBytesPerSecond, ExportSegmentSize: e.cfg.ExportSegmentSize,
		MaxImportSize: e.cfg.MaxImportSize, Generic: e.cfg.GenericRegions,
		GlanceDownload: e.cfg.GlanceDownloadRegions, WebDownload: e.cfg.WebDownloadRegions},
		e.st.imageRegions(), e.objects, e.faults)
}

func withDefaults(cfg Config) Config {
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
	return cfg
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
func (e *Emulator) Accounts() []Account { return e.identity.Accounts() }

// Close stops the listeners, waits for running tasks and removes a temporary data folder.
func (e *Emulator) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.store.Close()
		if e.srv != nil {
			err = e.srv.close()
		}
		e.images.Wait()
		e.saver.Wait()
		if serr := e.save(); serr != nil && err == nil {
			err = serr
		}
		if e.tempDir {
			if rerr := os.RemoveAll(e.dataDir); rerr != nil && err == nil {
				err = rerr
			}
		}
	})
	return err
}

// BytesReceived is how many object bytes PUT requests delivered to region since start, counting
// uploads that were cut off (a killed copy's partial segments included).
func (e *Emulator) BytesReceived(region string) int64 { return e.objects.BytesReceived(region) }

// TaskEnds is when task id in region ended and when a client's GET of it first said so, at full
// clock resolution (zero: not yet).
func (e *Emulator) TaskEnds(region, id string) (ended, seen time.Time) {
	return e.images.TaskEnds(region, id)
}

// BytesServed is how many image bytes region's Glance sent to clients since start (image
// downloads; a glance-download between regions sends none).
func (e *Emulator) BytesServed(region string) int64 { return e.images.BytesServed(region) }
