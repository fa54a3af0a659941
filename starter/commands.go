package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/workflows"
)

func (a *app) migrate(ctx context.Context, args []string) error {
	fs := a.flags("migrate", "--image ID --from REGION --to REGION[,REGION...] [flags]")
	var j jobFlags
	a.addJobFlags(fs, &j)
	var in workflows.MigrateInput
	var to, share list
	fs.StringVar(&in.ImageID, "image", "", "id or name of the image to migrate (required; a name must be "+
		"one image's)")
	fs.StringVar(&in.SourceRegion, "from", "", "source region (required)")
	fs.Var(&to, "to", "target region(s), comma-separated or repeated (required)")
	fs.StringVar(&in.TargetName, "name", "", "name of the new images (default: the source's)")
	fs.BoolVar(&in.NewCopy, "new-copy", false, "make a new copy in each target even where imageflow already made one of "+
		"this image (same checksum and name); by default that one is reused, whatever request made it")
	fs.StringVar(&in.Policy, "policy", workflows.PolicyAll, "all: every target must succeed; best-effort: at least one")
	fs.StringVar(
		&in.Cleanup,
		"cleanup",
		workflows.CleanupOnSuccess,
		"delete intermediate objects: on-success, always, never",
	)
	fs.Var(&share, "share-with", "tenant(s) to share each new image with (a ShareImage run per target)")
	fs.StringVar(&in.TargetCloud, "target-cloud", "", "another cloud or account the worker holds "+
		"(IMAGEFLOW_CLOUD_PEERS) to migrate into")
	fs.IntVar(&in.LineageKeep, "lineage-keep", 0, "keep this many copies of the server's snapshots per target, "+
		"so the next snapshot sends only what changed (0: off)")
	fs.StringVar(&in.LineageKey, "lineage-key", "", "the server the snapshots come from (default: instance_uuid)")
	fs.Var(deadlineFlag(&in.Deadline), "deadline", "when it must be done (6h from now, or a time); fails at once "+
		"when the estimate cannot meet it, and is cancelled when it passes")
	var tolerance time.Duration
	fs.Var(spanFlag{&tolerance}, "outage-tolerance", "how long a step waits out a fault (a region down, identity "+
		"failing) before the job fails (default 24h; a deadline ends the wait sooner)")
	if err := parse(fs, args); err != nil {
		return err
	}
	in.TargetRegions, in.ShareWith, in.OutageTolerance = to, share, workflows.Duration(tolerance)
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
	if err := workflows.CheckNotOwner("migrate: share_with", tenant, in.ShareWith); err != nil {
		return usageErr("%s", plain(err))
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
	deadline, poll := 72*time.Hour, time.Hour
	fs.StringVar(&in.ImageID, "image", "", "id or name of the image to share (required)")
	regionFlag(fs, &in.Region, "")
	fs.Var(&members, "members", "tenant(s) to share with (required)")
	fs.Var(spanFlag{&deadline}, "deadline", "how long to wait for decisions")
	fs.Var(spanFlag{&poll}, "poll-interval", "backstop poll of member status")
	fs.StringVar(&in.OnTimeout, "on-timeout", workflows.Revoke, "revoke or keep members that did not answer")
	fs.StringVar(&in.OnReject, "on-reject", workflows.Keep, "revoke or keep members that rejected")
	if err := parse(fs, args); err != nil {
		return err
	}
	in.Members, in.Deadline, in.PollInterval = members, workflows.Duration(deadline), workflows.Duration(poll)
	if err := in.Normalize(); err != nil {
		return usageErr("%s", plain(err))
	}
	if err := a.checkJob(ctx, &j, in); err != nil {
		return err
	}
	if err := a.resolveImage(ctx, in.Region, &in.ImageID); err != nil {
		return err
	}
	tenant, err := a.tenantFor(ctx, &j)
	if err != nil {
		return err
	}
	if err := workflows.CheckNotOwner("share: members", tenant, in.Members); err != nil {
		return usageErr("%s", plain(err))
	}
	if err := a.memberRoom(ctx, in); err != nil {
		return err
	}
	return a.submit(ctx, &j, job{workflow: workflows.ShareImageWorkflow, command: events.CmdShare,
		id: workflows.ShareWorkflowID(tenant, in), input: in, members: in.Members,
		attrs: func() []string { return []string{in.ImageID, in.Region} }})
}

func (a *app) accept(decision string) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		name := map[string]string{"accepted": "accept", "rejected": "reject"}[decision]
		fs := a.flags(name, "--image ID --region REGION [--producer TENANT] [flags]")
		var j jobFlags
		a.addJobFlags(fs, &j)
		var in workflows.AcceptInput
		fs.StringVar(&in.ImageID, "image", "", "id of the offered image (required)")
		regionFlag(fs, &in.Region, "")
		fs.StringVar(&in.Producer, "producer", "", "tenant that shared the image (default: the image's owner, "+
			"read from the cloud)")
		fs.StringVar(&in.ShareWorkflowID, "share-workflow-id", "", "the producer's ShareImage run, to tell it at once")
		if err := parse(fs, args); err != nil {
			return err
		}
		in.Policy.Decision = decision
		if err := a.producerOf(ctx, &in); err != nil {
			return err
		}
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
	fs := a.flags("status", "[--workflow-id] ID|UI-URL [--follow] [--json]")
	var o out
	var id string
	var follow bool
	o.flag(fs)
	fs.BoolVar(&follow, "follow", false, "follow the run to its end, as `starter wait` does")
	if err := a.parseRun(fs, args, &id); err != nil {
		return err
	}
	if follow {
		return a.follow(ctx, id, nil)
	}
	st, err := a.describe(ctx, id)
	if err != nil {
		return err
	}
	return a.print(o, st, st.rows)
}

