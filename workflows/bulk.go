package workflows

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"errors"
	"go.temporal.io/sdk/workflow"

	"github.com/imageflow/imageflow/activities"
	"github.com/imageflow/imageflow/cloud"
)

// BulkRequest asks to migrate every image of the account that matches the filter.
type BulkRequest struct {
	SourceRegion  string            `json:"source_region"`
	TargetRegions []string          `json:"target_regions"`
	Filter        cloud.ImageFilter `json:"filter"`                // name, tags, properties
	Concurrency   int               `json:"concurrency,omitempty"` // migrations at once (default 4)
	Policy        string            `json:"policy,omitempty"`
	Cleanup       string            `json:"cleanup,omitempty"`
	// BatchSize is how many migrations one run starts before it continues as new (default 100),
	// keeping each run's history small for lists of thousands.
	BatchSize int `json:"batch_size,omitempty"`
	// LineageKeep is every child's (see MigrateInput): nightly DR copies of many servers.
	LineageKeep int `json:"lineage_keep,omitempty"`
	// Deadline, when set, is every child's deadline; once it passes no more children start and
	// the images left count as failed.
	Deadline time.Time `json:"deadline,omitzero"`
	// CreatedWithin, when set, takes only images created this long before the run starts (with
	// created_after, the later of the two): a scheduled run's "since the last run", with some
	// overlap to spare, as copies already made are found and reused.
	CreatedWithin Duration `json:"created_within,omitempty"`
	// Keep, above 0 and with LineageKeep, is the retention that follows the run: in each target,
	// the newest Keep copies of each migrated server's lineage stay and older copies imageflow made
	// are deleted (see activities.PlanPrune). The nightly DR copy that keeps a week: 7.
	Keep int `json:"keep,omitempty"`
}

// Normalize fills defaults and rejects a request that cannot be run.
func (r *BulkRequest) Normalize() error {
	if err := normalizeRoute("bulk-migrate", &r.SourceRegion, r.TargetRegions, false); err != nil {
		return err
	}
	if err := normalizePolicies("bulk-migrate", &r.Policy, &r.Cleanup); err != nil {
		return err
	}
	if r.Concurrency < 0 || r.Concurrency > 64 || r.BatchSize < 0 || r.BatchSize > 1000 {
		return invalid("bulk-migrate: concurrency must be 1 to 64 and batch_size 1 to 1000")
	}
	if r.LineageKeep < 0 || r.LineageKeep > 10 {
		return invalid("bulk-migrate: lineage_keep must be 0 (off) to 10, got %d", r.LineageKeep)
	}
	if r.Keep < 0 || r.Keep > 100 || (r.Keep > 0 && r.LineageKeep == 0) {
		return invalid("bulk-migrate: keep (0 to 100) prunes lineages, so it needs lineage_keep; got keep %d",
			r.Keep)
	}
	if err := r.CreatedWithin.check("bulk-migrate: created_within"); err != nil {
		return err
	}
	if r.Concurrency == 0 {
		r.Concurrency = 4
	}
	if r.BatchSize == 0 {
		r.BatchSize = 100
	}
	if _, err := path.Match(r.Filter.NamePattern, ""); err != nil {
		return invalid("bulk-migrate: filter name_pattern %q is not a shell pattern: %v", r.Filter.NamePattern, err)
	}
	if err := checkText("bulk-migrate: filter name_pattern", r.Filter.NamePattern, maxNameLen); err != nil {
		return err
	}
	return checkText("bulk-migrate: filter name", r.Filter.Name, maxNameLen)
}

// ListFilter is the filter the request lists owner's images with when it runs at now.
func (r BulkRequest) ListFilter(now time.Time, owner string) cloud.ImageFilter {
	f := r.Filter
	f.Owner = owner
	if since := now.Add(-r.CreatedWithin.D()); r.CreatedWithin > 0 && since.After(f.CreatedAfter) {
		f.CreatedAfter = since
	}
	return f
}

// BulkInput is BulkMigrate's input: the request, and the state a run carries to the next when
// it continues as new. Requests (events, the starter) hold only a BulkRequest, so a sender can
// never hand the workflow a state of its own making.
type BulkInput struct {
	BulkRequest
	Pending []string `json:"pending,omitempty"`
	Listed  bool     `json:"listed,omitempty"`
	// Lineages are the listed images' servers, pruned at the end when Keep is set.
	Lineages []string    `json:"lineages,omitempty"`
	Summary  BulkSummary `json:"summary"`
}

