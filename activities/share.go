package activities

import (
	"context"
	"fmt"

	"github.com/imageflow/imageflow/cloud"
)

// OfferInput offers an image to one member.
type OfferInput struct {
	Region          string `json:"region"`
	ImageID         string `json:"image_id"`
	Member          string `json:"member"`
	ShareWorkflowID string `json:"share_workflow_id"`
	// FactKey names the run in fact ids (default ShareWorkflowID): a share run again announces
	// again, while a retried activity's repeat is dropped by the stream.
	FactKey string `json:"fact_key,omitempty"`
}

// factKey is the prefix of a share's fact ids.
func factKey(key, shareID string) string {
	if key != "" {
		return key
	}
	return shareID
}

// OfferShare adds the member (already added counts) and, while its decision is pending,
// announces share.offered so the consumer's worker can answer. It returns the member's status.
func (a *Activities) OfferShare(ctx context.Context, in OfferInput) (cloud.Member, error) {
	m, err := a.AddMember(ctx, MemberInput{Region: in.Region, ImageID: in.ImageID, Member: in.Member})
	if err != nil || m.Status != "pending" {
		return m, err
	}
	return m, a.PublishFact(
		ctx,
		Fact{Type: FactShareOffered, ID: factKey(in.FactKey, in.ShareWorkflowID) + ":offered:" + in.Member,
			To: in.Member, Data: shareData(a.cloud.Tenant(), in.Region, in.ImageID, in.Member, in.ShareWorkflowID)},
	)
}

// SettleInput settles one member of a share.
type SettleInput struct {
	Region          string `json:"region"`
	ImageID         string `json:"image_id"`
	Member          string `json:"member"`
	ShareWorkflowID string `json:"share_workflow_id"`
	OnReject        string `json:"on_reject"`  // revoke or keep
	OnTimeout       string `json:"on_timeout"` // revoke or keep
	Expired         bool   `json:"expired"`    // the deadline passed: a pending member expires
	FactKey         string `json:"fact_key,omitempty"`
}

// SettleResult is a member's settled state; Status "pending" means nothing was decided yet.
type SettleResult struct {
	Status  string `json:"status"` // accepted, rejected, expired or pending
	Revoked bool   `json:"revoked"`
}

// SettleMember reads the member's decision from the cloud (a signal is only a hint), applies the
// reject or timeout policy, and announces the outcome. Every step is idempotent.
func (a *Activities) SettleMember(ctx context.Context, in SettleInput) (SettleResult, error) {
	m, err := a.GetMember(ctx, MemberInput{Region: in.Region, ImageID: in.ImageID, Member: in.Member})
	if err != nil {
		return SettleResult{}, err
	}
	res := SettleResult{Status: m.Status}
	policy := ""
	switch {
	case m.Status == "rejected":
		policy = in.OnReject
	case m.Status == "pending" && in.Expired:
		res.Status, policy = "expired", in.OnTimeout
	case m.Status == "pending":
		return res, nil
	}
	data := shareData(a.cloud.Tenant(), in.Region, in.ImageID, in.Member, in.ShareWorkflowID)
	if policy == "revoke" {
		err := a.DeleteMember(ctx, MemberInput{Region: in.Region, ImageID: in.ImageID, Member: in.Member})
		if err != nil {
			return res, err
		}
		res.Revoked = true
	}
	id := fmt.Sprintf("%s:%s:%s", factKey(in.FactKey, in.ShareWorkflowID), res.Status, in.Member)
	if err := a.PublishFact(ctx, Fact{Type: FactSharePrefix + res.Status, ID: id, Data: data}); err != nil {
		return res, err
	}
	if res.Revoked {
		return res, a.PublishFact(
			ctx,
			Fact{Type: FactShareRevoked, ID: factKey(in.FactKey, in.ShareWorkflowID) + ":revoked:" + in.Member,
				Data: data},
		)
	}
	return res, nil
}

func shareData(producer, region, imageID, member, shareID string) map[string]any {
	return map[string]any{
		"image_id":          imageID,
		"region":            region,
		"producer":          producer,
		"member":            member,
		"share_workflow_id": shareID,
	}
}

// MemberRoom is the rule that a share fits the cloud's limit of limit members per image,
// counting the members the image has already: a share that cannot add them all is refused
// before it adds any. The event validator and the starter both apply it.
func MemberRoom(existing []cloud.Member, adding []string, limit int) error {
	have := make(map[string]bool, len(existing))
	for _, m := range existing {
		have[m.MemberID] = true
	}
	added := 0
	for _, m := range adding {
		if !have[m] {
			added++
		}
	}
	if len(existing)+added > limit {
		return fmt.Errorf("the image has %d members and the share adds %d more: past the cloud's limit of %d "+
			"members per image; revoke members no longer needed (starter unshare), or share with fewer",
			len(existing), added, limit)
	}
	return nil
}
