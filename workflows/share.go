package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
)

// What to do with a member that rejected the offer or did not answer by the deadline.
const (
	Revoke = "revoke" // delete the member
	Keep   = "keep"   // leave it as it is
)

// ShareInput shares an image of the worker's account with other tenants and waits for them.
type ShareInput struct {
	Region    string   `json:"region"`
	ImageID   string   `json:"image_id"`
	Members   []string `json:"members"`
	Deadline  Duration `json:"deadline,omitempty"`   // how long to wait for decisions (default 72h)
	OnTimeout string   `json:"on_timeout,omitempty"` // revoke (default) or keep
	OnReject  string   `json:"on_reject,omitempty"`  // keep (default) or revoke
	// PollInterval is the backstop poll of member status, in case a decision event is lost
	// (default 1h).
	PollInterval Duration `json:"poll_interval,omitempty"`
}

// normalizeImageRef checks the image a request names: its id present and plain text, its region
// one of the cloud's (made canonical in place). kind prefixes the errors ("share: region ...").
func normalizeImageRef(kind string, region *string, imageID string) error {
	r, err := canonicalRegion(kind+": region", *region)
	*region = r
	switch {
	case imageID == "":
		return invalid("%s: image_id is required", kind)
	case checkText(kind+": image_id", imageID, maxIDLen) != nil:
		return checkText(kind+": image_id", imageID, maxIDLen)
	}
	return err
}

// CheckNotOwner refuses a share with the account that owns the image: the cloud refuses it too,
// but only once the run has started and done other work.
func CheckNotOwner(what, owner string, members []string) error {
	if slices.Contains(members, owner) {
		return invalid("%s: tenant %s is the account the request is for, which owns the image: an image "+
			"is not shared with its own account", what, owner)
	}
	return nil
}

// Normalize fills defaults and rejects a request that cannot be run.
func (in *ShareInput) Normalize() error {
	if err := normalizeImageRef("share", &in.Region, in.ImageID); err != nil {
		return err
	}
	if len(in.Members) == 0 {
		return invalid("share: members needs at least one tenant id")
	}
	if len(in.Members) > MaxMembers {
		return invalid("share: %d members, more than the cloud's limit of %d members per image",
			len(in.Members), MaxMembers)
	}
	seen := map[string]bool{}
	for _, m := range in.Members {
		if seen[m] {
			return invalid("share: member %q is listed twice", m)
		}
		if !tenantID.MatchString(m) {
			return invalid(
				"share: member %q is not a tenant id (a Rackspace account number, or a 32-hex OpenStack project id)",
				m,
			)
		}
		seen[m] = true
	}
	if err := in.Deadline.check("share: deadline"); err != nil {
		return err
	}
	if err := in.PollInterval.check("share: poll_interval"); err != nil {
		return err
	}
	if in.Deadline <= 0 {
		in.Deadline = Duration(72 * time.Hour)
	}
	if in.PollInterval <= 0 {
		in.PollInterval = Duration(time.Hour)
	}
	if in.PollInterval < Duration(MinPollInterval) {
		return invalid("share: poll_interval %s is below the floor of %s (each poll is a call to the cloud)",
			in.PollInterval.D(), MinPollInterval)
	}
	if in.OnTimeout == "" {
		in.OnTimeout = Revoke
	}
	if in.OnReject == "" {
		in.OnReject = Keep
	}
	for _, p := range [][2]string{{"on_timeout", in.OnTimeout}, {"on_reject", in.OnReject}} {
		if p[1] != Revoke && p[1] != Keep {
			return invalid("share: %s %q is not revoke or keep", p[0], p[1])
		}
	}
	return nil
}

// tenantID is a Rackspace account number (no leading zero: "0100002" is not "100002", and
// taking both would let one account appear twice) or a 32-hex OpenStack project id.
var tenantID = regexp.MustCompile(`^([1-9][0-9]{0,19}|[0-9a-f]{32})$`)

// MaxMembers is the cloud's limit on members per image (Glance's image_member_quota, 128 on
// Rackspace): a share past it is refused before any member is added.
const MaxMembers = 128

// MinPollInterval is the floor of a share's backstop poll.
const MinPollInterval = time.Second

// ShareWorkflowID is the run for this request; requests that differ in deadline or policies are
// separate jobs (the hash at the end).
func ShareWorkflowID(tenant string, in ShareInput) string {
	return key("share", tenant, strings.ToUpper(in.Region), in.ImageID, strings.Join(sortedCopy(in.Members), "+"),
		variant(in.Deadline.or(72*time.Hour), orDefault(in.OnTimeout, Revoke), orDefault(in.OnReject, Keep)))
}

