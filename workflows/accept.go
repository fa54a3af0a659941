package workflows

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
)

// AcceptPolicy decides offers: accept when the producer is trusted and the image name matches.
type AcceptPolicy struct {
	TrustedProducers []string `json:"trusted_producers,omitempty"` // empty: trust nobody
	NamePattern      string   `json:"name_pattern,omitempty"`      // shell glob on the image name; empty: any
	// Decision forces accepted or rejected (the starter's accept and reject commands).
	Decision string `json:"decision,omitempty"`
}

// AcceptInput is the consumer side of a share: decide on the offer of ImageID from Producer.
type AcceptInput struct {
	Region   string       `json:"region"`
	ImageID  string       `json:"image_id"`
	Producer string       `json:"producer"`
	Policy   AcceptPolicy `json:"policy"`
	// ShareWorkflowID is the producer's ShareImage run, echoed in the decision so it is signalled.
	ShareWorkflowID string `json:"share_workflow_id,omitempty"`
}

// Normalize rejects a request that cannot be run.
func (in *AcceptInput) Normalize() error {
	if err := normalizeImageRef("accept", &in.Region, in.ImageID); err != nil {
		return err
	}
	switch {
	case in.Producer == "":
		return invalid("accept: producer (the sharing tenant) is required")
	case in.Policy.Decision != "" && in.Policy.Decision != "accepted" && in.Policy.Decision != "rejected":
		return invalid("accept: decision %q is not accepted or rejected", in.Policy.Decision)
	}
	for _, f := range []struct{ name, value string }{{"image_id", in.ImageID}, {"producer", in.Producer},
		{"name_pattern", in.Policy.NamePattern}, {"share_workflow_id", in.ShareWorkflowID}} {
		if err := checkText("accept: "+f.name, f.value, maxNameLen); err != nil {
			return err
		}
	}
	if _, err := path.Match(in.Policy.NamePattern, ""); err != nil {
		return invalid("accept: name_pattern %q is not a valid pattern: %v", in.Policy.NamePattern, err)
	}
	return nil
}

// AcceptWorkflowID is the run for this offer.
// A decision asked for explicitly (the starter's accept and reject) is its own job, so a reject
// after an accept runs.
func AcceptWorkflowID(tenant string, in AcceptInput) string {
	id := key("accept", tenant, strings.ToUpper(in.Region), in.ImageID)
	if in.Policy.Decision != "" {
		id += "-" + in.Policy.Decision
	}
	return id
}

// Narrow returns the policy p allows within the worker's configured policy: an event may make a
// worker more careful, never more trusting. Producers outside the configured list are dropped,
// a name pattern other than the configured one is refused, and an event may force a rejection
// but not an acceptance.
func (p AcceptPolicy) Narrow(configured AcceptPolicy) (AcceptPolicy, error) {
	out := configured
	if len(p.TrustedProducers) > 0 {
		out.TrustedProducers = nil
		for _, t := range p.TrustedProducers {
			if slices.Contains(configured.TrustedProducers, t) {
				out.TrustedProducers = append(out.TrustedProducers, t)
			}
		}
	}
	switch {
	case p.NamePattern != "" && configured.NamePattern != "" && p.NamePattern != configured.NamePattern:
		return out, invalid(
			"accept: name_pattern %q would replace the worker's %q; an event may only narrow the policy",
			p.NamePattern,
			configured.NamePattern,
		)
	case p.NamePattern != "":
		out.NamePattern = p.NamePattern
	}
	switch p.Decision {
	case "":
	case "rejected":
		out.Decision = "rejected"
	default:
		return out, invalid(
			"accept: an event may force a rejection, not %q; acceptance follows the worker's policy",
			p.Decision,
		)
	}
	return out, nil
}

// AcceptResult is the consumer's decision.
type AcceptResult struct {
	Region   string `json:"region"`
	ImageID  string `json:"image_id"`
	Producer string `json:"producer"`
	Member   string `json:"member"`
	Decision string `json:"decision"` // accepted or rejected
	Reason   string `json:"reason"`
}

