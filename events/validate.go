package events

import (
	"context"
	"fmt"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/workflows"
)

// CloudValidator checks commands against the cloud with the worker's own activities: a migration
// needs an exportable image of this account, a share an image this account owns.
func CloudValidator(acts *activities.Activities) Validator {
	return func(ctx context.Context, workflow string, input any) error {
		switch in := input.(type) {
		case workflows.MigrateInput:
			_, err := acts.CheckExportable(ctx, activities.ImageRef{Region: in.SourceRegion, ImageID: in.ImageID})
			return rejectIfPermanent(err)
		case workflows.ShareInput:
			img, err := acts.GetImage(ctx, activities.ImageRef{Region: in.Region, ImageID: in.ImageID})
			if err != nil {
				return rejectIfPermanent(err)
			}
			acct, _ := acts.Authenticate(ctx)
			if img.Owner != acct.Tenant {
				return fmt.Errorf("%w: image %s in %s is not owned by account %s, so it cannot be shared", ErrRejected, in.ImageID, in.Region, acct.Tenant)
			}
		}
		return nil
	}
}

// rejectIfPermanent marks non-retryable activity errors as rejections; the rest may pass later.
func rejectIfPermanent(err error) error {
	if err == nil {
		return nil
	}
	if nonRetryable(err) {
		return fmt.Errorf("%w: %s", ErrRejected, plain(err))
	}
	return err
}
