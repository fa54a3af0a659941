package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
)

// cloudState is each member's status as the cloud holds it (pending when unset).
type cloudState map[string]string

func (cs cloudState) get(m string) string {
	if s := cs[m]; s != "" {
		return s
	}
	return "pending"
}

// mockShare answers the share activities the way the real ones behave; pollStatus is each
// member's status as the cloud holds it.
func mockShare(env *testsuite.TestWorkflowEnvironment, c *calls, pollStatus func(member string) string) {
	env.OnActivity(a.OfferShare, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.OfferInput) (cloud.Member, error) {
			c.add("add " + in.Member)
			st := pollStatus(in.Member)
			if st == "pending" {
				c.add("fact share.offered " + in.Member)
			}
			return cloud.Member{MemberID: in.Member, Status: st}, nil
		})
	env.OnActivity(a.SettleMember, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.SettleInput) (activities.SettleResult, error) {
			c.add("poll " + in.Member)
			res := activities.SettleResult{Status: pollStatus(in.Member)}
			policy := ""
			switch {
			case res.Status == "rejected":
				policy = in.OnReject
			case res.Status == "pending" && in.Expired:
				res.Status, policy = "expired", in.OnTimeout
			case res.Status == "pending":
				return res, nil
			}
			if policy == Revoke {
				c.add("revoke " + in.Member)
				res.Revoked = true
			}
			c.add("fact share." + res.Status + " " + in.Member)
			if res.Revoked {
				c.add("fact share.revoked " + in.Member)
			}
			return res, nil
		}).
		Maybe()
}

func shareInput(members ...string) ShareInput {
	return ShareInput{
		Region:       "DFW",
		ImageID:      "img-1",
		Members:      members,
		Deadline:     Duration(48 * time.Hour),
		PollInterval: Duration(6 * time.Hour),
	}
}

func shareResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) map[string]MemberOutcome {
	t.Helper()
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res ShareResult
	_ = env.GetWorkflowResult(&res)
	out := map[string]MemberOutcome{}
	for _, m := range res.Members {
		out[m.Member] = m
	}
	return out
}

// signal delivers a decision after a delay; when cs is given, the cloud records it first, as a
// real consumer's UpdateMember would.
func signal(env *testsuite.TestWorkflowEnvironment, after time.Duration, d MemberDecision, cs cloudState) {
	env.RegisterDelayedCallback(func() {
		if cs != nil {
			cs[d.Member] = d.Status
		}
		env.SignalWorkflow(MemberStatusSignal, d)
	}, after)
}

func TestShareAcceptedBySignal(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	cs := cloudState{}
	mockShare(env, c, cs.get)
	signal(env, time.Hour, MemberDecision{ImageID: "other", Member: "100002", Status: "accepted"}, nil) // ignored
	signal(env, 2*time.Hour, MemberDecision{ImageID: "img-1", Member: "100002", Status: "accepted"}, cs)
	env.ExecuteWorkflow(ShareImage, shareInput("100002"))
	out := shareResult(t, env)
	if o := out["100002"]; o.Status != "accepted" || o.Via != "signal" || o.Revoked {
		t.Fatalf("outcome %+v", o)
	}
	if c.has("fact share.offered 100002") != 1 || c.has("fact share.accepted 100002") != 1 || c.has("poll") != 1 ||
		c.has("revoke") != 0 {
		t.Fatalf("calls %v", c.names)
	}
}

func TestShareRejectedWithRevoke(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	cs := cloudState{}
	mockShare(env, c, cs.get)
	signal(env, time.Hour, MemberDecision{ImageID: "img-1", Member: "100002", Status: "rejected"}, cs)
	signal(env, 2*time.Hour, MemberDecision{ImageID: "img-1", Member: "100003", Status: "accepted"}, cs)
	in := shareInput("100002", "100003")
	in.OnReject = Revoke
	env.ExecuteWorkflow(ShareImage, in)
	out := shareResult(t, env)
	if out["100002"].Status != "rejected" || !out["100002"].Revoked || out["100003"].Status != "accepted" ||
		out["100003"].Revoked {
		t.Fatalf("outcomes %+v", out)
	}
	if c.has("revoke 100002") != 1 || c.has("revoke 100003") != 0 || c.has("fact share.revoked 100002") != 1 {
		t.Fatalf("calls %v", c.names)
	}
}

func TestShareRejectedKept(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	cs := cloudState{}
	mockShare(env, c, cs.get)
	signal(env, time.Hour, MemberDecision{ImageID: "img-1", Member: "100002", Status: "rejected"}, cs)
	env.ExecuteWorkflow(ShareImage, shareInput("100002")) // on_reject defaults to keep
	if o := shareResult(t, env)["100002"]; o.Status != "rejected" || o.Revoked || c.has("revoke") != 0 {
		t.Fatalf("outcome %+v calls %v", o, c.names)
	}
}

