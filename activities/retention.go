package activities

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/imageflow/imageflow/cloud"
)

// Image families and lineages, as properties on the images imageflow makes and the sources it
// is given: a family's versions are distributed, marked latest and pruned by version; a
// lineage's copies (one server's snapshots) are pruned by age.
const (
	PropFamily        = "imageflow_family"
	PropFamilyVersion = "imageflow_family_version"
	// PropLatest ("true") marks the family's latest version in a region.
	PropLatest = "imageflow_latest"
	// PropLineage names the server a copy's snapshot came from, on copies kept as a lineage.
	PropLineage = "imageflow_lineage"
	// PropMadeBy marks what imageflow made: only those are ever pruned. It is the migration stamp.
	PropMadeBy = "imageflow_migration_id"
)

// PruneInput is one region's retention: keep the newest Keep of a family's versions (by
// version) or of a lineage's copies (by age); delete older ones imageflow made.
type PruneInput struct {
	Region  string `json:"region"`
	Family  string `json:"family,omitempty"`
	Lineage string `json:"lineage,omitempty"`
	Keep    int    `json:"keep"`
	// Force deletes an image a member has accepted too (its members are revoked first either way).
	Force bool `json:"force,omitempty"`
	// DryRun decides and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// Pruned is one image a retention decided on, and why.
type Pruned struct {
	ImageID string `json:"image_id"`
	Name    string `json:"name"`
	Version int    `json:"version,omitempty"`
	Reason  string `json:"reason"`
}

// PruneResult is a region's retention, image by image.
type PruneResult struct {
	Region  string   `json:"region"`
	Kept    []Pruned `json:"kept"`
	Deleted []Pruned `json:"deleted"` // with DryRun: would be deleted
	Spared  []Pruned `json:"spared"`  // older than kept, and not deleted (why in Reason)
}

// FactImageDeleted is announced for every image a retention deletes.
const FactImageDeleted = "image.deleted"

// PlanPrune decides a region's retention without changing anything. The starter's --dry-run
// and the Prune activity share it.
func PlanPrune(ctx context.Context, c *cloud.Client, in PruneInput) (PruneResult, error) {
	res := PruneResult{Region: in.Region, Kept: []Pruned{}, Deleted: []Pruned{}, Spared: []Pruned{}}
	if (in.Family == "") == (in.Lineage == "") || in.Keep < 1 {
		return res, fmt.Errorf("prune needs a family or a lineage, and keep of 1 or more")
	}
	f := cloud.ImageFilter{Owner: c.Tenant(), Properties: map[string]string{PropFamily: in.Family}}
	if in.Lineage != "" {
		f.Properties = map[string]string{PropLineage: in.Lineage}
	}
	imgs, err := c.ListImages(ctx, in.Region, f)
	if err != nil {
		return res, err
	}
	newestFirst(imgs, in.Family != "")
	made := 0 // the newest Keep are counted among the images imageflow made, not hand-tagged ones
	for _, img := range imgs {
		p := Pruned{ImageID: img.ID, Name: img.Name, Version: version(img)}
		if img.Properties[PropMadeBy] == "" {
			p.Reason = "not made by imageflow (not counted in the newest " + strconv.Itoa(in.Keep) + ")"
			res.Spared = append(res.Spared, p)
			continue
		}
		if made++; made <= in.Keep {
			p.Reason = fmt.Sprintf("among the newest %d", in.Keep)
			res.Kept = append(res.Kept, p)
			continue
		}
		why, spare, err := spareReason(ctx, c, in, img)
		switch {
		case err != nil:
			return res, err
		case spare:
			p.Reason = why
			res.Spared = append(res.Spared, p)
		default:
			p.Reason = fmt.Sprintf("older than the newest %d", in.Keep)
			res.Deleted = append(res.Deleted, p)
		}
	}
	return res, nil
}

// spareReason says why an image imageflow made, older than the newest Keep, stays, if it does.
func spareReason(ctx context.Context, c *cloud.Client, in PruneInput, img cloud.Image) (string, bool, error) {
	switch {
	case img.Protected:
		return "protected", true, nil
	case img.Properties[PropLatest] == "true":
		return "the family's latest", true, nil
	}
	if in.Force {
		return "", false, nil
	}
	ms, err := c.ListMembers(ctx, in.Region, img.ID)
	if err != nil {
		return "", false, err
	}
	for _, m := range ms {
		if m.Status == "accepted" {
			return "member " + m.MemberID + " accepted it (--force deletes it anyway)", true, nil
		}
	}
	return "", false, nil
}

// newestFirst orders a family by version and a lineage by creation, newest first.
func newestFirst(imgs []cloud.Image, byVersion bool) {
	sort.SliceStable(imgs, func(i, j int) bool {
		if byVersion && version(imgs[i]) != version(imgs[j]) {
			return version(imgs[i]) > version(imgs[j])
		}
		if !imgs[i].CreatedAt.Equal(imgs[j].CreatedAt) {
			return imgs[i].CreatedAt.After(imgs[j].CreatedAt)
		}
		return imgs[i].ID > imgs[j].ID
	})
}

func version(img cloud.Image) int {
	v, _ := strconv.Atoi(img.Properties[PropFamilyVersion])
	return v
}

// Prune carries out a region's retention: each image it deletes loses its members first (so no
// account is left holding a share of an image about to vanish) and is announced as a fact.
func (a *Activities) Prune(ctx context.Context, in PruneInput) (PruneResult, error) {
	res, err := PlanPrune(ctx, a.cloud, in)
	if err != nil || in.DryRun {
		return res, temporalError(err, "")
	}
	for _, p := range res.Deleted {
		if err := a.revokeAll(ctx, in.Region, p.ImageID); err != nil {
			return res, err
		}
		if err := a.cloud.DeleteImage(ctx, in.Region, p.ImageID); err != nil && !cloud.IsNotFound(err) {
			return res, temporalError(err, "")
		}
		fact := Fact{Type: FactImageDeleted, ID: "deleted:" + in.Region + ":" + p.ImageID,
			Data: map[string]any{"region": in.Region, "image_id": p.ImageID, "name": p.Name, "family": in.Family,
				"version": p.Version, "lineage": in.Lineage, "reason": p.Reason}}
		if err := a.PublishFact(ctx, fact); err != nil {
			return res, err
		}
	}
	return res, nil
}

// revokeAll removes every member of an image.
func (a *Activities) revokeAll(ctx context.Context, region, imageID string) error {
	ms, err := a.cloud.ListMembers(ctx, region, imageID)
	if err != nil {
		return temporalError(err, "")
	}
	for _, m := range ms {
		if err := a.DeleteMember(ctx, MemberInput{Region: region, ImageID: imageID, Member: m.MemberID}); err != nil {
			return err
		}
	}
	return nil
}

// MarkLatestInput makes ImageID its family's latest version in Region.
type MarkLatestInput struct {
	Region  string `json:"region"`
	Family  string `json:"family"`
	ImageID string `json:"image_id"`
}

// MarkLatest marks the image latest first and then unmarks the family's others, so the family
// always has a latest in the region (for a moment two: take the higher version).
func (a *Activities) MarkLatest(ctx context.Context, in MarkLatestInput) ([]string, error) {
	if _, err := a.UpdateImage(ctx, UpdateImageInput{Region: in.Region, ImageID: in.ImageID,
		Properties: map[string]string{PropLatest: "true"}}); err != nil {
		return nil, err
	}
	imgs, err := a.cloud.ListImages(ctx, in.Region, cloud.ImageFilter{Owner: a.cloud.Tenant(),
		Properties: map[string]string{PropFamily: in.Family, PropLatest: "true"}})
	if err != nil {
		return nil, temporalError(err, "")
	}
	var unmarked []string
	for _, img := range imgs {
		if img.ID == in.ImageID {
			continue
		}
		if _, err := a.UpdateImage(ctx, UpdateImageInput{Region: in.Region, ImageID: img.ID,
			Remove: []string{PropLatest}}); err != nil {
			return unmarked, err
		}
		unmarked = append(unmarked, img.ID)
	}
	return unmarked, nil
}