// ShareIDPrefix starts every share run id of tenant: a decision event may signal only those.
func ShareIDPrefix(tenant string) string { return "share-" + tenant + "-" }

// MemberDecision is the member-status signal: a consumer accepted or rejected an offer.
type MemberDecision struct {
	ImageID string `json:"image_id"`
	Member  string `json:"member"`
	Status  string `json:"status"` // accepted or rejected
}

// MemberOutcome is one member's final state.
type MemberOutcome struct {
	Member  string `json:"member"`
	Status  string `json:"status"` // accepted, rejected, expired
	Revoked bool   `json:"revoked,omitempty"`
	Via     string `json:"via,omitempty"` // signal, poll or add (already decided when added)
}

// ShareResult is the share's outcome.
type ShareResult struct {
	Region  string          `json:"region"`
	ImageID string          `json:"image_id"`
	Members []MemberOutcome `json:"members"`
}

// ShareStatus answers the status query.
type ShareStatus struct {
	Step    string            `json:"step"`
	Members map[string]string `json:"members"` // member -> pending, accepted, rejected, expired
}

type share struct {
	in      ShareInput
	id      string
	status  ShareStatus
	outcome map[string]*MemberOutcome
}

// ShareImage offers the image to each member, then waits for each member's decision by signal
// (a hint, confirmed against the cloud) with a slow backstop poll, until the deadline; rejected
// and expired members get their policy. Each offer and each settlement is one activity.
func ShareImage(ctx workflow.Context, in ShareInput) (ShareResult, error) {
	if err := in.Normalize(); err != nil {
		return ShareResult{}, err
	}
	s := &share{in: in, id: workflow.GetInfo(ctx).WorkflowExecution.ID,
		status: ShareStatus{Step: "adding members", Members: map[string]string{}}, outcome: map[string]*MemberOutcome{}}
	for _, m := range in.Members {
		s.status.Members[m] = "pending"
	}
	err := workflow.SetQueryHandler(ctx, StatusQuery, func() (ShareStatus, error) { return s.status, nil })
	if err != nil {
		return ShareResult{}, err
	}
	decisions := workflow.GetSignalChannel(ctx, MemberStatusSignal)
	setJobStatus(
		ctx,
		JobRunning,
		fmt.Sprintf("sharing %s in %s with %s", in.ImageID, in.Region, strings.Join(in.Members, ", ")),
	)
	if err := s.offer(ctx); err != nil {
		setJobStatus(ctx, JobFailed, "share failed: "+reason(err))
		return ShareResult{}, err
	}
	s.status.Step = "waiting for decisions"
	setJobStatus(
		ctx,
		JobWaiting,
		fmt.Sprintf("waiting up to %s for %s", in.Deadline.D(), strings.Join(s.pending(), ", ")),
	)
	s.wait(ctx, decisions)
	s.status.Step = "applying policy"
	// A cancelled share stops waiting: members still pending are treated as timed out (by
	// default revoked), on a context the cancellation does not reach.
	cancelled := errors.Is(ctx.Err(), workflow.ErrCanceled)
	sctx, via := ctx, "deadline"
	if cancelled {
		sctx, _ = workflow.NewDisconnectedContext(ctx)
		via = "cancelled"
	}
	for _, m := range s.pending() {
		s.settle(sctx, m, true, via)
	}
	s.status.Step = "done"
	res := ShareResult{Region: in.Region, ImageID: in.ImageID}
	accepted := 0
	for _, m := range in.Members {
		o := s.outcome[m]
		if o == nil { // could not be settled (the cloud kept failing): report it as it stands
			o = &MemberOutcome{Member: m, Status: "pending"}
		}
		res.Members = append(res.Members, *o)
		if o.Status == "accepted" {
			accepted++
		}
	}
	status := JobSucceeded
	if accepted < len(in.Members) {
		status = JobPartial
	}
	if cancelled {
		setJobStatus(sctx, JobCancelled, fmt.Sprintf("cancelled; %d of %d members accepted", accepted, len(in.Members)))
		return res, temporal.NewCanceledError(res)
	}
	setJobStatus(ctx, status, fmt.Sprintf("%d of %d members accepted", accepted, len(in.Members)))
	return res, nil
}

