package workflows

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
)

// DistributeInput sends one version of an image family to regions and accounts: the image is
// stamped as the family's version, copied to each region, shared with each account there, and
// becomes the family's latest in a region only once that region's copy and shares are done.
type DistributeInput struct {
	ImageID      string `json:"image_id"`
	SourceRegion string `json:"source_region"`
	Family       string `json:"family"`
	Version      int    `json:"version"`
	// Regions are where the version goes; the source region may be one (the source itself is
	// the version there).
	Regions  []string `json:"regions"`
	Accounts []string `json:"accounts,omitempty"`
	// Keep, above 0, keeps that many of the family's newest versions in each region the version
	// reached, deleting older ones imageflow made (see activities.PlanPrune); Force deletes those a
	// member accepted too.
	Keep  int  `json:"keep,omitempty"`
	Force bool `json:"force,omitempty"`
	// ShareDeadline is how long each region's share waits for the accounts (default 72h), and
	// OnTimeout what becomes of those that did not answer (revoke, the default, or keep).
	ShareDeadline Duration  `json:"share_deadline,omitempty"`
	OnTimeout     string    `json:"on_timeout,omitempty"`
	Deadline      time.Time `json:"deadline,omitzero"`
}

// MaxFamilyVersion bounds a version number.
const MaxFamilyVersion = 1_000_000_000

// Normalize fills defaults and rejects a request that cannot be run.
func (in *DistributeInput) Normalize() error {
	if err := normalizeImageRef("distribute", &in.SourceRegion, in.ImageID); err != nil {
		return err
	}
	if !regionName.MatchString(in.Family) || len(in.Family) > 64 {
		return invalid("distribute: family %q: 1 to 64 letters, digits, '.', '_' and '-'", in.Family)
	}
	if in.Version < 1 || in.Version > MaxFamilyVersion {
		return invalid("distribute: version must be 1 to %d, got %d", MaxFamilyVersion, in.Version)
	}
	if len(in.Regions) == 0 {
		return invalid("distribute: regions needs at least one region")
	}
	seen := map[string]bool{}
	for i, r := range in.Regions {
		if !regionName.MatchString(r) {
			return invalid("distribute: region %q is not a region name", r)
		}
		in.Regions[i] = CanonicalRegion(r)
		if seen[in.Regions[i]] {
			return invalid("distribute: region %s is listed twice", in.Regions[i])
		}
		seen[in.Regions[i]] = true
	}
	if in.Keep < 0 || in.Keep > 100 {
		return invalid("distribute: keep must be 0 (all) to 100, got %d", in.Keep)
	}
	if len(in.Accounts) > 0 {
		share := ShareInput{Region: in.SourceRegion, ImageID: in.ImageID, Members: in.Accounts,
			Deadline: in.ShareDeadline, OnTimeout: in.OnTimeout}
		if err := share.Normalize(); err != nil {
			return invalid("distribute: %s", strings.TrimPrefix(err.Error(), "share: "))
		}
	}
	return in.ShareDeadline.check("distribute: share_deadline")
}

// DistributeWorkflowID names the run of one family version's distribution.
func DistributeWorkflowID(tenant string, in DistributeInput) string {
	return key("distribute", tenant, in.Family, "v"+strconv.Itoa(in.Version),
		variant(strings.ToUpper(in.SourceRegion), in.ImageID, sortedCopy(upper(in.Regions)),
			sortedCopy(in.Accounts), in.Keep, in.Force))
}

// RegionDistribution is one region's outcome.
type RegionDistribution struct {
	Region  string          `json:"region"`
	Status  string          `json:"status"` // distributed, failed
	ImageID string          `json:"image_id,omitempty"`
	Members []MemberOutcome `json:"members,omitempty"`
	// Latest says the family's latest marker moved to this version here.
	Latest bool                    `json:"latest"`
	Pruned *activities.PruneResult `json:"pruned,omitempty"`
	Error  string                  `json:"error,omitempty"`
}