// AcceptShare finds the pending offer, decides by policy, records the decision as the worker's own
// account, and reports it (member-status) so the producer's ShareImage hears it.
func AcceptShare(ctx workflow.Context, in AcceptInput) (AcceptResult, error) {
	if err := in.Normalize(); err != nil {
		return AcceptResult{}, err
	}
	step := "finding the offer"
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (string, error) { return step, nil }); err != nil {
		return AcceptResult{}, err
	}
	setJobStatus(ctx, JobRunning, fmt.Sprintf("deciding on %s from %s in %s", in.ImageID, in.Producer, in.Region))
	var acct activities.Account
	err := workflow.ExecuteActivity(withActivity(ctx, "who am I", time.Minute), a.Authenticate).Get(ctx, &acct)
	if err != nil {
		return AcceptResult{}, err
	}
	res := AcceptResult{Region: in.Region, ImageID: in.ImageID, Producer: in.Producer, Member: acct.Tenant}
	var offers []cloud.Image
	filter := cloud.ImageFilter{Visibility: "shared", MemberStatus: "all", Owner: in.Producer}
	if err := workflow.ExecuteActivity(withActivity(ctx, "find offers from "+in.Producer, time.Minute), a.ListImages,
		activities.ListImagesInput{Region: in.Region, Filter: filter}).Get(ctx, &offers); err != nil {
		return res, err
	}
	var offer *cloud.Image
	for i := range offers {
		if offers[i].ID == in.ImageID {
			offer = &offers[i]
		}
	}
	if offer == nil {
		setJobStatus(ctx, JobFailed, "no offer found")
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("account %s has no offer of image %s from %s in %s",
				acct.Tenant, in.ImageID, in.Producer, in.Region),
			"NotFound",
			nil,
		)
	}
	res.Decision, res.Reason = decide(in.Policy, in.Producer, offer.Name)
	step = "recording the decision"
	var mem cloud.Member
	uctx := withActivity(ctx, res.Decision+" "+in.ImageID, time.Minute)
	update := activities.UpdateMemberInput{Region: in.Region, ImageID: in.ImageID, Status: res.Decision}
	if err := workflow.ExecuteActivity(uctx, a.UpdateMember, update).Get(ctx, &mem); err != nil {
		return res, err
	}
	step = "reporting the decision"
	// The decision goes to the producer's worker as a member-status command.
	fctx := withActivity(ctx, "report "+res.Decision+" to "+in.Producer, 30*time.Second)
	fact := activities.Fact{
		Type:   activities.CommandMemberStatus,
		ID:     runKey(ctx) + ":" + res.Decision,
		Tenant: in.Producer,
		Data: map[string]any{"image_id": in.ImageID, "region": in.Region, "member": acct.Tenant,
			"status": res.Decision, "share_workflow_id": in.ShareWorkflowID},
	}
	// An offer made by a migration's share_with has no share run waiting to hear the decision.
	if in.ShareWorkflowID != "" {
		if err := workflow.ExecuteActivity(fctx, a.PublishFact, fact).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("could not report the decision; the producer's poll will see it", "error", err)
		}
	}
	step = "done"
	setJobStatus(ctx, JobSucceeded, fmt.Sprintf("%s %s from %s: %s", res.Decision, offer.Name, in.Producer, res.Reason))
	return res, nil
}

// decide applies the policy to an offer.
func decide(p AcceptPolicy, producer, name string) (decision, reason string) {
	if p.Decision != "" {
		return p.Decision, "decided by the operator"
	}
	trusted := false
	for _, t := range p.TrustedProducers {
		if t == producer {
			trusted = true
		}
	}
	if !trusted {
		return "rejected", fmt.Sprintf("producer %s is not in the trusted list", producer)
	}
	if p.NamePattern != "" {
		if ok, _ := path.Match(p.NamePattern, name); !ok {
			return "rejected", fmt.Sprintf("image name %q does not match %q", name, p.NamePattern)
		}
	}
	return "accepted", fmt.Sprintf("producer %s is trusted", producer)
}
