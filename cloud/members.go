package cloud

import (
	"context"
	"fmt"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
)

// Member is an account an image is shared with, and its decision.
type Member struct {
	ImageID   string    `json:"image_id"`
	MemberID  string    `json:"member_id"`
	Status    string    `json:"status"` // pending, accepted, rejected
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func fromMember(m *members.Member) Member {
	return Member{ImageID: m.ImageID, MemberID: m.MemberID, Status: m.Status, CreatedAt: m.CreatedAt,
		UpdatedAt: m.UpdatedAt}
}

// AddMember shares an image the account owns with another tenant (status pending).
func (c *Client) AddMember(ctx context.Context, region, imageID, member string) (Member, error) {
	sc, err := c.Images(region)
	if err != nil {
		return Member{}, err
	}
	m, err := members.Create(ctx, sc, imageID, member).Extract()
	if err != nil {
		return Member{}, classify(fmt.Sprintf("share image %s in %s with %s", imageID, region, member), err)
	}
	return fromMember(m), nil
}

// GetMember reads one member; the owner or that member may.
func (c *Client) GetMember(ctx context.Context, region, imageID, member string) (Member, error) {
	sc, err := c.Images(region)
	if err != nil {
		return Member{}, err
	}
	m, err := members.Get(ctx, sc, imageID, member).Extract()
	if err != nil {
		return Member{}, classify(fmt.Sprintf("get member %s of image %s in %s", member, imageID, region), err)
	}
	return fromMember(m), nil
}

// ListMembers lists an image's members (a consumer sees only itself).
func (c *Client) ListMembers(ctx context.Context, region, imageID string) ([]Member, error) {
	op := fmt.Sprintf("list members of image %s in %s", imageID, region)
	sc, err := c.Images(region)
	if err != nil {
		return nil, err
	}
	pages, err := members.List(sc, imageID).AllPages(ctx)
	if err != nil {
		return nil, classify(op, err)
	}
	ms, err := members.ExtractMembers(pages)
	if err != nil {
		return nil, classify(op, err)
	}
	out := make([]Member, len(ms))
	for i := range ms {
		out[i] = fromMember(&ms[i])
	}
	return out, nil
}

// UpdateMember sets the calling consumer's decision on an image shared with it.
func (c *Client) UpdateMember(ctx context.Context, region, imageID, status string) (Member, error) {
	sc, err := c.Images(region)
	if err != nil {
		return Member{}, err
	}
	m, err := members.Update(ctx, sc, imageID, c.tenant, members.UpdateOpts{Status: status}).Extract()
	if err != nil {
		return Member{}, classify(
			fmt.Sprintf("set member %s of image %s in %s to %s", c.tenant, imageID, region, status),
			err,
		)
	}
	return fromMember(m), nil
}

// DeleteMember revokes a share of an image the account owns.
func (c *Client) DeleteMember(ctx context.Context, region, imageID, member string) error {
	sc, err := c.Images(region)
	if err != nil {
		return err
	}
	return classify(fmt.Sprintf("remove member %s from image %s in %s", member, imageID, region),
		members.Delete(ctx, sc, imageID, member).ExtractErr())
}
