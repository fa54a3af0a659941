package main

import (
	"context"
	"fmt"
	"time"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/workflows"
)

// distribute starts DistributeImage: one version of an image family to regions and accounts.
func (a *app) distribute(ctx context.Context, args []string) error {
	fs := a.flags("distribute", "--image ID --from REGION --family NAME --version N --to REGION[,...] [flags]")
	var j jobFlags
	a.addJobFlags(fs, &j)
	var in workflows.DistributeInput
	var to, accounts list
	shareDeadline := 72 * time.Hour
	fs.StringVar(&in.ImageID, "image", "", "id or name of the image that is this version (required)")
	fs.StringVar(&in.SourceRegion, "from", "", "the image's region (required)")
	fs.StringVar(&in.Family, "family", "", "the family's name, e.g. web-base (required)")
	fs.IntVar(&in.Version, "version", 0, "this version's number, 1 or more; higher is newer (required)")
	fs.Var(&to, "to", "region(s) the version goes to; the source's region may be one (required)")
	fs.Var(&accounts, "accounts", "tenant(s) to share the version with in every region")
	fs.IntVar(&in.Keep, "keep", 0, "keep this many newest versions per region, deleting older ones imageflow made "+
		"(0: keep all)")
	fs.BoolVar(&in.Force, "force", false, "with --keep, delete old versions an account accepted too (their members "+
		"are revoked first)")
	fs.Var(spanFlag{&shareDeadline}, "share-deadline", "how long each region's share waits for the accounts")
	fs.StringVar(&in.OnTimeout, "on-timeout", workflows.Revoke, "revoke or keep accounts that did not answer")
	fs.Var(deadlineFlag(&in.Deadline), "deadline", "when the copies must be done (6h from now, or a time)")
	if err := parse(fs, args); err != nil {
		return err
	}
	in.Regions, in.Accounts, in.ShareDeadline = to, accounts, workflows.Duration(shareDeadline)
	if err := in.Normalize(); err != nil {
		return usageErr("%s", plain(err))
	}
	if err := a.checkJob(ctx, &j, in); err != nil {
		return err
	}
	if err := a.resolveImage(ctx, in.SourceRegion, &in.ImageID); err != nil {
		return err
	}
	tenant, err := a.tenantFor(ctx, &j)
	if err != nil {
		return err
	}
	if err := workflows.CheckNotOwner("distribute: accounts", tenant, in.Accounts); err != nil {
		return usageErr("%s", plain(err))
	}
	return a.submit(ctx, &j, job{workflow: workflows.DistributeImageWorkflow, command: events.CmdDistribute,
		id: workflows.DistributeWorkflowID(tenant, in), input: in, targets: in.Regions, members: in.Accounts,
		attrs: func() []string { return []string{in.ImageID, in.SourceRegion} }})
}

// prune applies retention to a family's versions or a lineage's copies; --dry-run prints what
// would go, region by region, and changes nothing.
func (a *app) prune(ctx context.Context, args []string) error {
	fs := a.flags("prune", "(--family NAME | --lineage SERVER) --keep N --regions REGION[,...] [--dry-run] [flags]")
	var j jobFlags
	a.addTemporalJobFlags(fs, &j)
	var in workflows.PruneRequest
	var regions list
	var dryRun bool
	fs.StringVar(&in.Family, "family", "", "the image family whose old versions go")
	fs.StringVar(&in.Lineage, "lineage", "", "the server (instance_uuid) whose old copies go")
	fs.IntVar(&in.Keep, "keep", 0, "how many newest versions or copies stay in each region (required)")
	fs.Var(&regions, "regions", "region(s) to prune (required)")
	fs.BoolVar(&in.Force, "force", false, "delete images an account accepted too (their members are revoked first)")
	fs.BoolVar(&dryRun, "dry-run", false, "print what would be kept, spared and deleted in each region; change nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	in.Regions = regions
	if err := in.Normalize(); err != nil {
		return usageErr("%s", plain(err))
	}
	tenant, err := a.tenantFor(ctx, &j)
	if err != nil {
		return err
	}
	if dryRun {
		return a.prunePlan(ctx, in, j.json)
	}
	return a.submit(ctx, &j, job{workflow: workflows.PruneImagesWorkflow, id: workflows.PruneWorkflowID(tenant, in),
		input: in, attrs: func() []string { return []string{"", in.Regions[0]} }})
}

// prunePlan prints what retention would do, from the cloud as it is now.
func (a *app) prunePlan(ctx context.Context, in workflows.PruneRequest, asJSON bool) error {
	cc, err := a.cloud(ctx)
	if err != nil {
		return err
	}
	var plans []activities.PruneResult
	for _, r := range in.Regions {
		p, err := activities.PlanPrune(ctx, cc, activities.PruneInput{Region: r, Family: in.Family,
			Lineage: in.Lineage, Keep: in.Keep, Force: in.Force, DryRun: true})
		if err != nil {
			return fmt.Errorf("plan %s: %w", r, err)
		}
		plans = append(plans, p)
	}
	return a.print(out{json: asJSON}, plans, func() [][]string {
		rows := [][]string{{"REGION", "DECISION", "VERSION", "IMAGE", "NAME", "WHY"}}
		for _, p := range plans {
			for _, g := range []struct {
				what string
				imgs []activities.Pruned
			}{{"keep", p.Kept}, {"spare", p.Spared}, {"delete", p.Deleted}} {
				for _, img := range g.imgs {
					rows = append(rows, []string{p.Region, g.what, fmt.Sprint(img.Version), img.ImageID, img.Name,
						img.Reason})
				}
			}
		}
		return rows
	})
}
