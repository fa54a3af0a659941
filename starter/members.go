package main

import (
	"context"
	"fmt"

	"github.com/imageflow/imageflow/cloud"
)

// members lists an image's members, or shows one with --member.
func (a *app) members(ctx context.Context, args []string) error {
	fs := a.flags("members", "--image ID --region REGION [--member TENANT] [--json]")
	var o out
	var im imageArgs
	var member string
	o.flag(fs)
	im.flags(fs)
	fs.StringVar(&member, "member", "", "show only this member (tenant id)")
	cc, err := a.imageCommand(ctx, fs, args, &im)
	if err != nil {
		return err
	}
	var ms []cloud.Member
	if member != "" {
		m, err := cc.GetMember(ctx, im.region, im.id, member)
		if cloud.IsNotFound(err) {
			return fmt.Errorf("tenant %s is not a member of image %s in %s (or the image is not this account's)",
				member, im.id, im.region)
		}
		if err != nil {
			return err
		}
		ms = []cloud.Member{m}
	} else if ms, err = cc.ListMembers(ctx, im.region, im.id); err != nil {
		return notFound(err, cc, im)
	}
	if ms == nil {
		ms = []cloud.Member{}
	}
	var v any = ms
	if member != "" {
		v = ms[0]
	}
	return a.print(o, v, func() [][]string {
		rows := [][]string{{"MEMBER", "STATUS", "CREATED", "UPDATED"}}
		for _, m := range ms {
			rows = append(rows, []string{m.MemberID, m.Status, when(m.CreatedAt), when(m.UpdatedAt)})
		}
		return rows
	})
}

// unshare removes members from an image: they no longer see it. Removing a tenant that is not
// a member is no error (the end state is the one asked for), but it is said.
func (a *app) unshare(ctx context.Context, args []string) error {
	fs := a.flags("unshare", "--image ID --region REGION --members TENANT[,TENANT...]")
	var im imageArgs
	var members list
	im.flags(fs)
	fs.Var(&members, "members", "tenant(s) to remove (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := im.check(); err != nil {
		return err
	}
	if len(members) == 0 {
		return usageErr("--members is required")
	}
	cc, err := a.cloud(ctx)
	if err != nil {
		return err
	}
	if _, err := cc.GetImage(ctx, im.region, im.id); err != nil {
		return notFound(err, cc, im)
	}
	for _, m := range members {
		err := cc.DeleteMember(ctx, im.region, im.id, m)
		switch {
		case cloud.IsNotFound(err):
			fmt.Fprintf(a.stderr, "tenant %s was not a member of image %s\n", m, im.id)
		case err != nil:
			return err
		default:
			fmt.Fprintf(a.stderr, "removed tenant %s from image %s in %s\n", m, im.id, im.region)
		}
	}
	return nil
}
