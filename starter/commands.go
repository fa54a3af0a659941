package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/workflows"
)

func (a *app) migrate(ctx context.Context, args []string) error {
	fs := a.flags("migrate", "--image ID --from REGION --to REGION[,REGION...] [flags]")
	var j jobFlags
	a.addJobFlags(fs, &j)
	var in workflows.MigrateInput
	var to, share list
	fs.StringVar(&in.ImageID, "image", "", "id of the image to migrate (required)")
	fs.StringVar(&in.SourceRegion, "from", "", "source region (required)")
	fs.Var(&to, "to", "target region(s), comma-separated or repeated (required)")
	fs.StringVar(&in.TargetName, "name", "", "name of the new images (default: the source's)")
	fs.StringVar(&in.Policy, "policy", workflows.PolicyAll, "all: every target must succeed; best-effort: at least one")
	fs.StringVar(
		&in.Cleanup,
		"cleanup",
		workflows.CleanupOnSuccess,
		"delete intermediate objects: on-success, always, never",
	)
	fs.Var(&share, "share-with", "tenant(s) to share each new image with")
	if err := parse(fs, args); err != nil {
		return err
	}
	in.TargetRegions, in.ShareWith = upperAll(to), share
	if err := in.Normalize(); err != nil {
		return usageErr("%s", plain(err))
	}
	tenant, err := a.tenantFor(ctx, &j)
	if err != nil {
		return err
	}
	return a.submit(ctx, &j, job{workflow: workflows.MigrateImageWorkflow, command: events.CmdMigrate,
		id: workflows.MigrateWorkflowID(tenant, in), input: in, targets: in.TargetRegions, members: in.ShareWith,
		attrs: func() []string { return []string{in.ImageID, in.SourceRegion} }})
}

func (a *app) share(ctx context.Context, args []string) error {
	fs := a.flags("share", "--image ID --region REGION --members TENANT[,TENANT...] [flags]")
	var j jobFlags
	a.addJobFlags(fs, &j)
	var in workflows.ShareInput
	var members list
	var deadline, poll time.Duration
	fs.StringVar(&in.ImageID, "image", "", "id of the image to share (required)")
	regionFlag(fs, &in.Region, "")
	fs.Var(&members, "members", "tenant(s) to share with (required)")
	fs.DurationVar(&deadline, "deadline", 72*time.Hour, "how long to wait for decisions")
	fs.DurationVar(&poll, "poll-interval", time.Hour, "backstop poll of member status")
	fs.StringVar(&in.OnTimeout, "on-timeout", workflows.Revoke, "revoke or keep members that did not answer")
	fs.StringVar(&in.OnReject, "on-reject", workflows.Keep, "revoke or keep members that rejected")
	if err := parse(fs, args); err != nil {
		return err
	}
	in.Members, in.Deadline, in.PollInterval = members, workflows.Duration(deadline), workflows.Duration(poll)
	if err := in.Normalize(); err != nil {
		return usageErr("%s", plain(err))
	}
	tenant, err := a.tenantFor(ctx, &j)
	if err != nil {
		return err
	}
	return a.submit(ctx, &j, job{workflow: workflows.ShareImageWorkflow, command: events.CmdShare,
		id: workflows.ShareWorkflowID(tenant, in), input: in, members: in.Members,
		attrs: func() []string { return []string{in.ImageID, in.Region} }})
}

func (a *app) accept(decision string) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		name := map[string]string{"accepted": "accept", "rejected": "reject"}[decision]
		fs := a.flags(name, "--image ID --region REGION --producer TENANT [flags]")
		var j jobFlags
		a.addJobFlags(fs, &j)
		var in workflows.AcceptInput
		fs.StringVar(&in.ImageID, "image", "", "id of the offered image (required)")
		regionFlag(fs, &in.Region, "")
		fs.StringVar(&in.Producer, "producer", "", "tenant that shared the image (required)")
		fs.StringVar(&in.ShareWorkflowID, "share-workflow-id", "", "the producer's ShareImage run, to tell it at once")
		if err := parse(fs, args); err != nil {
			return err
		}
		in.Policy.Decision = decision
		if err := in.Normalize(); err != nil {
			return usageErr("%s", plain(err))
		}
		if decision == "accepted" && j.via == "nats" {
			// An event may only narrow the worker's acceptance policy; forcing an acceptance takes
			// the operator's own access to Temporal.
			return usageErr("accept --via nats cannot force an acceptance (an event may only narrow the " +
				"worker's policy); use --via temporal")
		}
		tenant, err := a.tenantFor(ctx, &j)
		if err != nil {
			return err
		}
		return a.submit(ctx, &j, job{workflow: workflows.AcceptShareWorkflow, command: events.CmdAccept,
			id: workflows.AcceptWorkflowID(tenant, in), input: in, members: []string{tenant},
			attrs: func() []string { return []string{in.ImageID, in.Region} }})
	}
}

