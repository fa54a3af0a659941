package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/imageflow/imageflow/cloud"
)

// imageIDForm is Glance's image id: a UUID. Anything else given as --image is taken as a name.
var imageIDForm = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// resolveImage turns --image given as a name into the id of the one image of this account with
// that name in region, before anything starts, by either path (--via temporal or nats): a name
// that matches none, or several, is refused here with the candidates rather than left to fail
// in a run. An id is left as it is (the run checks it, as it checks the image is exportable).
// Without a configured account (only --tenant) there is nothing to look in, and the worker
// decides.
func (a *app) resolveImage(ctx context.Context, region string, ref *string) error {
	if *ref == "" || imageIDForm.MatchString(*ref) {
		return nil
	}
	cc, err := a.accountCloud(ctx)
	if cc == nil {
		return err
	}
	imgs, err := cc.ListImages(ctx, region, cloud.ImageFilter{Name: *ref, Owner: cc.Tenant()})
	if err != nil {
		return fmt.Errorf("find the image named %q in %s: %w", *ref, region, err)
	}
	switch len(imgs) {
	case 0:
		return usageErr("--image %q is neither an image id nor the name of an image of account %s in %s "+
			"(`starter list --region %s` lists them)", *ref, cc.Tenant(), region, region)
	case 1:
		fmt.Fprintf(a.stderr, "image %q in %s is %s\n", *ref, region, imgs[0].ID)
		*ref = imgs[0].ID
		return nil
	}
	var each []string
	for _, img := range imgs {
		each = append(each, fmt.Sprintf("%s (%s, created %s)", img.ID, img.Status, when(img.CreatedAt)))
	}
	return usageErr("%d images of account %s in %s are named %q; give one by id: %s", len(imgs), cc.Tenant(),
		region, *ref, strings.Join(each, "; "))
}