func TestShareTimesOut(t *testing.T) {
	for _, policy := range []string{Revoke, Keep} {
		t.Run(policy, func(t *testing.T) {
			env := newEnv(t)
			c := &calls{}
			mockShare(env, c, func(string) string { return "pending" })
			in := shareInput("100002")
			in.OnTimeout = policy
			env.ExecuteWorkflow(ShareImage, in)
			o := shareResult(t, env)["100002"]
			if o.Status != "expired" || o.Revoked != (policy == Revoke) ||
				c.has("revoke") != map[string]int{Revoke: 1, Keep: 0}[policy] {
				t.Fatalf("outcome %+v calls %v", o, c.names)
			}
			// 48h deadline with a 6h backstop: seven polls, then the deadline settles it.
			if n := c.has("poll"); n != 8 || c.has("fact share.expired") != 1 {
				t.Fatalf("%d polls, calls %v", n, c.names)
			}
		})
	}
}

// TestShareSignalAndPollBothArrive: the poll sees the acceptance first; the late signal changes nothing.
func TestShareSignalAndPollBothArrive(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	status := "pending"
	cs := cloudState{}
	mockShare(env, c, func(m string) string {
		if m == "100002" {
			return status
		}
		return cs.get(m)
	})
	env.RegisterDelayedCallback(func() { status = "accepted" }, 5*time.Hour)
	signal(env, 7*time.Hour, MemberDecision{ImageID: "img-1", Member: "100002", Status: "rejected"}, nil) // stale
	in := shareInput("100002", "100003")
	signal(env, 8*time.Hour, MemberDecision{ImageID: "img-1", Member: "100003", Status: "accepted"}, cs)
	env.ExecuteWorkflow(ShareImage, in)
	out := shareResult(t, env)
	if out["100002"].Status != "accepted" || out["100002"].Via != "poll" || out["100003"].Via != "signal" {
		t.Fatalf("outcomes %+v", out)
	}
	if c.has("fact share.accepted") != 2 || c.has("fact share.rejected") != 0 {
		t.Fatalf("calls %v", c.names)
	}
}

// TestShareForgedSignalIsIgnored: a decision the cloud does not confirm changes nothing.
func TestShareForgedSignalIsIgnored(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	mockShare(env, c, cloudState{}.get)
	signal(env, time.Hour, MemberDecision{ImageID: "img-1", Member: "100002", Status: "accepted"}, nil)
	in := shareInput("100002")
	in.OnTimeout = Keep
	env.ExecuteWorkflow(ShareImage, in)
	if o := shareResult(t, env)["100002"]; o.Status != "expired" || c.has("fact share.accepted") != 0 {
		t.Fatalf("a forged acceptance was believed: %+v %v", o, c.names)
	}
}

func TestShareAlreadyAccepted(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	mockShare(env, c, cloudState{"100002": "accepted"}.get)
	env.ExecuteWorkflow(ShareImage, shareInput("100002"))
	if o := shareResult(t, env)["100002"]; o.Status != "accepted" || o.Via != "add" ||
		c.has("fact share.offered") != 0 ||
		c.has("fact share.accepted") != 1 {
		t.Fatalf("outcome %+v calls %v", o, c.names)
	}
}

func TestShareAddFails(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.OfferShare, mock.Anything, mock.Anything).Return(cloud.Member{},
		temporal.NewNonRetryableApplicationError("image img-1 is not owned by account 100001 in DFW, so it cannot be shared", activities.ErrNotFound, nil),
	)
	env.ExecuteWorkflow(ShareImage, shareInput("100002"))
	var ae *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != activities.ErrNotFound ||
		!strings.Contains(err.Error(), "not owned") {
		t.Fatalf("error %v", err)
	}
	for _, bad := range []ShareInput{{Region: "DFW", Members: []string{"1"}}, {ImageID: "x", Region: "MO ON", Members: []string{"1"}},
		{ImageID: "x", Region: "DFW"}, {ImageID: "x", Region: "DFW", Members: []string{"1", "1"}}, {ImageID: "x", Region: "DFW", Members: []string{"1"}, OnTimeout: "shrug"}} {
		if err := bad.Normalize(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// TestShareFailingHalfwayUndoesItsOffers: the cloud refuses one member after others were added
// (its member limit, reached by a share made meanwhile): the run fails, and the members it did
// add are settled as on its deadline, so by default revoked, not left on the image.
func TestShareFailingHalfwayUndoesItsOffers(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	env.OnActivity(a.SettleMember, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.SettleInput) (activities.SettleResult, error) {
			if in.Expired && in.OnTimeout == Revoke {
				c.add("revoke " + in.Member)
				return activities.SettleResult{Status: "expired", Revoked: true}, nil
			}
			return activities.SettleResult{Status: "pending"}, nil
		})
	env.OnActivity(a.OfferShare, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.OfferInput) (cloud.Member, error) {
			if in.Member == "100004" {
				return cloud.Member{}, temporal.NewNonRetryableApplicationError(
					"413: Attempted to add image members past the limit of 128.", activities.ErrInvalid, nil)
			}
			c.add("add " + in.Member)
			return cloud.Member{MemberID: in.Member, Status: "pending"}, nil
		})
	env.ExecuteWorkflow(ShareImage, shareInput("100002", "100003", "100004"))
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "past the limit") {
		t.Fatalf("error %v, want the cloud's refusal", err)
	}
	for _, want := range []string{"add 100002", "add 100003", "revoke 100002", "revoke 100003"} {
		if c.has(want) != 1 {
			t.Errorf("%q %d times in %v, want once", want, c.has(want), c.names)
		}
	}
	if c.has("revoke 100004") != 0 {
		t.Errorf("revoked a member it never added: %v", c.names)
	}
}

