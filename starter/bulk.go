package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/workflows"
)

// bulkMigrate starts BulkMigrate, or with --dry-run prints its plan and changes nothing.
func (a *app) bulkMigrate(ctx context.Context, args []string) error {
	fs := a.flags("bulk-migrate", "--from REGION --to REGION[,REGION...] [filters] [--dry-run] [flags]")
	var j jobFlags
	var in workflows.BulkRequest
	var to, tags, props list
	var dryRun bool
	a.addJobFlags(fs, &j)
	fs.StringVar(&in.SourceRegion, "from", "", "source region (required)")
	fs.Var(&to, "to", "target region(s), comma-separated or repeated (required)")
	fs.StringVar(&in.Filter.Name, "name", "", "exact image name")
	fs.StringVar(&in.Filter.NamePattern, "name-pattern", "", "shell pattern the name must match (web-*)")
	fs.Var(&tags, "tag", "tag(s) every image must carry")
	fs.Var(&props, "property", "property key=value every image must carry (repeatable)")
	fs.Var(sinceFlag(&in.Filter.CreatedBefore), "created-before", "only images created before (a time, or 24h ago)")
	fs.Var(sinceFlag(&in.Filter.CreatedAfter), "created-after", "only images created after (a time, or 24h ago)")
	var within time.Duration
	fs.Var(spanFlag{&within}, "created-within", "only images created this long before the run starts (25h): "+
		"a schedule's \"since the last run\", reckoned when each run starts")
	fs.IntVar(&in.Concurrency, "concurrency", 4, "migrations at once (1 to 64)")
	fs.StringVar(&in.Policy, "policy", workflows.PolicyAll, "per image: all targets must succeed, or best-effort")
	fs.StringVar(&in.Cleanup, "cleanup", workflows.CleanupOnSuccess, "on-success, always or never")
	fs.IntVar(&in.LineageKeep, "lineage-keep", 0, "per image: keep this many copies per target for incremental "+
		"re-migration (0: off)")
	fs.IntVar(&in.Keep, "keep", 0, "with --lineage-keep: after the run, keep this many newest copies of each "+
		"server's snapshots per target, deleting older ones imageflow made (a week of nightly copies: 7)")
	fs.Var(deadlineFlag(&in.Deadline), "deadline", "when everything must be done: 6h from now, or a time")
	fs.BoolVar(&dryRun, "dry-run", false, "print the plan (images, bytes, runs already done, estimate); start nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	in.CreatedWithin = workflows.Duration(within)
	in.TargetRegions, in.Filter.Tags = to, tags
	if err := setProperties(&in.Filter, props); err != nil {
		return err
	}
	if err := in.Normalize(); err != nil {
		return usageErr("%s", plain(err))
	}
	tenant, err := a.tenantFor(ctx, &j)
	if err != nil {
		return err
	}
	if dryRun || !in.Deadline.IsZero() {
		p, err := a.plan(ctx, tenant, in)
		if err != nil {
			return err
		}
		if dryRun {
			return a.print(out{json: j.json}, p, p.rows)
		}
		if p.End.After(in.Deadline) {
			return fmt.Errorf("bulk migration cannot meet its deadline %s: %s, so it would end about %s "+
				"(see --dry-run)", in.Deadline.Format(time.RFC3339), p.Estimate.Text(), p.End.Format(time.RFC3339))
		}
	}
	return a.submit(ctx, &j, job{workflow: workflows.BulkMigrateWorkflow, command: events.CmdBulkMigrate,
		id: workflows.BulkWorkflowID(tenant, in), input: workflows.BulkInput{BulkRequest: in},
		event: in, targets: in.TargetRegions, attrs: func() []string { return []string{"", in.SourceRegion} }})
}

func setProperties(f *cloud.ImageFilter, props []string) error {
	for _, kv := range props {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageErr("--property wants key=value, got %q", kv)
		}
		if f.Properties == nil {
			f.Properties = map[string]string{}
		}
		f.Properties[k] = v
	}
	return nil
}

// bulkPlan is what a bulk migration would do.
type bulkPlan struct {
	Images      []plannedImage `json:"images"`
	ToMigrate   int            `json:"to_migrate"`
	AlreadyDone int            `json:"already_done"` // every target holds this migration's image
	WillFail    int            `json:"will_fail"`    // not exportable: the run would fail at once
	Bytes       int64          `json:"bytes"`        // to move
	// Estimate is the whole job's: tasks run Concurrency at a time in the cloud, while copies
	// share the worker's link, so copy time adds up and task time divides.
	Estimate activities.Estimate `json:"estimate"`
	End      time.Time           `json:"end"`
	Deadline time.Time           `json:"deadline,omitzero"`
}

