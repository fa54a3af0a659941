package activities

import (
	"context"
	"fmt"

	"github.com/imageflow/imageflow/cloud"
)

// MemberInput names a member of an image.
type MemberInput struct {
	Region  string `json:"region"`
	ImageID string `json:"image_id"`
	Member  string `json:"member"`
}

// AddMember shares the image with Member; a member already added counts as done and its current
// status is returned.
func (a *Activities) AddMember(ctx context.Context, in MemberInput) (cloud.Member, error) {
	m, err := a.cloud.AddMember(ctx, in.Region, in.ImageID, in.Member)
	if cloud.IsConflict(err) {
		m, err = a.cloud.GetMember(ctx, in.Region, in.ImageID, in.Member)
	}
	if cloud.KindOf(err) == cloud.Forbidden {
		return m, temporalError(err, fmt.Sprintf("image %s in %s cannot take members (the cloud answered 403): "+
			"an image takes members only when its visibility is shared; set it (starter update --region %s "+
			"--image %s --visibility shared) and share again", in.ImageID, in.Region, in.Region, in.ImageID))
	}
	if cloud.IsNotFound(err) {
		return m, temporalError(
			err,
			fmt.Sprintf(
				"image %s is not owned by account %s in %s, so it cannot be shared",
				in.ImageID,
				a.cloud.Tenant(),
				in.Region,
			),
		)
	}
	return m, temporalError(err, "")
}

// GetMember reads one member's status.
func (a *Activities) GetMember(ctx context.Context, in MemberInput) (cloud.Member, error) {
	m, err := a.cloud.GetMember(ctx, in.Region, in.ImageID, in.Member)
	return m, temporalError(err, "")
}

// ListMembers lists an image's members.
func (a *Activities) ListMembers(ctx context.Context, in ImageRef) ([]cloud.Member, error) {
	ms, err := a.cloud.ListMembers(ctx, in.Region, in.ImageID)
	return ms, temporalError(err, "")
}

// UpdateMemberInput is the consumer's decision on an image shared with its account.
type UpdateMemberInput struct {
	Region  string `json:"region"`
	ImageID string `json:"image_id"`
	Status  string `json:"status"` // accepted, rejected, pending
}

// UpdateMember records the worker's own account's decision; it can never decide for another.
func (a *Activities) UpdateMember(ctx context.Context, in UpdateMemberInput) (cloud.Member, error) {
	m, err := a.cloud.UpdateMember(ctx, in.Region, in.ImageID, in.Status)
	if cloud.IsNotFound(err) {
		return m, temporalError(
			err,
			fmt.Sprintf("image %s in %s is not shared with account %s", in.ImageID, in.Region, a.cloud.Tenant()),
		)
	}
	return m, temporalError(err, "")
}

// DeleteMember revokes a share; a member already gone counts as done.
func (a *Activities) DeleteMember(ctx context.Context, in MemberInput) error {
	err := a.cloud.DeleteMember(ctx, in.Region, in.ImageID, in.Member)
	if cloud.IsNotFound(err) {
		if _, gerr := a.cloud.GetImage(ctx, in.Region, in.ImageID); gerr == nil {
			return nil
		}
	}
	return temporalError(err, "")
}
