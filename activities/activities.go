// Package activities wraps each Cloud Images and Cloud Files call imageflow makes as a Temporal
// activity: one method per call on Activities, which holds the account's cloud client. The
// credentials live in that client, never in activity inputs, results, errors or heartbeats.
package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/imageflow/imageflow/cloud"
)

// Config tunes the activities; the zero value gets Rackspace-friendly defaults.
type Config struct {
	// TaskPollInterval is the first wait between polls of an export or import task (default
	// 30s, as Rackspace asks; the emulator allows far less). Waits grow to TaskPollMaxInterval.
	TaskPollInterval    time.Duration
	TaskPollMaxInterval time.Duration
	// CopyParallelism and CopySegmentSize tune CopyObjectAcrossRegions (defaults 4 and 100 MiB).
	CopyParallelism int
	CopySegmentSize int64
	// CopyVerify re-reads each copy at the target to check the whole object's MD5.
	CopyVerify bool
}

func (c Config) withDefaults() Config {
	if c.TaskPollInterval <= 0 {
		c.TaskPollInterval = 30 * time.Second
	}
	if c.TaskPollMaxInterval < c.TaskPollInterval {
		c.TaskPollMaxInterval = max(2*time.Minute, c.TaskPollInterval)
	}
	if c.CopyParallelism <= 0 {
		c.CopyParallelism = 4
	}
	if c.CopySegmentSize <= 0 {
		c.CopySegmentSize = 100 << 20
	}
	return c
}

// Fact is a lifecycle event an activity publishes (imageflow.evt.<Type>). ID deduplicates it.
type Fact struct {
	Type string         `json:"type"` // e.g. migration.completed, share.offered; cmd.* for commands
	ID   string         `json:"id"`
	Data map[string]any `json:"data"`
	// Tenant routes a command to the worker of that account (the producer, for member-status);
	// empty means the publishing worker's own account.
	Tenant string `json:"tenant,omitempty"`
}

// FactPublisher delivers facts; the events package implements it over NATS JetStream.
type FactPublisher interface {
	PublishFact(ctx context.Context, f Fact) error
}

// Activities is registered with a worker; each exported method is one activity.
type Activities struct {
	cloud *cloud.Client
	cfg   Config
	facts FactPublisher
}

// New returns activities acting as the client's account. facts may be nil (facts are dropped).
func New(c *cloud.Client, cfg Config, facts FactPublisher) *Activities {
	return &Activities{cloud: c, cfg: cfg.withDefaults(), facts: facts}
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

// PublishFact announces a lifecycle fact. It is an activity so a failed publish is retried and
// the fact is never lost; the fact's ID lets the stream drop duplicates.
func (a *Activities) PublishFact(ctx context.Context, f Fact) error {
	if a.facts == nil {
		activity.GetLogger(ctx).Info("no fact publisher configured; fact dropped", "type", f.Type, "id", f.ID)
		return nil
	}
	return a.facts.PublishFact(ctx, f)
}