// BulkSummary counts outcomes; Failures keeps the first 100 reasons.
type BulkSummary struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	// AlreadyDone counts the succeeded images an earlier run of the same migration had done (a
	// bulk started again after a cancel, or to retry what failed): their outcome is taken from
	// that run, nothing is redone.
	AlreadyDone int `json:"already_done,omitempty"`
	Failed      int `json:"failed"`
	// NotStarted counts the images a cancelled bulk left; the same request started again takes them.
	NotStarted int           `json:"not_started,omitempty"`
	Failures   []BulkFailure `json:"failures,omitempty"`
	Runs       int           `json:"runs"`
	// Started is when the bulk began migrating (its first run), the start of its rate.
	Started time.Time `json:"started,omitzero"`
	// Made lists which image each migrated source became in each target (the first MaxBulkMade).
	Made []BulkMade `json:"made,omitempty"`
}

// MaxBulkMade bounds the copies a bulk summary lists (each child's own result has all of its own).
const MaxBulkMade = 500

// BulkMade is one source image's copies, region by region.
type BulkMade struct {
	SourceImageID string            `json:"source_image_id"`
	Images        map[string]string `json:"images"` // target region -> image id
	Reused        []string          `json:"reused,omitempty"`
}

// made records a successful child's copies.
func (s *BulkSummary) made(source string, res MigrateResult) {
	if len(s.Made) >= MaxBulkMade {
		return
	}
	m := BulkMade{SourceImageID: source, Images: map[string]string{}}
	for _, t := range res.Targets {
		if t.Status == "succeeded" {
			m.Images[t.Region] = t.ImageID
			if t.Reused {
				m.Reused = append(m.Reused, t.Region)
			}
		}
	}
	s.Made = append(s.Made, m)
}

// BulkFailure is one image that did not migrate, and why.
type BulkFailure struct {
	ImageID string `json:"image_id"`
	Error   string `json:"error"`
}

// BulkStatus answers the status query.
type BulkStatus struct {
	// Step is listing, migrating, draining (cancelled: the running migrations finish, no more
	// start), pruning or done.
	Step string `json:"step"`
	// Running is how many migrations are under way; Left how many are not started yet.
	Running int         `json:"running"`
	Left    int         `json:"left"`
	Summary BulkSummary `json:"summary"`
	// PerHour is the images ended per hour since the bulk began, and ETA when the rest would end
	// at that rate, as of the workflow's last step (a child ending); status recomputes both.
	PerHour float64   `json:"per_hour,omitempty"`
	ETA     time.Time `json:"eta,omitzero"`
}

// Ended is how many images have an outcome.
func (s BulkStatus) Ended() int { return s.Summary.Succeeded + s.Summary.Failed }

// Pace sets PerHour and ETA as of now: the rate since the bulk began, and the images not ended
// yet at that rate. Without an image ended there is no rate, and no ETA.
func (s *BulkStatus) Pace(now time.Time) {
	took := now.Sub(s.Summary.Started)
	if s.Summary.Started.IsZero() || took <= 0 || s.Ended() == 0 {
		s.PerHour, s.ETA = 0, time.Time{}
		return
	}
	s.PerHour = float64(s.Ended()) / took.Hours()
	rest := float64(s.Left + s.Running)
	s.ETA = now.Add(time.Duration(rest / s.PerHour * float64(time.Hour))).UTC().Truncate(time.Second)
}

// BulkWorkflowID is the run for this request.
func BulkWorkflowID(tenant string, in BulkRequest) string {
	f := in.Filter
	parts := []string{
		strings.ToUpper(in.SourceRegion),
		"to",
		strings.Join(sortedCopy(upper(in.TargetRegions)), "+"),
		"name=" + f.Name,
	}
	for _, t := range sortedCopy(f.Tags) {
		parts = append(parts, "tag="+t)
	}
	keys := make([]string, 0, len(f.Properties))
	for k := range f.Properties {
		keys = append(keys, k)
	}
	for _, k := range sortedCopy(keys) {
		parts = append(parts, k+"="+f.Properties[k])
	}
	parts = append(parts, variant(orDefault(in.Policy, PolicyAll), orDefault(in.Cleanup, CleanupOnSuccess),
		f.NamePattern, f.CreatedBefore, f.CreatedAfter, in.LineageKeep))
	if in.CreatedWithin > 0 {
		parts = append(parts, "within="+in.CreatedWithin.D().String())
	}
	if in.Keep > 0 {
		parts = append(parts, "keep="+strconv.Itoa(in.Keep))
	}
	return key("bulk", tenant, parts...)
}