// DistributeResult is the distribution, region by region.
type DistributeResult struct {
	Family  string               `json:"family"`
	Version int                  `json:"version"`
	Regions []RegionDistribution `json:"regions"`
}

// DistributeStatus answers the status query: each region's step.
type DistributeStatus struct {
	Step    string            `json:"step"`
	Regions map[string]string `json:"regions"`
}

// DistributeImage distributes one family version (see DistributeInput).
func DistributeImage(ctx workflow.Context, in DistributeInput) (DistributeResult, error) {
	res := DistributeResult{Family: in.Family, Version: in.Version}
	if err := in.Normalize(); err != nil {
		return res, err
	}
	d := &distribution{in: in, st: DistributeStatus{Step: "stamping", Regions: map[string]string{}}}
	query := func() (DistributeStatus, error) { return d.st, nil }
	if err := workflow.SetQueryHandler(ctx, StatusQuery, query); err != nil {
		return res, err
	}
	if err := d.stamp(ctx); err != nil {
		return res, err
	}
	d.copies(ctx)
	d.share(ctx)
	d.settle(ctx)
	res.Regions = d.out
	status, done := JobSucceeded, 0
	for _, r := range d.out {
		if r.Status == "distributed" {
			done++
		}
	}
	switch {
	case done == 0:
		status = JobFailed
	case done < len(d.out):
		status = JobPartial
	}
	setJobStatus(ctx, status, fmt.Sprintf("%s version %d: %d of %d regions", in.Family, in.Version, done, len(d.out)))
	if done == 0 {
		return res, fmt.Errorf("distribute %s version %d reached no region: %s", in.Family, in.Version, d.out[0].Error)
	}
	return res, nil
}

type distribution struct {
	in     DistributeInput
	tenant string
	st     DistributeStatus
	out    []RegionDistribution // in the order of in.Regions
}

func (d *distribution) region(name string) *RegionDistribution {
	for i := range d.out {
		if d.out[i].Region == name {
			return &d.out[i]
		}
	}
	return nil
}

func (d *distribution) step(ctx workflow.Context, region, step string) {
	d.st.Regions[region] = step
	lines := []string{fmt.Sprintf("%s version %d: %s", d.in.Family, d.in.Version, d.st.Step)}
	for _, r := range d.in.Regions {
		lines = append(lines, r+": "+d.st.Regions[r])
	}
	workflow.SetCurrentDetails(ctx, strings.Join(lines, "\n"))
}

// stamp makes the source the family's version, refusing one that is another's already.
func (d *distribution) stamp(ctx workflow.Context) error {
	var acct activities.Account
	if err := workflow.ExecuteActivity(withActivity(ctx, "who am I", time.Minute), a.Authenticate).
		Get(ctx, &acct); err != nil {
		return err
	}
	d.tenant = acct.Tenant
	ref := activities.ImageRef{Region: d.in.SourceRegion, ImageID: d.in.ImageID}
	var src struct{ Properties map[string]string }
	if err := workflow.ExecuteActivity(withActivity(ctx, "read the source", time.Minute), a.GetImage, ref).
		Get(ctx, &src); err != nil {
		return err
	}
	version := strconv.Itoa(d.in.Version)
	fam, ver := src.Properties[activities.PropFamily], src.Properties[activities.PropFamilyVersion]
	if (fam != "" && fam != d.in.Family) || (ver != "" && ver != version) {
		return invalid("distribute: image %s is already version %s of family %s", d.in.ImageID, ver, fam)
	}
	props := map[string]string{activities.PropFamily: d.in.Family, activities.PropFamilyVersion: version}
	upd := activities.UpdateImageInput{Region: d.in.SourceRegion, ImageID: d.in.ImageID, Properties: props}
	if len(d.in.Accounts) > 0 {
		upd.Visibility = "shared" // members are taken only on shared images in Glance
	}
	return workflow.ExecuteActivity(withActivity(ctx, "stamp the family version", time.Minute), a.UpdateImage, upd).
		Get(ctx, nil)
}

