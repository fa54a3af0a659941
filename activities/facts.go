package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
)

// The facts imageflow announces (imageflow.evt.<tenant>.<type>), and the one command a workflow
// sends (a consumer's decision, to the producer's imageflow.cmd.<producer>.member-status.<member>).
// Every publisher and reader names them from here; events.Subjects spells the subjects.
const (
	FactMigrationStarted         = "migration.started"
	FactMigrationTargetCompleted = "migration.target-completed"
	FactMigrationCompleted       = "migration.completed"
	FactMigrationFailed          = "migration.failed"
	FactShareOffered             = "share.offered"
	FactShareRevoked             = "share.revoked"
	// FactSharePrefix + a member's settled status (accepted, rejected, expired) is its fact.
	FactSharePrefix = "share."
	// CommandMemberStatus is published like a fact, to the producer's worker (Fact.Tenant).
	CommandMemberStatus = "cmd.member-status"
)

// Fact is a lifecycle event an activity publishes (imageflow.evt.<tenant>.<Type>). ID
// deduplicates it.
type Fact struct {
	Type string         `json:"type"` // e.g. migration.completed, share.offered; cmd.* for commands
	ID   string         `json:"id"`
	Data map[string]any `json:"data"`
	// Tenant routes a command to the worker of that account (the producer, for member-status);
	// empty means the publishing worker's own account.
	Tenant string `json:"tenant,omitempty"`
	// To addresses a share.offered fact to the member whose worker may accept it.
	To string `json:"to,omitempty"`
}

// FactPublisher delivers facts; the events package implements it over NATS JetStream.
type FactPublisher interface {
	PublishFact(ctx context.Context, f Fact) error
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
