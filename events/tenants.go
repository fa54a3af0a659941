package events

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// consumerTenantKey is the consumer metadata naming the tenant a worker's consumer serves.
const consumerTenantKey = "imageflow_tenant"

// Served reports whether a worker's durable consumer reads tenant's commands: its default one
// ("imageflow-<tenant>"), or any consumer whose metadata names the tenant. A consumer outlives
// its worker, so a tenant whose worker is only stopped counts as served: its commands wait for
// it in the stream. The error says the stream's consumers could not be read (a NATS user
// without the permission, say); the answer is then unknown, not no.
func Served(ctx context.Context, st jetstream.Stream, tenant string) (bool, error) {
	_, err := st.Consumer(ctx, "imageflow-"+tenant)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false, err
	}
	lister := st.ListConsumers(ctx)
	for info := range lister.Info() {
		if info.Config.Metadata[consumerTenantKey] == tenant {
			return true, nil
		}
	}
	return false, lister.Err()
}
