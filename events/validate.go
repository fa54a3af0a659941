package events

import (
	"context"
	"fmt"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/workflows"
)

// CloudValidator checks commands against the cloud as the worker's account, with the same rules
// the activities apply: a migration needs an exportable image of this account, a share an image
// this account owns.
func CloudValidator(c *cloud.Client) Validator {
	return func(ctx context.Context, workflow string, input any) error {
		if err := c.CheckRegions(workflows.RegionsOf(input)...); err != nil {
			return fmt.Errorf("%w: %v", ErrRejected, err)
		}
		switch in := input.(type) {
		case workflows.MigrateInput:
			img, err := image(ctx, c, in.SourceRegion, in.ImageID)
			if err != nil {
				return err
			}
			if err := activities.Exportable(img, c.Tenant(), in.SourceRegion); err != nil {
				return fmt.Errorf("%w: %v", ErrRejected, err)
			}
		case workflows.ShareInput:
			img, err := image(ctx, c, in.Region, in.ImageID)
			if err != nil {
				return err
			}
			if img.Owner != c.Tenant() {
				return fmt.Errorf("%w: image %s in %s is not owned by account %s, so it cannot be shared",
					ErrRejected, in.ImageID, in.Region, c.Tenant())
			}
			existing, err := c.ListMembers(ctx, in.Region, in.ImageID)
			if err != nil {
				return err
			}
			if err := activities.MemberRoom(existing, in.Members, workflows.MaxMembers); err != nil {
				return fmt.Errorf("%w: share %s in %s: %v", ErrRejected, in.ImageID, in.Region, err)
			}
		}
		return nil
	}
}

// image reads an image; a failure no retry can fix is a rejection, the rest may pass later.
func image(ctx context.Context, c *cloud.Client, region, id string) (cloud.Image, error) {
	img, err := c.GetImage(ctx, region, id)
	switch kind := cloud.KindOf(err); {
	case err == nil:
		return img, nil
	case kind == cloud.NotFound:
		return img, fmt.Errorf("%w: %s", ErrRejected, activities.ImageNotFound(id, region, c.Tenant()))
	case kind == cloud.Unavailable || kind == cloud.RateLimited || kind == "":
		return img, err
	}
	return img, fmt.Errorf("%w: %v", ErrRejected, err)
}