// offer offers the image to every member at once; a member that already decided is settled.
// When an offer fails for good, the offers that went out are settled as if their deadline had
// passed (on_timeout: by default revoked), so a failed share does not leave members behind.
func (s *share) offer(ctx workflow.Context) error {
	futures := make([]workflow.Future, len(s.in.Members))
	for i, m := range s.in.Members {
		futures[i] = workflow.ExecuteActivity(
			withActivity(ctx, "offer "+s.in.ImageID+" to "+m, time.Minute),
			a.OfferShare,
			activities.OfferInput{Region: s.in.Region, ImageID: s.in.ImageID, Member: m, ShareWorkflowID: s.id,
				FactKey: runKey(ctx)},
		)
	}
	var failed error
	var offered []string
	for i, m := range s.in.Members {
		var mem cloud.Member
		if err := futures[i].Get(ctx, &mem); err != nil {
			if failed == nil {
				failed = failWith(err, "share %s in %s with %s", s.in.ImageID, s.in.Region, m)
			}
			continue
		}
		offered = append(offered, m)
		if mem.Status != "pending" {
			s.settle(ctx, m, false, "add")
		}
	}
	if failed != nil {
		s.status.Step = "undoing offers"
		uctx, _ := workflow.NewDisconnectedContext(ctx)
		for _, m := range offered {
			if s.outcome[m] == nil {
				s.settle(uctx, m, true, "failed")
			}
		}
	}
	return failed
}

func (s *share) pending() []string {
	var out []string
	for _, m := range s.in.Members {
		if s.outcome[m] == nil {
			out = append(out, m)
		}
	}
	return out
}

// settle asks the cloud for member's decision and applies the policy; a still-pending member
// stays pending unless expired.
func (s *share) settle(ctx workflow.Context, member string, expired bool, via string) {
	var res activities.SettleResult
	sctx := withActivity(ctx, "settle "+member, time.Minute)
	err := workflow.ExecuteActivity(sctx, a.SettleMember, activities.SettleInput{
		Region: s.in.Region, ImageID: s.in.ImageID, Member: member, ShareWorkflowID: s.id,
		OnReject: s.in.OnReject, OnTimeout: s.in.OnTimeout, Expired: expired, FactKey: runKey(ctx)}).
		Get(ctx, &res)
	if err != nil {
		workflow.GetLogger(ctx).Warn("could not settle a member; the next poll will", "member", member, "error", err)
		return
	}
	if res.Status == "pending" {
		return
	}
	s.outcome[member] = &MemberOutcome{Member: member, Status: res.Status, Revoked: res.Revoked, Via: via}
	s.status.Members[member] = res.Status
}

// wait takes decisions from signals and polls pending members every PollInterval, until all
// have decided or the deadline passes.
func (s *share) wait(ctx workflow.Context, decisions workflow.ReceiveChannel) {
	deadline := workflow.Now(ctx).Add(s.in.Deadline.D())
	for len(s.pending()) > 0 {
		left := deadline.Sub(workflow.Now(ctx))
		if left <= 0 || ctx.Err() != nil {
			return
		}
		tctx, cancelTimer := workflow.WithCancel(ctx)
		timer := workflow.NewTimerWithOptions(
			tctx,
			min(left, s.in.PollInterval.D()),
			workflow.TimerOptions{Summary: "backstop poll of member status"},
		)
		sel := workflow.NewSelector(ctx)
		var signalled *MemberDecision
		sel.AddReceive(decisions, func(c workflow.ReceiveChannel, _ bool) {
			var d MemberDecision
			c.Receive(ctx, &d)
			signalled = &d
		})
		polled := false
		sel.AddFuture(timer, func(workflow.Future) { polled = true })
		sel.Select(ctx)
		if signalled != nil {
			cancelTimer()
			if d := *signalled; d.ImageID == s.in.ImageID && s.status.Members[d.Member] == "pending" {
				s.settle(ctx, d.Member, false, "signal")
			} else {
				workflow.GetLogger(ctx).Warn("ignoring a decision for another image, an unknown member or a settled one",
					"image", d.ImageID, "member", d.Member)
			}
		}
		if polled && workflow.Now(ctx).Before(deadline) {
			for _, m := range s.pending() {
				s.settle(ctx, m, false, "poll")
			}
		}
	}
}

// CheckTenant is the rule for an account id wherever one is named: in a share's members, and in
// the NATS subjects that carry it (where a dot or a wildcard would change the subject's meaning).
func CheckTenant(id string) error {
	if !tenantID.MatchString(id) {
		return fmt.Errorf("tenant %q is not an account id: a Rackspace account number (no leading zero) "+
			"or a 32-character OpenStack project id", truncateID(id))
	}
	return nil
}

func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