// copies makes the version in every region: the source is it in its own region, a migration
// (which reuses a copy imageflow already made) in the others.
func (d *distribution) copies(ctx workflow.Context) {
	d.st.Step = "copying"
	var targets []string
	for _, r := range d.in.Regions {
		d.out = append(d.out, RegionDistribution{Region: r})
		if r == d.in.SourceRegion {
			d.region(r).ImageID = d.in.ImageID
			d.step(ctx, r, "the source")
			continue
		}
		targets = append(targets, r)
		d.step(ctx, r, "copying")
	}
	if len(targets) == 0 {
		return
	}
	mig := MigrateInput{ImageID: d.in.ImageID, SourceRegion: d.in.SourceRegion, TargetRegions: targets,
		Policy: PolicyBestEffort, Deadline: d.in.Deadline}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            MigrateWorkflowID(d.tenant, mig),
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         fmt.Sprintf("copy %s v%d to %s", d.in.Family, d.in.Version, strings.Join(targets, ", ")),
		TypedSearchAttributes: childAttributes(ctx, d.in.ImageID, d.in.SourceRegion, targets, nil),
	})
	var mres MigrateResult
	err := workflow.ExecuteChildWorkflow(cctx, MigrateImageWorkflow, mig).Get(ctx, &mres)
	for _, t := range mres.Targets {
		r := d.region(t.Region)
		if t.Status == "succeeded" {
			r.ImageID = t.ImageID
			d.step(ctx, t.Region, "copied")
		} else {
			r.Status, r.Error = "failed", orDefault(t.Error, t.Status)
			d.step(ctx, t.Region, "copy failed")
		}
	}
	for _, t := range targets {
		if r := d.region(t); r.ImageID == "" && r.Status == "" {
			r.Status, r.Error = "failed", fmt.Sprintf("copy failed: %v", err)
			d.step(ctx, t, "copy failed")
		}
	}
}

// share offers the version to the accounts in every region it reached, and waits for each
// region's share to end per its policies (regions at once).
func (d *distribution) share(ctx workflow.Context) {
	if len(d.in.Accounts) == 0 {
		return
	}
	d.st.Step = "sharing"
	futures := map[string]workflow.ChildWorkflowFuture{}
	for _, r := range d.in.Regions {
		rd := d.region(r)
		if rd.Status == "failed" {
			continue
		}
		in := ShareInput{Region: r, ImageID: rd.ImageID, Members: d.in.Accounts, Deadline: d.in.ShareDeadline,
			OnTimeout: d.in.OnTimeout}
		_ = in.Normalize()
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            ShareWorkflowID(d.tenant, in),
			WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			StaticSummary: fmt.Sprintf("share %s v%d in %s with %s", d.in.Family, d.in.Version, r,
				strings.Join(d.in.Accounts, ", ")),
			TypedSearchAttributes: childAttributes(ctx, rd.ImageID, r, nil, d.in.Accounts),
		})
		futures[r] = workflow.ExecuteChildWorkflow(cctx, ShareImageWorkflow, in)
		d.step(ctx, r, "sharing with "+strings.Join(d.in.Accounts, ", "))
	}
	for _, r := range d.in.Regions {
		f, ok := futures[r]
		if !ok {
			continue
		}
		rd := d.region(r)
		var sres ShareResult
		if err := f.Get(ctx, &sres); err != nil {
			rd.Status, rd.Error = "failed", "share: "+err.Error()
			d.step(ctx, r, "share failed")
			continue
		}
		rd.Members = sres.Members
		d.step(ctx, r, "shared: "+memberSummary(sres.Members))
	}
}

func memberSummary(ms []MemberOutcome) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.Member+" "+m.Status)
	}
	return strings.Join(parts, ", ")
}