type plannedImage struct {
	ID     string            `json:"id"`
	Name   string            `json:"name"`
	Size   int64             `json:"size"`
	Plan   string            `json:"plan"`             // migrate, done, fail
	Done   map[string]string `json:"done,omitempty"`   // target region -> image made by an earlier run
	Reason string            `json:"reason,omitempty"` // why it would fail
}

// plan lists what BulkMigrate would list and looks in each target for the images earlier runs
// made (by the migration id stamped on them), as the children do.
func (a *app) plan(ctx context.Context, tenant string, in workflows.BulkRequest) (bulkPlan, error) {
	cc, err := a.cloud(ctx)
	if err != nil {
		return bulkPlan{}, err
	}
	imgs, err := cc.ListImages(ctx, in.SourceRegion, in.ListFilter(time.Now(), tenant))
	if err != nil {
		return bulkPlan{}, err
	}
	made := map[string]map[string]string{} // migration id -> region -> image id
	for _, r := range in.TargetRegions {
		there, err := cc.ListImages(ctx, r, cloud.ImageFilter{Owner: tenant})
		if err != nil {
			return bulkPlan{}, err
		}
		for _, img := range there {
			if id := img.Properties[workflows.PropMigrationID]; id != "" {
				if made[id] == nil {
					made[id] = map[string]string{}
				}
				made[id][r] = img.ID
			}
		}
	}
	p := bulkPlan{Images: []plannedImage{}, Deadline: in.Deadline}
	rates := a.rates(ctx)
	var tasks, copies float64
	for _, img := range imgs {
		child := workflows.MigrateInput{ImageID: img.ID, SourceRegion: in.SourceRegion,
			TargetRegions: in.TargetRegions, Policy: in.Policy, Cleanup: in.Cleanup, LineageKeep: in.LineageKeep}
		pi := plannedImage{ID: img.ID, Name: img.Name, Size: img.Size, Plan: "migrate",
			Done: made[workflows.MigrateWorkflowID(tenant, child)]}
		switch err := activities.Exportable(img, tenant, in.SourceRegion); {
		case err != nil:
			pi.Plan, pi.Reason = "fail", plain(err)
			p.WillFail++
		case len(pi.Done) == len(in.TargetRegions):
			pi.Plan = "done"
			p.AlreadyDone++
		default:
			p.ToMigrate++
			left := len(in.TargetRegions) - len(pi.Done)
			e := rates.Estimate(img.Size, true)
			p.Bytes += img.Size * int64(left)
			tasks += e.ExportSeconds + e.ImportSeconds
			copies += e.CopySeconds * float64(left)
		}
		p.Images = append(p.Images, pi)
	}
	p.Estimate = activities.Estimate{Bytes: p.Bytes, Rates: rates, CopySeconds: copies,
		TotalSeconds: tasks/float64(in.Concurrency) + copies}
	p.End = time.Now().Add(time.Duration(p.Estimate.TotalSeconds * float64(time.Second))).UTC().Truncate(time.Second)
	return p, nil
}

func (p bulkPlan) rows() [][]string {
	rows := [][]string{{"IMAGE", "NAME", "SIZE", "PLAN"}}
	for _, i := range p.Images {
		plan := i.Plan
		switch {
		case i.Plan == "fail":
			plan = "fail: " + i.Reason
		case len(i.Done) > 0:
			var done []string
			for r, id := range i.Done {
				done = append(done, r+"="+id)
			}
			plan += " (reused: " + strings.Join(done, ", ") + ")"
		}
		rows = append(rows, []string{i.ID, i.Name, mib(i.Size), plan})
	}
	end := fmt.Sprintf("ends about %s UTC", when(p.End))
	if !p.Deadline.IsZero() {
		verdict := "meets"
		if p.End.After(p.Deadline) {
			verdict = "MISSES"
		}
		end += fmt.Sprintf("; %s the deadline %s UTC", verdict, when(p.Deadline))
	}
	return append(rows, []string{""},
		[]string{fmt.Sprintf("%d images: %d to migrate, %d already done, %d would fail", len(p.Images),
			p.ToMigrate, p.AlreadyDone, p.WillFail)},
		[]string{fmt.Sprintf("%s to move, %s; %s", mib(p.Bytes), p.Estimate.Text(), end)})
}
