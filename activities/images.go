package activities

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/imageflow/imageflow/cloud"
)

// ImageRef names an image in a region.
type ImageRef struct {
	Region  string `json:"region"`
	ImageID string `json:"image_id"`
}

// ListImagesInput filters a listing in one region.
type ListImagesInput struct {
	Region string            `json:"region"`
	Filter cloud.ImageFilter `json:"filter"`
	// Lineages, for ListImageIDs, fills each image's lineage: only a bulk that prunes needs them,
	// and without them ten thousand images take 0.4 MB of the result instead of 0.95.
	Lineages bool `json:"lineages,omitempty"`
}

// ListImages lists the images visible to the account that match the filter.
func (a *Activities) ListImages(ctx context.Context, in ListImagesInput) ([]cloud.Image, error) {
	imgs, err := a.cloud.ListImages(ctx, in.Region, in.Filter)
	return imgs, temporalError(err, "")
}

// Listed is one image of a long listing, reduced to what a bulk carries: its id and, when it
// has one, its server's lineage (instance_uuid). A whole cloud.Image is a kilobyte or two with
// its properties; ten thousand of them would pass the 2 MB Temporal allows an activity's result.
type Listed struct {
	ID      string `json:"id"`
	Lineage string `json:"lineage,omitempty"`
}

// ListImageIDs lists as ListImages does and returns each image as Listed, in the listing's order.
func (a *Activities) ListImageIDs(ctx context.Context, in ListImagesInput) ([]Listed, error) {
	imgs, err := a.cloud.ListImages(ctx, in.Region, in.Filter)
	if err != nil {
		return nil, temporalError(err, "")
	}
	out := make([]Listed, len(imgs))
	for i, img := range imgs {
		out[i] = Listed{ID: img.ID}
		if in.Lineages {
			out[i].Lineage = img.Properties["instance_uuid"]
		}
	}
	return out, nil
}

// GetImage reads an image visible to the account.
func (a *Activities) GetImage(ctx context.Context, in ImageRef) (cloud.Image, error) {
	img, err := a.cloud.GetImage(ctx, in.Region, in.ImageID)
	if cloud.IsNotFound(err) {
		return img, temporalError(err, ImageNotFound(in.ImageID, in.Region, a.cloud.Tenant()))
	}
	return img, temporalError(err, "")
}

// ImageNotFound is how imageflow says an image is not there for an account.
func ImageNotFound(id, region, tenant string) string {
	return fmt.Sprintf("image %s was not found in %s for account %s "+
		"(it does not exist there or is not shared with this account)", id, region, tenant)
}

// CheckExportable returns the image when the account may export it, and otherwise fails at once
// (non-retryable) saying why (see Exportable).
func (a *Activities) CheckExportable(ctx context.Context, in ImageRef) (cloud.Image, error) {
	img, err := a.GetImage(ctx, in)
	if err != nil {
		return img, err
	}
	if err := Exportable(img, a.cloud.Tenant(), in.Region); err != nil {
		return img, nonRetryable(ErrNotExportable, err.Error())
	}
	return img, nil
}

// Exportable is the rule for what tenant may export: its own active snapshots, not Rackspace's
// base images and not images carrying licensed software. The error says which rule failed; the
// activity and the event validator both apply it.
func Exportable(img cloud.Image, tenant, region string) error {
	switch {
	case img.Visibility == "public" || img.Type() == "base":
		return fmt.Errorf("image %s (%s) in %s is a Rackspace base image; only your own snapshots can be exported",
			img.ID, img.Name, region)
	case img.Owner != tenant:
		return fmt.Errorf("image %s (%s) is not owned by account %s in %s (owner %s); ask the owner to migrate it",
			img.ID, img.Name, tenant, region, img.Owner)
	case img.LicenceRestricted():
		return fmt.Errorf(
			"image %s (%s) in %s carries licensed software (com.rackspace__1__options=%s) and cannot be exported",
			img.ID,
			img.Name,
			region,
			img.Properties["com.rackspace__1__options"],
		)
	case img.Status != "active":
		return fmt.Errorf("image %s (%s) in %s is %s, not active", img.ID, img.Name, region, img.Status)
	}
	return nil
}

