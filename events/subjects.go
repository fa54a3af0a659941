package events

import (
	"fmt"
	"strings"
)

// Subjects spells every subject imageflow uses, under a prefix (default "imageflow"). Each
// carries the account it belongs to, so NATS permissions can keep accounts apart (see
// AccountsConfig) and each worker's consumer reads its own account's events only:
//
//	<prefix>.cmd.<tenant>.<verb>                     a command for tenant's worker
//	<prefix>.cmd.<producer>.member-status.<member>   a member's decision, for the producer's worker
//	<prefix>.evt.<tenant>.<fact>                     a fact tenant's worker announces
//	<prefix>.evt.<producer>.share.offered.<member>   an offer, announced by the producer, for the member
//	<prefix>.dlq.<tenant>.<stream seq>               the dead letter of an event tenant's worker judged
//
// The trailing account of a member-status or an offer names the other side, so the subject
// itself says who sent a decision and to whom an offer goes: a worker's permissions let it
// publish only subjects that name it in that place.
type Subjects struct{ Prefix string }

// Cmd is the subject of command verb for tenant's worker.
func (s Subjects) Cmd(tenant, verb string) string { return s.Prefix + ".cmd." + tenant + "." + verb }

// MemberStatus is the subject of member's decision on producer's offer.
func (s Subjects) MemberStatus(producer, member string) string {
	return s.Cmd(producer, CmdMemberStatus) + "." + member
}

// Evt is the subject of fact announced by tenant's worker.
func (s Subjects) Evt(tenant, fact string) string { return s.Prefix + ".evt." + tenant + "." + fact }

// Offer is the subject of producer's share.offered fact addressed to member.
func (s Subjects) Offer(producer, member string) string {
	return s.Evt(producer, EvtShareOffered) + "." + member
}

// Commands matches every command for tenant's worker: its consumer's filter.
func (s Subjects) Commands(tenant string) string { return s.Prefix + ".cmd." + tenant + ".>" }

// OffersTo matches every offer addressed to member, whoever made it: the filter of the
// consumer a worker with auto-accept reads.
func (s Subjects) OffersTo(member string) string { return s.Evt("*", EvtShareOffered) + "." + member }

// Facts matches every fact tenant's worker announces.
func (s Subjects) Facts(tenant string) string { return s.Prefix + ".evt." + tenant + ".>" }

// AllFacts matches every account's fact of one kind (tests and dashboards).
func (s Subjects) AllFacts(fact string) string { return s.Evt("*", fact) }

// AllOffers matches every offer, from any producer to any member (tests and dashboards).
func (s Subjects) AllOffers() string { return s.AllFacts(EvtShareOffered) + ".*" }

// DLQ matches every dead letter.
func (s Subjects) DLQ() string { return s.Prefix + ".dlq.>" }

// DeadLetters matches the dead letters of events tenant's worker judged.
func (s Subjects) DeadLetters(tenant string) string { return s.Prefix + ".dlq." + tenant + ".>" }

// DeadLetter is the subject of the dead letter for the stream's message seq, judged by
// tenant's worker (seq 0: unknown). One subject per message is what makes a dead letter
// impossible to suppress: the bridge publishes it only while the subject is empty, instead of
// trusting a message id that any publisher could send first into the stream's shared duplicate
// window. A sender that knows its event's sequence (the publish acknowledgement gives it) finds
// the dead letter by subject.
func (s Subjects) DeadLetter(tenant string, seq uint64) string {
	if seq == 0 {
		return s.Prefix + ".dlq." + tenant + ".unsequenced"
	}
	return fmt.Sprintf("%s.dlq.%s.%d", s.Prefix, tenant, seq)
}

// Route is what a subject says: whose it is, what it carries, and the other side's account.
type Route struct {
	// Command is true for <prefix>.cmd.*, false for facts.
	Command bool
	// Tenant is the account the subject belongs to: the commanded or the announcing worker's.
	Tenant string
	// Name is the verb or fact, e.g. "migrate", "member-status", "share.offered".
	Name string
	// Other is the member of a member-status or an offer ("" otherwise).
	Other string
}

// Type is the CloudEvents type of the route: imageflow.cmd.<verb> or imageflow.evt.<fact>.
func (r Route) Type() string {
	if r.Command {
		return "imageflow.cmd." + r.Name
	}
	return "imageflow.evt." + r.Name
}

// Parse reads a command or fact subject; the error says why it is not one.
func (s Subjects) Parse(subject string) (Route, error) {
	rest, ok := strings.CutPrefix(subject, s.Prefix+".")
	kind, rest, _ := strings.Cut(rest, ".")
	tenant, name, _ := strings.Cut(rest, ".")
	if !ok || (kind != "cmd" && kind != "evt") || tenant == "" || name == "" {
		return Route{}, fmt.Errorf("subject %s is not <prefix>.cmd.<tenant>.<verb> or <prefix>.evt.<tenant>.<fact>",
			subject)
	}
	r := Route{Command: kind == "cmd", Tenant: tenant, Name: name}
	switch {
	case r.Command && strings.HasPrefix(name, CmdMemberStatus+"."):
		r.Name, r.Other = CmdMemberStatus, strings.TrimPrefix(name, CmdMemberStatus+".")
	case !r.Command && strings.HasPrefix(name, EvtShareOffered+"."):
		r.Name, r.Other = EvtShareOffered, strings.TrimPrefix(name, EvtShareOffered+".")
	}
	if strings.Contains(r.Other, ".") || (r.Command && strings.Contains(r.Name, ".")) {
		return Route{}, fmt.Errorf("subject %s has tokens past its verb or its member", subject)
	}
	return r, nil
}
