package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/workflows"
)

// imageArgs are the --image and --region every one-image command takes.
type imageArgs struct{ region, id string }

func (i *imageArgs) flags(fs *flag.FlagSet) {
	regionFlag(fs, &i.region, "")
	fs.StringVar(&i.id, "image", "", "image id (required)")
}

func (i *imageArgs) check() error {
	if i.region == "" || i.id == "" {
		return usageErr("--image and --region are required")
	}
	i.region = workflows.CanonicalRegion(i.region)
	return nil
}

// notFound turns the cloud's 404 for an image into the sentence the workflows use.
func notFound(err error, cc *cloud.Client, i imageArgs) error {
	if cloud.IsNotFound(err) {
		return errors.New(activities.ImageNotFound(i.id, i.region, cc.Tenant()))
	}
	return err
}

// imageCommand parses a one-image command's flags and connects to the cloud.
func (a *app) imageCommand(ctx context.Context, fs *flag.FlagSet, args []string, im *imageArgs) (*cloud.Client, error) {
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if err := im.check(); err != nil {
		return nil, err
	}
	return a.cloud(ctx)
}

// imageOf is imageCommand, then the image itself.
func (a *app) imageOf(ctx context.Context, fs *flag.FlagSet, args []string, im *imageArgs) (*cloud.Client,
	cloud.Image, error) {
	cc, err := a.imageCommand(ctx, fs, args, im)
	if err != nil {
		return nil, cloud.Image{}, err
	}
	img, err := cc.GetImage(ctx, im.region, im.id)
	if err != nil {
		return nil, cloud.Image{}, notFound(err, cc, *im)
	}
	return cc, img, nil
}

func (a *app) list(ctx context.Context, args []string) error {
	fs := a.flags("list", "--region REGION [filters] [--json]")
	var o out
	var region string
	var f cloud.ImageFilter
	var tags list
	o.flag(fs)
	regionFlag(fs, &region, "")
	fs.StringVar(&f.Name, "name", "", "exact image name")
	fs.StringVar(&f.NamePattern, "name-pattern", "", "shell pattern the name must match (web-*)")
	fs.StringVar(&f.Owner, "owner", "", "owner tenant")
	fs.StringVar(&f.Visibility, "visibility", "", "public, private or shared")
	fs.StringVar(&f.MemberStatus, "member-status", "", "images shared with this account, by its membership: "+
		"pending, accepted, rejected or all (implies --visibility shared)")
	fs.Var(&tags, "tag", "tag(s) every image must carry")
	var props list
	fs.Var(&props, "property", "property key=value every image must carry (repeatable), e.g. imageflow_family=web-base")
	if err := parse(fs, args); err != nil {
		return err
	}
	f.Tags = tags
	if err := setProperties(&f, props); err != nil {
		return err
	}
	if f.MemberStatus != "" && f.Visibility == "" {
		// Glance filters only shared images by member status and lists every public image
		// beside them; a member status asks about shares.
		f.Visibility = "shared"
	}
	cc, err := a.cloud(ctx)
	if err != nil {
		return err
	}
	if region == "" { // the account's default region, as the cloud's own clients do
		if region = cc.DefaultRegion(); region == "" {
			return usageErr("--region is required (account %s has no default region)", cc.Tenant())
		}
	}
	imgs, err := cc.ListImages(ctx, workflows.CanonicalRegion(region), f)
	if err != nil {
		return err
	}
	if imgs == nil {
		imgs = []cloud.Image{}
	}
	return a.print(o, imgs, func() [][]string {
		rows := [][]string{{"ID", "NAME", "STATUS", "SIZE", "VISIBILITY", "OWNER", "CREATED"}}
		for _, i := range imgs {
			rows = append(rows, []string{i.ID, i.Name, i.Status, mib(i.Size), i.Visibility, i.Owner, when(i.CreatedAt)})
		}
		return rows
	})
}

func (a *app) get(ctx context.Context, args []string) error {
	fs := a.flags("get", "--image ID --region REGION [--json]")
	var o out
	var im imageArgs
	o.flag(fs)
	im.flags(fs)
	_, img, err := a.imageOf(ctx, fs, args, &im)
	if err != nil {
		return err
	}
	return a.print(o, img, func() [][]string { return imageRows(img) })
}

