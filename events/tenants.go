package events

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

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

// UnreadCommands are commands in the stream for an account no worker's consumer reads: a
// mistyped tenant in a raw publish, or an account whose worker was never started. They wait
// unread until the stream's max age removes them.
type UnreadCommands struct {
	// Tenant is the account the subjects name.
	Tenant string `json:"tenant"`
	// Subjects are the command subjects holding messages, with how many each holds.
	Subjects map[string]uint64 `json:"subjects"`
	// Messages is their sum.
	Messages uint64 `json:"messages"`
}

// Unread lists the accounts whose commands sit in the stream with no consumer to read them, by
// tenant. It reads every command subject's count and every consumer, so it needs the operator's
// view of the stream (a tenant's user is not allowed it, and the error says so).
func Unread(ctx context.Context, st jetstream.Stream, s Subjects) ([]UnreadCommands, error) {
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(s.Prefix+".cmd.>"))
	if err != nil {
		return nil, fmt.Errorf("read the stream's command subjects: %w", err)
	}
	served := map[string]bool{}
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		served[strings.TrimPrefix(ci.Name, "imageflow-")] = true
		if t := ci.Config.Metadata[consumerTenantKey]; t != "" {
			served[t] = true
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("list the stream's consumers: %w", err)
	}
	byTenant := map[string]*UnreadCommands{}
	for subject, n := range info.State.Subjects {
		r, err := s.Parse(subject)
		tenant := r.Tenant
		if err != nil { // a subject no worker could route: its own entry, named as it is
			tenant = subject
		} else if served[tenant] {
			continue
		}
		u := byTenant[tenant]
		if u == nil {
			u = &UnreadCommands{Tenant: tenant, Subjects: map[string]uint64{}}
			byTenant[tenant] = u
		}
		u.Subjects[subject] += n
		u.Messages += n
	}
	var out []UnreadCommands
	for _, t := range slices.Sorted(maps.Keys(byTenant)) {
		out = append(out, *byTenant[t])
	}
	return out, nil
}