func TestAcceptShare(t *testing.T) {
	offer := cloud.Image{ID: "img-1", Name: "web-01", Owner: "100001"}
	cases := []struct {
		name     string
		policy   AcceptPolicy
		decision string
	}{
		{"trusted", AcceptPolicy{TrustedProducers: []string{"100001"}}, "accepted"},
		{"untrusted", AcceptPolicy{TrustedProducers: []string{"100009"}}, "rejected"},
		{"name matches", AcceptPolicy{TrustedProducers: []string{"100001"}, NamePattern: "web-*"}, "accepted"},
		{"name does not match", AcceptPolicy{TrustedProducers: []string{"100001"}, NamePattern: "db-*"}, "rejected"},
		{"operator decides", AcceptPolicy{Decision: "rejected", TrustedProducers: []string{"100001"}}, "rejected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			c := &calls{}
			env.OnActivity(a.Authenticate, mock.Anything).Return(activities.Account{Tenant: "100002"}, nil)
			env.OnActivity(a.ListImages, mock.Anything, mock.Anything).Return([]cloud.Image{offer}, nil)
			env.OnActivity(a.UpdateMember, mock.Anything, mock.Anything).
				Return(func(_ context.Context, in activities.UpdateMemberInput) (cloud.Member, error) {
					c.add("update " + in.Status)
					return cloud.Member{Status: in.Status}, nil
				})
			env.OnActivity(a.PublishFact, mock.Anything, mock.Anything).
				Return(func(_ context.Context, f activities.Fact) error {
					c.add(
						"fact " + f.Type + " " + f.Data["status"].(string) + " " + f.Data["share_workflow_id"].(string),
					)
					return nil
				})
			env.ExecuteWorkflow(
				AcceptShare,
				AcceptInput{
					Region:          "DFW",
					ImageID:         "img-1",
					Producer:        "100001",
					Policy:          tc.policy,
					ShareWorkflowID: "share-x",
				},
			)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			var res AcceptResult
			_ = env.GetWorkflowResult(&res)
			if res.Decision != tc.decision || res.Member != "100002" || res.Reason == "" ||
				c.has("update "+tc.decision) != 1 || c.has("fact cmd.member-status "+tc.decision+" share-x") != 1 {
				t.Fatalf("result %+v calls %v", res, c.names)
			}
		})
	}
	env := newEnv(t)
	env.OnActivity(a.Authenticate, mock.Anything).Return(activities.Account{Tenant: "100002"}, nil)
	env.OnActivity(a.ListImages, mock.Anything, mock.Anything).Return([]cloud.Image{}, nil)
	env.ExecuteWorkflow(AcceptShare, AcceptInput{Region: "DFW", ImageID: "img-1", Producer: "100001"})
	if err := env.GetWorkflowError(); err == nil ||
		!strings.Contains(err.Error(), "has no offer of image img-1 from 100001 in DFW") {
		t.Fatalf("no offer: %v", err)
	}
}

// TestShareCancelled: a cancelled share stops waiting at once (no spin of polls), withdraws the
// offers still pending per the timeout policy, and ends as cancelled.
func TestShareCancelled(t *testing.T) {
	env := newEnv(t)
	c := &calls{}
	mockShare(env, c, func(string) string { return "pending" })
	env.RegisterDelayedCallback(env.CancelWorkflow, 7*time.Hour)
	env.ExecuteWorkflow(ShareImage, shareInput("100002"))
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("error %v, want cancelled", err)
	}
	// One backstop poll at 6h, then the cancel at 7h settles the member as timed out.
	if c.has("poll") != 2 || c.has("revoke 100002") != 1 || c.has("fact share.expired") != 1 {
		t.Fatalf("calls %v", c.names)
	}
}
