package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/workflows"
)

// taskArgs are the flags of the commands that run one cloud task.
type taskArgs struct {
	out
	wait bool
	poll time.Duration
}

func (t *taskArgs) flags(fs *flag.FlagSet) {
	t.out.flag(fs)
	fs.BoolVar(&t.wait, "wait", true, "wait for the task to end, showing its status (--wait=false to return at once)")
	fs.DurationVar(&t.poll, "poll-interval", 5*time.Second, "time between polls of the task")
}

// export exports an image of this account to a Cloud Files container in its region, as the
// quickstart's export task does, and waits for the VHD.
func (a *app) export(ctx context.Context, args []string) error {
	fs := a.flags("export", "--image ID --region REGION [--container NAME] [--wait=false] [--json]")
	var im imageArgs
	var ta taskArgs
	var container string
	im.flags(fs)
	ta.flags(fs)
	fs.StringVar(&container, "container", "exports", "Cloud Files container to export into (made if missing)")
	cc, img, err := a.imageOf(ctx, fs, args, &im)
	if err != nil {
		return err
	}
	if err := activities.Exportable(img, cc.Tenant(), im.region); err != nil {
		return errors.New(plain(err))
	}
	if err := cc.EnsureContainer(ctx, im.region, container); err != nil {
		return err
	}
	t, err := cc.Export(ctx, im.region, im.id, container)
	if err != nil {
		return err
	}
	_, err = a.finishTask(ctx, ta, im.region, t, fmt.Sprintf("export of %s (%s)", img.Name, mib(img.Size)))
	return err
}

// importVHD imports a VHD object from a Cloud Files container as a new image, as the
// quickstart's import task does.
func (a *app) importVHD(ctx context.Context, args []string) error {
	fs := a.flags("import", "--region REGION --container NAME --object NAME.vhd --name IMAGE-NAME [flags]")
	var ta taskArgs
	var region, container, object, name, checksum string
	regionFlag(fs, &region, "")
	ta.flags(fs)
	fs.StringVar(&container, "container", "", "Cloud Files container holding the VHD (required)")
	fs.StringVar(&object, "object", "", "the VHD object (required)")
	fs.StringVar(&name, "name", "", "name of the new image (required)")
	fs.StringVar(&checksum, "checksum", "", "MD5 the new image must have (checked when the import ends)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if region == "" || container == "" || object == "" || name == "" {
		return usageErr("--region, --container, --object and --name are required")
	}
	region = workflows.CanonicalRegion(region)
	cc, err := a.cloud(ctx)
	if err != nil {
		return err
	}
	info, err := cc.HeadObject(ctx, region, container, object)
	if cloud.IsNotFound(err) {
		return fmt.Errorf("no object %s/%s in %s's Cloud Files for account %s", container, object, region, cc.Tenant())
	}
	if err != nil {
		return err
	}
	t, err := cc.Import(ctx, region, container, object, name)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("import of %s/%s (%s)", container, object, mib(info.Size))
	if t, err = a.finishTask(ctx, ta, region, t, what); err != nil || !ta.wait || checksum == "" {
		return err
	}
	img, err := cc.GetImage(ctx, region, t.Result["image_id"])
	if err == nil && img.Checksum != checksum {
		return fmt.Errorf("imported image %s has checksum %s, not %s", img.ID, img.Checksum, checksum)
	}
	return err
}

// finishTask prints the started task, or waits for it and prints how it ended.
func (a *app) finishTask(ctx context.Context, ta taskArgs, region string, t cloud.Task,
	what string) (cloud.Task, error) {
	if ta.wait {
		var err error
		if t, err = a.waitTask(ctx, region, t, what, ta.poll); err != nil {
			return t, err
		}
	}
	if err := a.print(ta.out, t, func() [][]string { return taskRows(t) }); err != nil {
		return t, err
	}
	if t.Status == "failure" {
		return t, fmt.Errorf("task %s failed: %s", t.ID, orDash(t.Message))
	}
	return t, nil
}

// waitTask polls the task until it ends, showing its status and how long it has run. A poll
// the cloud could not answer (busy, away) is waited out, as the workflows do.
func (a *app) waitTask(ctx context.Context, region string, t cloud.Task, what string,
	every time.Duration) (cloud.Task, error) {
	start := time.Now()
	note := ""
	for !t.Done() {
		a.progress(fmt.Sprintf("%s: task %s %s, %s%s", what, t.ID, t.Status, time.Since(start).Round(time.Second),
			note))
		select {
		case <-ctx.Done():
			return t, fmt.Errorf("stopped waiting; task %s goes on in the cloud: %w", t.ID, ctx.Err())
		case <-time.After(every):
		}
		next, err := a.cc.GetTask(ctx, region, t.ID)
		switch {
		case err == nil:
			t, note = next, ""
		case !activities.TransientPoll(err):
			return t, err
		default: // said, not hidden: the cloud is busy or away, and the wait goes on
			note = fmt.Sprintf(" (last poll unanswered, will ask again: %s)", truncateText(err.Error(), 120))
		}
	}
	a.progress(fmt.Sprintf("%s: task %s %s after %s", what, t.ID, t.Status, time.Since(start).Round(time.Second)))
	if a.tty {
		fmt.Fprintln(a.stderr)
	}
	return t, nil
}

func taskRows(t cloud.Task) [][]string {
	rows := [][]string{{"FIELD", "VALUE"}, {"id", t.ID}, {"type", t.Type}, {"status", t.Status},
		{"message", orDash(t.Message)}, {"created", when(t.CreatedAt)}, {"updated", when(t.UpdatedAt)}}
	for _, k := range slices.Sorted(maps.Keys(t.Result)) {
		rows = append(rows, []string{"result." + k, t.Result[k]})
	}
	return rows
}