// wait follows any run, however it was started (--wait, --via nats, a schedule, the UI), to its
// end and prints its result; Ctrl-C stops following, not the run.
func (a *app) wait(ctx context.Context, args []string) error {
	fs := a.flags("wait", "[--workflow-id] ID|UI-URL")
	var id string
	if err := a.parseRun(fs, args, &id); err != nil {
		return err
	}
	return a.follow(ctx, id, nil)
}

// runCommand parses a command about one run and describes the run.
func (a *app) runCommand(ctx context.Context, fs *flag.FlagSet, args []string, id *string) (runStatus, error) {
	if err := a.parseRun(fs, args, id); err != nil {
		return runStatus{}, err
	}
	return a.describe(ctx, *id)
}

// parseRun parses a command about one run: its id by --workflow-id or as the one argument, before
// or after the flags, either as the id or as the run's URL in the Temporal UI.
func (a *app) parseRun(fs *flag.FlagSet, args []string, id *string) error {
	fs.StringVar(id, "workflow-id", "", "the run's workflow id, or its URL in the Temporal UI (or give it as "+
		"the argument)")
	if err := parseLeading(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		if *id != "" {
			return usageErr("give the run once: --workflow-id %s, or %q as the argument", *id, fs.Arg(0))
		}
		*id = fs.Arg(0)
		if err := parse(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	if *id == "" {
		return usageErr("which run? give its workflow id (or its URL in the Temporal UI) as the argument or " +
			"--workflow-id; `starter runs` lists them")
	}
	wid, err := workflowIDOf(*id, a.cfg.Temporal.Namespace)
	if err != nil {
		return usageErr("%v", err)
	}
	*id = wid
	return nil
}

// workflowIDOf takes a workflow id, or a Temporal UI address of a run
// (http://host:8233/namespaces/NS/workflows/ID[/RUN/history]), and gives the workflow id.
func workflowIDOf(s, namespace string) (string, error) {
	if !strings.Contains(s, "://") {
		return s, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is neither a workflow id nor a Temporal UI address: %v", s, err)
	}
	parts := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	for i := 0; i+3 < len(parts); i++ {
		if parts[i] != "namespaces" || parts[i+2] != "workflows" {
			continue
		}
		ns, _ := url.PathUnescape(parts[i+1])
		id, err := url.PathUnescape(parts[i+3])
		if err != nil || id == "" {
			break
		}
		if ns != namespace {
			return "", fmt.Errorf("%s is a run in namespace %q; this starter uses %q (IMAGEFLOW_TEMPORAL_NAMESPACE)",
				s, ns, namespace)
		}
		return id, nil
	}
	return "", fmt.Errorf("%s is not a run's address in the Temporal UI (.../namespaces/NS/workflows/ID/...)", s)
}

// memberRoom refuses a share the image has no room for, before any member is added. When the
// image cannot be read here, the run finds out itself (and undoes what it added).
func (a *app) memberRoom(ctx context.Context, in workflows.ShareInput) error {
	cc, err := a.cloud(ctx)
	if err != nil {
		return nil
	}
	existing, err := cc.ListMembers(ctx, in.Region, in.ImageID)
	if err != nil {
		return nil
	}
	if err := activities.MemberRoom(existing, in.Members, workflows.MaxMembers); err != nil {
		return fmt.Errorf("share %s in %s: %w", in.ImageID, in.Region, err)
	}
	return nil
}

// producerOf fills an acceptance's producer, when not given, with the offered image's owner: the
// account that shared it is the one that owns it. Without a configured account, or an image it
// can read, the producer stays required.
func (a *app) producerOf(ctx context.Context, in *workflows.AcceptInput) error {
	if in.Producer != "" || in.ImageID == "" || in.Region == "" {
		return nil
	}
	cc, err := a.accountCloud(ctx)
	if cc == nil {
		return err
	}
	img, err := cc.GetImage(ctx, workflows.CanonicalRegion(in.Region), in.ImageID)
	if err != nil {
		return fmt.Errorf("find who offered image %s in %s (or give --producer): %w", in.ImageID, in.Region, err)
	}
	in.Producer = img.Owner
	fmt.Fprintf(a.stderr, "image %s in %s was offered by its owner, %s\n", in.ImageID, in.Region, img.Owner)
	return nil
}
