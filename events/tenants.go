package events

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consumerTenantKey is the consumer metadata naming the tenant a worker's consumer serves.
const consumerTenantKey = "imageflow_tenant"

// servedTenants caches which tenants have a worker's consumer on the stream.
type servedTenants struct {
	mu      sync.Mutex
	tenants map[string]bool
	read    time.Time
}

// servedFor is how long a reading of the stream's consumers is trusted.
const servedFor = 10 * time.Second

// served reports whether any worker's durable consumer serves tenant. A consumer outlives its
// worker, so a tenant whose worker is only stopped counts as served: its events wait for it.
// When the consumers cannot be read, every tenant counts as served (nothing is dead-lettered
// on a guess).
func (s *servedTenants) served(ctx context.Context, st jetstream.Stream, tenant string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tenants != nil && time.Since(s.read) < servedFor && s.tenants[tenant] {
		return true
	}
	found := map[string]bool{}
	lister := st.ListConsumers(ctx)
	for info := range lister.Info() {
		if t := info.Config.Metadata[consumerTenantKey]; t != "" {
			found[t] = true
		}
	}
	if lister.Err() != nil {
		return true
	}
	s.tenants, s.read = found, time.Now()
	return found[tenant]
}