// BulkMigrate lists the matching images once, then runs MigrateImage children, Concurrency at a
// time, continuing as new every BatchSize children.
func BulkMigrate(ctx workflow.Context, in BulkInput) (BulkSummary, error) {
	if err := in.BulkRequest.Normalize(); err != nil {
		return in.Summary, err
	}
	if in.Summary.Runs == 0 {
		if err := CheckDeadline("bulk-migrate: deadline", in.Deadline, workflow.Now(ctx)); err != nil {
			return in.Summary, err
		}
	}
	in.Summary.Runs++
	st := &BulkStatus{Step: "listing", Summary: in.Summary}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (BulkStatus, error) { return *st, nil }); err != nil {
		return in.Summary, err
	}
	var acct activities.Account
	err := workflow.ExecuteActivity(withActivity(ctx, "who am I", time.Minute), a.Authenticate).Get(ctx, &acct)
	if err != nil {
		return in.Summary, err
	}
	if !in.Listed {
		f := in.ListFilter(workflow.Now(ctx), acct.Tenant)
		var imgs []activities.Listed
		if err := workflow.ExecuteActivity(withActivity(ctx, "list images to migrate", 10*time.Minute),
			a.ListImageIDs, activities.ListImagesInput{Region: in.SourceRegion, Filter: f, Lineages: in.Keep > 0}).
			Get(ctx, &imgs); err != nil {
			return in.Summary, err
		}
		for _, img := range imgs {
			in.Pending = append(in.Pending, img.ID)
			if l := img.Lineage; in.Keep > 0 && l != "" && !slices.Contains(in.Lineages, l) {
				in.Lineages = append(in.Lineages, l)
			}
		}
		in.Listed, in.Summary.Total = true, len(imgs)
	}
	if in.Summary.Started.IsZero() {
		in.Summary.Started = workflow.Now(ctx)
	}
	st.Step = "migrating"
	b := &bulkRun{in: &in, st: st, tenant: acct.Tenant}
	switch err := b.migrate(ctx); {
	case errors.Is(err, errBatchDone):
		return in.Summary, workflow.NewContinueAsNewError(ctx, BulkMigrateWorkflow, in)
	case err != nil:
		return in.Summary, err
	}
	st.Step = "pruning"
	if err := in.prune(ctx); err != nil {
		in.Summary.Failures = append(in.Summary.Failures, BulkFailure{Error: "retention: " + err.Error()})
	}
	st.Step, st.Summary = "done", in.Summary
	status := JobSucceeded
	if in.Summary.Failed > 0 {
		status = JobPartial
	}
	setJobStatus(
		ctx,
		status,
		fmt.Sprintf("%d migrated, %d failed of %d", in.Summary.Succeeded, in.Summary.Failed, in.Summary.Total),
	)
	return in.Summary, nil
}

// prune keeps each lineage's newest Keep copies in every target.
func (in *BulkInput) prune(ctx workflow.Context) error {
	for _, l := range in.Lineages {
		for _, r := range in.TargetRegions {
			p := activities.PruneInput{Region: r, Lineage: l, Keep: in.Keep}
			if err := workflow.ExecuteActivity(withActivity(ctx, "prune "+l+" in "+r, 10*time.Minute), a.Prune, p).
				Get(ctx, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// skipOverdue counts the images not started because the deadline passed as failed.
func (in *BulkInput) skipOverdue() {
	for _, id := range in.Pending {
		in.Summary.Failed++
		if len(in.Summary.Failures) < 100 {
			in.Summary.Failures = append(
				in.Summary.Failures,
				BulkFailure{
					ImageID: id,
					Error:   "not started: the deadline " + in.Deadline.Format(time.RFC3339) + " passed",
				},
			)
		}
	}
	in.Pending = nil
}