// settle moves the latest marker and applies retention in each region the version reached
// whole; a failed region keeps its latest where it was and nothing is pruned there.
func (d *distribution) settle(ctx workflow.Context) {
	d.st.Step = "marking latest"
	for _, r := range d.in.Regions {
		rd := d.region(r)
		if rd.Status == "failed" {
			continue
		}
		mark := activities.MarkLatestInput{Region: r, Family: d.in.Family, ImageID: rd.ImageID}
		if err := workflow.ExecuteActivity(withActivity(ctx, "mark latest in "+r, 5*time.Minute), a.MarkLatest,
			mark).Get(ctx, nil); err != nil {
			rd.Status, rd.Error = "failed", "mark latest: "+err.Error()
			d.step(ctx, r, "marking latest failed")
			continue
		}
		rd.Status, rd.Latest = "distributed", true
		d.step(ctx, r, "latest")
		if d.in.Keep == 0 {
			continue
		}
		var pr activities.PruneResult
		prune := activities.PruneInput{Region: r, Family: d.in.Family, Keep: d.in.Keep, Force: d.in.Force}
		if err := workflow.ExecuteActivity(withActivity(ctx, "prune in "+r, 10*time.Minute), a.Prune, prune).
			Get(ctx, &pr); err != nil {
			rd.Error = "retention: " + err.Error() // the version is distributed; pruning waits for the next
			continue
		}
		rd.Pruned = &pr
		d.step(ctx, r, fmt.Sprintf("latest; %d older version(s) deleted", len(pr.Deleted)))
	}
	d.st.Step = "done"
}

// PruneRequest is retention on its own: keep the newest Keep of a family's versions or of a
// lineage's copies in each region.
type PruneRequest struct {
	Regions []string `json:"regions"`
	Family  string   `json:"family,omitempty"`
	Lineage string   `json:"lineage,omitempty"`
	Keep    int      `json:"keep"`
	Force   bool     `json:"force,omitempty"`
	DryRun  bool     `json:"dry_run,omitempty"`
}

// Normalize rejects a request that cannot be run.
func (in *PruneRequest) Normalize() error {
	if (in.Family == "") == (in.Lineage == "") {
		return invalid("prune: give a family or a lineage, one of them")
	}
	if in.Keep < 1 || in.Keep > 100 {
		return invalid("prune: keep must be 1 to 100, got %d", in.Keep)
	}
	if len(in.Regions) == 0 {
		return invalid("prune: regions needs at least one region")
	}
	for i, r := range in.Regions {
		if !regionName.MatchString(r) {
			return invalid("prune: region %q is not a region name", r)
		}
		in.Regions[i] = CanonicalRegion(r)
	}
	return checkText("prune: family or lineage", in.Family+in.Lineage, maxIDLen)
}

// PruneWorkflowID names a retention run.
func PruneWorkflowID(tenant string, in PruneRequest) string {
	return key("prune", tenant, in.Family+in.Lineage, variant(sortedCopy(upper(in.Regions)), in.Keep, in.Force,
		in.DryRun))
}

// PruneImages applies retention region by region; the result lists what each kept and deleted.
func PruneImages(ctx workflow.Context, in PruneRequest) ([]activities.PruneResult, error) {
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	var out []activities.PruneResult
	for _, r := range slices.Clone(in.Regions) {
		workflow.SetCurrentDetails(ctx, "pruning "+r)
		var pr activities.PruneResult
		p := activities.PruneInput{Region: r, Family: in.Family, Lineage: in.Lineage, Keep: in.Keep,
			Force: in.Force, DryRun: in.DryRun}
		if err := workflow.ExecuteActivity(withActivity(ctx, "prune in "+r, 10*time.Minute), a.Prune, p).
			Get(ctx, &pr); err != nil {
			return out, err
		}
		out = append(out, pr)
	}
	return out, nil
}