// UpdateImageInput sets properties and tags on an image; values already equal are left alone,
// so running it twice changes nothing the second time.
type UpdateImageInput struct {
	Region     string            `json:"region"`
	ImageID    string            `json:"image_id"`
	Name       string            `json:"name,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	Remove     []string          `json:"remove,omitempty"`
	Tags       []string          `json:"tags,omitempty"`
	// Visibility, when set, is private, shared or community (public needs an administrator).
	Visibility string `json:"visibility,omitempty"`
}

// UpdateImage applies the changes (see ApplyUpdate).
func (a *Activities) UpdateImage(ctx context.Context, in UpdateImageInput) (cloud.Image, error) {
	img, err := ApplyUpdate(ctx, a.cloud, in)
	if cloud.IsNotFound(err) {
		return img, temporalError(err, ImageNotFound(in.ImageID, in.Region, a.cloud.Tenant()))
	}
	return img, temporalError(err, "")
}

// ApplyUpdate takes the image to the wanted state with one JSON-patch plus one call per new tag,
// leaving alone what is already so. The activity and the starter's update command both use it.
func ApplyUpdate(ctx context.Context, c *cloud.Client, in UpdateImageInput) (cloud.Image, error) {
	img, err := c.GetImage(ctx, in.Region, in.ImageID)
	if err != nil {
		return img, err
	}
	if ops := patchOps(img, in); len(ops) > 0 {
		if img, err = c.PatchImage(ctx, in.Region, in.ImageID, ops); err != nil {
			return img, err
		}
	}
	added := false
	for _, t := range in.Tags {
		if !contains(img.Tags, t) {
			if err := c.AddTag(ctx, in.Region, in.ImageID, t); err != nil {
				return img, err
			}
			added = true
		}
	}
	if added {
		return c.GetImage(ctx, in.Region, in.ImageID)
	}
	return img, nil
}

// patchOps builds the operations that take img to the wanted state, in a stable order.
func patchOps(img cloud.Image, in UpdateImageInput) []cloud.PatchOp {
	var ops []cloud.PatchOp
	if in.Name != "" && in.Name != img.Name {
		ops = append(ops, cloud.PatchOp{Op: "replace", Path: "/name", Value: in.Name})
	}
	if in.Visibility != "" && in.Visibility != img.Visibility {
		ops = append(ops, cloud.PatchOp{Op: "replace", Path: "/visibility", Value: in.Visibility})
	}
	keys := make([]string, 0, len(in.Properties))
	for k := range in.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := in.Properties[k]
		old, ok := img.Properties[k]
		switch {
		case !ok:
			ops = append(ops, cloud.PatchOp{Op: "add", Path: cloud.PropertyPath(k), Value: v})
		case old != v:
			ops = append(ops, cloud.PatchOp{Op: "replace", Path: cloud.PropertyPath(k), Value: v})
		}
	}
	for _, k := range in.Remove {
		if _, ok := img.Properties[k]; ok {
			ops = append(ops, cloud.PatchOp{Op: "remove", Path: cloud.PropertyPath(k)})
		}
	}
	return ops
}

// CustomProperties are the properties a migration carries to the new image: everything but
// Rackspace's own (com.rackspace*, org.openstack*) and those the cloud sets on every image.
func CustomProperties(img cloud.Image) map[string]string {
	out := map[string]string{}
	for k, v := range img.Properties {
		if strings.HasPrefix(k, "com.rackspace") || strings.HasPrefix(k, "org.openstack") ||
			strings.HasPrefix(k, "os_glance_") || cloudOwned[k] {
			continue
		}
		out[k] = v
	}
	return out
}

// imageflow_latest is not carried either: a copy becomes its family's latest only when its
// distribution marks it so.
var cloudOwned = map[string]bool{PropLatest: true, "image_type": true, "instance_uuid": true, "base_image_ref": true,
	"os_type": true, "vm_mode": true, "auto_disk_config": true, "direct_url": true, "virtual_size": true,
	"os_hash_algo": true, "os_hash_value": true, "stores": true}

// FindImageInput looks for an image carrying an exact property value.
type FindImageInput struct {
	Region string `json:"region"`
	Key    string `json:"key"`
	Value  string `json:"value"`
}

// FindImageResult is the image found, if any.
type FindImageResult struct {
	Found bool        `json:"found"`
	Image cloud.Image `json:"image"`
}

// FindImageByProperty finds the account's own image with Key=Value (how a retried migration
// finds the image it already imported). More than one match is a conflict a person must resolve.
func (a *Activities) FindImageByProperty(ctx context.Context, in FindImageInput) (FindImageResult, error) {
	imgs, err := a.cloud.ListImages(
		ctx,
		in.Region,
		cloud.ImageFilter{Owner: a.cloud.Tenant(), Properties: map[string]string{in.Key: in.Value}},
	)
	if err != nil {
		return FindImageResult{}, temporalError(err, "")
	}
	switch len(imgs) {
	case 0:
		return FindImageResult{}, nil
	case 1:
		return FindImageResult{Found: true, Image: imgs[0]}, nil
	}
	ids := make([]string, len(imgs))
	for i, img := range imgs {
		ids[i] = img.ID
	}
	return FindImageResult{}, nonRetryable(
		ErrConflict,
		fmt.Sprintf("%d images in %s carry %s=%s (%s); delete the extra ones",
			len(imgs), in.Region, in.Key, in.Value, strings.Join(ids, ", ")),
	)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// FindImagesInput looks for the account's image with Key=Value in each region.
type FindImagesInput struct {
	Cloud   string   `json:"cloud,omitempty"` // a peer the worker holds; "" for its own
	Regions []string `json:"regions"`
	Key     string   `json:"key"`
	Value   string   `json:"value"`
	// Copy, when set, also takes, in a region without a Key=Value match, a copy of the same
	// source that another request made: one copy per region, whatever request asked for it.
	Copy *CopyMatch `json:"copy,omitempty"`
}

// CopyMatch is what makes an image a copy of a source: its source stamps, its checksum (the
// same bytes), its name (a request for another name is a request for another image), active.
type CopyMatch struct {
	SourceKey, SourceImageID string
	RegionKey, SourceRegion  string
	Checksum, Name           string
}

// FindImagesByProperty is FindImageByProperty over several regions at once; regions without a
// match are absent from the result.
func (a *Activities) FindImagesByProperty(ctx context.Context, in FindImagesInput) (map[string]cloud.Image, error) {
	a, err := a.as(in.Cloud)
	if err != nil {
		return nil, err
	}
	out := map[string]cloud.Image{}
	for _, r := range in.Regions {
		res, err := a.FindImageByProperty(ctx, FindImageInput{Region: r, Key: in.Key, Value: in.Value})
		if err != nil {
			return nil, err
		}
		if res.Found {
			out[r] = res.Image
			continue
		}
		if in.Copy != nil {
			img, ok, err := a.findCopy(ctx, r, *in.Copy)
			if err != nil {
				return nil, err
			}
			if ok {
				out[r] = img
			}
		}
	}
	return out, nil
}

// findCopy finds the oldest active copy of a source in region (when several were made, before
// this rule, the first stays the one every request reuses).
func (a *Activities) findCopy(ctx context.Context, region string, m CopyMatch) (cloud.Image, bool, error) {
	imgs, err := a.cloud.ListImages(ctx, region, cloud.ImageFilter{Owner: a.cloud.Tenant(),
		Properties: map[string]string{m.SourceKey: m.SourceImageID, m.RegionKey: m.SourceRegion}})
	if err != nil {
		return cloud.Image{}, false, temporalError(err, "")
	}
	var best cloud.Image
	found := false
	for _, img := range imgs {
		if img.Status != "active" || img.Checksum != m.Checksum || img.Name != m.Name {
			continue
		}
		if !found || img.CreatedAt.Before(best.CreatedAt) {
			best, found = img, true
		}
	}
	if found {
		activity.GetLogger(ctx).Info("reusing the copy an earlier request made", "region", region, "image", best.ID)
	}
	return best, found, nil
}

// FinishTargetInput is the last step of a migration in one region.
type FinishTargetInput struct {
	Cloud  string           `json:"cloud,omitempty"` // a peer the worker holds; "" for its own
	Update UpdateImageInput `json:"update"`
	Fact   *Fact            `json:"fact,omitempty"`
	// Keep, when set, keeps this copy as its lineage's newest generation in the region.
	Keep *KeepInput `json:"keep,omitempty"`
}

// KeepInput keeps a lineage generation, pruning the lineage to its Keep newest.
type KeepInput struct {
	Container  string `json:"container"`
	Generation string `json:"generation"`
	Keep       int    `json:"keep"`
}

// FinishTarget carries properties and tags to the new image and announces it. Both parts are
// idempotent, so a retry repeats neither in effect. (Sharing is a ShareImage run of its own.)
func (a *Activities) FinishTarget(ctx context.Context, in FinishTargetInput) (cloud.Image, error) {
	a, err := a.as(in.Cloud)
	if err != nil {
		return cloud.Image{}, err
	}
	img, err := a.UpdateImage(ctx, in.Update)
	if err != nil {
		return img, err
	}
	if k := in.Keep; k != nil {
		if _, err := a.cloud.KeepGeneration(ctx, in.Update.Region, k.Container, k.Generation, k.Keep); err != nil {
			return img, temporalError(err, "keep lineage generation "+k.Generation)
		}
	}
	if in.Fact != nil {
		if err := a.PublishFact(ctx, *in.Fact); err != nil {
			return img, err
		}
	}
	return img, nil
}