// imageRows shows one image as field/value rows, properties last and sorted.
func imageRows(img cloud.Image) [][]string {
	rows := [][]string{{"FIELD", "VALUE"}, {"id", img.ID}, {"name", img.Name}, {"status", img.Status},
		{"owner", img.Owner}, {"visibility", img.Visibility}, {"size", mib(img.Size)},
		{"format", orDash(strings.Trim(img.DiskFormat+" in "+img.ContainerFormat, " in"))},
		{"needs", fmt.Sprintf("%d GB disk, %d MB RAM", img.MinDisk, img.MinRAM)},
		{"checksum", orDash(img.Checksum)}, {"protected", fmt.Sprint(img.Protected)},
		{"created", when(img.CreatedAt)}, {"tags", orDash(strings.Join(img.Tags, ", "))}}
	for _, k := range slices.Sorted(maps.Keys(img.Properties)) {
		rows = append(rows, []string{k, img.Properties[k]})
	}
	return rows
}

func (a *app) update(ctx context.Context, args []string) error {
	fs := a.flags("update", "--image ID --region REGION [--set k=v] [--remove k] [--tag t] [--name N] "+
		"[--visibility V]")
	var o out
	var im imageArgs
	var in activities.UpdateImageInput
	var set, remove, tags list
	o.flag(fs)
	im.flags(fs)
	fs.StringVar(&in.Name, "name", "", "new name")
	fs.StringVar(&in.Visibility, "visibility", "", "private, shared (needed to share it) or community")
	fs.Var(&set, "set", "property key=value (repeatable)")
	fs.Var(&remove, "remove", "property to remove (repeatable)")
	fs.Var(&tags, "tag", "tag to add (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := im.check(); err != nil {
		return err
	}
	in.Region, in.ImageID, in.Remove, in.Tags = im.region, im.id, remove, tags
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
	if err != nil {
		return notFound(err, cc, im)
	}
	return a.print(o, img, func() [][]string { return imageRows(img) })
}

// tags adds and removes tags; adding a tag the image has, or removing one it lacks, is no error.
func (a *app) tags(ctx context.Context, args []string) error {
	fs := a.flags("tags", "--image ID --region REGION [--add T,...] [--remove T,...] [--json]")
	var o out
	var im imageArgs
	var add, remove list
	o.flag(fs)
	im.flags(fs)
	fs.Var(&add, "add", "tag(s) to add")
	fs.Var(&remove, "remove", "tag(s) to remove")
	cc, err := a.imageCommand(ctx, fs, args, &im)
	if err != nil {
		return err
	}
	for _, t := range add {
		if err := cc.AddTag(ctx, im.region, im.id, t); err != nil {
			return notFound(err, cc, im)
		}
	}
	for _, t := range remove {
		if err := cc.DeleteTag(ctx, im.region, im.id, t); err != nil && !cloud.IsNotFound(err) {
			return err
		}
	}
	img, err := cc.GetImage(ctx, im.region, im.id)
	if err != nil {
		return notFound(err, cc, im)
	}
	return a.print(o, img.Tags, func() [][]string {
		rows := [][]string{{"TAG"}}
		for _, t := range img.Tags {
			rows = append(rows, []string{t})
		}
		return rows
	})
}

// remove deletes an image. A protected image is refused (unprotect it first, on purpose); the
// deletion is confirmed by typing the image id on a terminal, or by --yes in scripts.
func (a *app) remove(ctx context.Context, args []string) error {
	fs := a.flags("delete", "--image ID --region REGION [--yes]")
	var im imageArgs
	var yes bool
	im.flags(fs)
	fs.BoolVar(&yes, "yes", false, "delete without asking (required when not on a terminal)")
	cc, img, err := a.imageOf(ctx, fs, args, &im)
	if err != nil {
		return err
	}
	if img.Protected {
		return fmt.Errorf("image %s (%s) in %s is protected; set protected=false first if it really must go",
			img.ID, img.Name, im.region)
	}
	if !yes {
		if err := a.confirm(img, im.region); err != nil {
			return err
		}
	}
	if err := cc.DeleteImage(ctx, im.region, img.ID); err != nil {
		return notFound(err, cc, im)
	}
	fmt.Fprintf(a.stderr, "deleted image %s (%s) in %s\n", img.ID, img.Name, im.region)
	return nil
}

// confirm asks a person at a terminal to type the image id; anywhere else it refuses, so a
// script deletes only with --yes.
func (a *app) confirm(img cloud.Image, region string) error {
	if !a.tty || a.stdin == nil {
		return usageErr("delete needs --yes when not on a terminal (deleting image %s cannot be undone)", img.ID)
	}
	fmt.Fprintf(a.stderr, "Delete image %s (%s, %s) in %s? This cannot be undone. Type its id to confirm: ",
		img.ID, img.Name, mib(img.Size), region)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	if strings.TrimSpace(line) != img.ID {
		return errors.New("not confirmed; nothing was deleted")
	}
	return nil
}