func (a *app) status(ctx context.Context, args []string) error {
	fs := a.flags("status", "--workflow-id ID")
	var id string
	fs.StringVar(&id, "workflow-id", "", "the run's workflow id (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if id == "" {
		return usageErr("--workflow-id is required")
	}
	st, err := a.describe(ctx, id)
	if err != nil {
		return err
	}
	return a.printJSON(st)
}

func (a *app) list(ctx context.Context, args []string) error {
	fs := a.flags("list", "--region REGION [filters]")
	var region string
	var f cloud.ImageFilter
	var tags list
	regionFlag(fs, &region, "")
	fs.StringVar(&f.Name, "name", "", "exact image name")
	fs.StringVar(&f.Owner, "owner", "", "owner tenant")
	fs.StringVar(&f.Visibility, "visibility", "", "public, private or shared")
	fs.StringVar(&f.MemberStatus, "member-status", "", "for shared images: pending, accepted, rejected or all")
	fs.Var(&tags, "tag", "tag(s) every image must carry")
	if err := parse(fs, args); err != nil {
		return err
	}
	if region == "" {
		return usageErr("--region is required")
	}
	f.Tags = tags
	cc, err := a.cloud(ctx)
	if err != nil {
		return err
	}
	imgs, err := cc.ListImages(ctx, strings.ToUpper(region), f)
	if err != nil {
		return err
	}
	if imgs == nil {
		imgs = []cloud.Image{}
	}
	return a.printJSON(imgs)
}

func (a *app) get(ctx context.Context, args []string) error {
	fs := a.flags("get", "--image ID --region REGION")
	var region, id string
	regionFlag(fs, &region, "")
	fs.StringVar(&id, "image", "", "image id (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if region == "" || id == "" {
		return usageErr("--image and --region are required")
	}
	cc, err := a.cloud(ctx)
	if err != nil {
		return err
	}
	region = strings.ToUpper(region)
	img, err := cc.GetImage(ctx, region, id)
	if cloud.IsNotFound(err) {
		return errors.New(activities.ImageNotFound(id, region, cc.Tenant()))
	}
	if err != nil {
		return err
	}
	return a.printJSON(img)
}

func (a *app) update(ctx context.Context, args []string) error {
	fs := a.flags("update", "--image ID --region REGION [--set k=v] [--remove k] [--tag t] [--name N]")
	var in activities.UpdateImageInput
	var set, remove, tags list
	regionFlag(fs, &in.Region, "")
	fs.StringVar(&in.ImageID, "image", "", "image id (required)")
	fs.StringVar(&in.Name, "name", "", "new name")
	fs.Var(&set, "set", "property key=value (repeatable)")
	fs.Var(&remove, "remove", "property to remove (repeatable)")
	fs.Var(&tags, "tag", "tag to add (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if in.Region == "" || in.ImageID == "" {
		return usageErr("--image and --region are required")
	}
	in.Region, in.Remove, in.Tags = strings.ToUpper(in.Region), remove, tags
	in.Properties = map[string]string{}
	for _, kv := range set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageErr("--set wants key=value, got %q", kv)
		}
		in.Properties[k] = v
	}
	cc, err := a.cloud(ctx)
	if err != nil {
		return err
	}
	img, err := activities.ApplyUpdate(ctx, cc, in)
	if cloud.IsNotFound(err) {
		return errors.New(activities.ImageNotFound(in.ImageID, in.Region, cc.Tenant()))
	}
	if err != nil {
		return err
	}
	return a.printJSON(img)
}
