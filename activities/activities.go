package activities

import (
	"context"
	"time"

	"github.com/imageflow/imageflow/cloud"
)

// Config tunes the activities; the zero value gets Rackspace-friendly defaults.
type Config struct {
	// TaskPollInterval is the first wait between polls of an export or import task (default
	// 30s, as Rackspace asks; the emulator allows far less). Waits grow to TaskPollMaxInterval.
	TaskPollInterval    time.Duration
	TaskPollMaxInterval time.Duration
	// CopyParallelism, CopyMaxParallelism and CopySegmentSize tune CopyObjectAcrossRegions
	// (see cloud.CopyOptions: zero tunes the parallelism up to 16; segments up to 1 GiB).
	CopyParallelism    int
	CopyMaxParallelism int
	CopySegmentSize    int64
	// CopyVerify re-reads each copy at the target to check the whole object's MD5.
	CopyVerify bool
	// Peers are other clouds or accounts the worker may migrate into, by name (see as).
	Peers map[string]*cloud.Client
	// LineageRangeSize is the range size of incremental copies (default 32 MiB; see cloud.Lineage).
	LineageRangeSize int64
	// StageMinSize is the smallest image an upload stages in the target's object store (see
	// stage); a smaller one streams, since resending it costs less than the staging's extra pass.
	// Zero stages every image a target can stage.
	StageMinSize int64
	// CopyRate and TaskRate (bytes per second) estimate a migration's duration until the worker
	// has measured its own copies and tasks (defaults 50 MiB/s and 20 MiB/s).
	CopyRate, TaskRate float64
	// MaxImportSize is the largest image the cloud's import tasks take (0: no limit): a region
	// that imports by task says so, and a migration refuses a larger image before it exports.
	MaxImportSize int64
	// EtaShift is how far a copy's measured end must move from what its run last heard before
	// the run is told (EtaSignal), or a tenth of the time left if more (default 30s).
	EtaShift time.Duration
	// Runs starts the runs a job hands its leftovers to (Conclude): the worker's Temporal client.
	Runs RunStarter
}

// Rates assumed until measured: a cross-region copy's, and an export or import task's.
const (
	DefaultCopyRate = 50 << 20
	DefaultTaskRate = 20 << 20
)

func (c Config) withDefaults() Config {
	if c.EtaShift <= 0 {
		c.EtaShift = 30 * time.Second
	}
	if c.TaskPollInterval <= 0 {
		c.TaskPollInterval = 30 * time.Second
	}
	if c.TaskPollMaxInterval < c.TaskPollInterval {
		c.TaskPollMaxInterval = max(2*time.Minute, c.TaskPollInterval)
	}
	if c.CopyMaxParallelism <= 0 {
		c.CopyMaxParallelism = cloud.DefaultMaxParallelism
	}
	if c.CopySegmentSize <= 0 {
		c.CopySegmentSize = cloud.DefaultSegmentSize
	}
	if c.LineageRangeSize <= 0 {
		c.LineageRangeSize = cloud.DefaultRangeSize
	}
	if c.CopyRate <= 0 {
		c.CopyRate = DefaultCopyRate
	}
	if c.TaskRate <= 0 {
		c.TaskRate = DefaultTaskRate
	}
	return c
}

// Activities is registered with a worker; each exported method is one activity.
type Activities struct {
	cloud *cloud.Client
	cfg   Config
	facts FactPublisher
	meter *meter
}

// New returns activities acting as the client's account. facts may be nil (facts are dropped).
func New(c *cloud.Client, cfg Config, facts FactPublisher) *Activities {
	cfg = cfg.withDefaults()
	return &Activities{cloud: c, cfg: cfg, facts: facts, meter: newMeter(cfg.CopyRate, cfg.TaskRate)}
}

// Account is who the worker acts as.
type Account struct {
	Tenant        string `json:"tenant"`
	DefaultRegion string `json:"default_region"`
}

// Authenticate reports the account the worker's credentials belong to (never the credentials).
func (a *Activities) Authenticate(ctx context.Context) (Account, error) {
	return Account{Tenant: a.cloud.Tenant(), DefaultRegion: a.cloud.DefaultRegion()}, nil
}
