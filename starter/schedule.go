package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/imageflow/imageflow/internal/searchattr"
	"github.com/imageflow/imageflow/workflows"
)

// Standing policies are Temporal Schedules: one job command, started by the schedule at its
// times, visible and controllable on the UI's Schedules page too.

const scheduleUsage = `usage: starter schedule <verb> [flags]

  create    --id ID (--cron SPEC | --every 24h) [--time-zone Z] [--overlap skip] [--catchup-window 1h]
            [--note TEXT] [--paused] <migrate|bulk-migrate|share|distribute> <that command's flags>
  list      the schedules, their next and last runs
  describe  --id ID: its spec, job, state and recent runs
  pause     --id ID [--note TEXT]
  unpause   --id ID [--note TEXT]
  trigger   --id ID: run the job now (the overlap policy still applies)
  delete    --id ID (its past runs stay)
`

// schedulePlan is a schedule being created: the job command it wraps fills in the action.
type schedulePlan struct {
	id, note             string
	opts                 client.ScheduleOptions
	created, paused      bool
	catchup              time.Duration
	overlap, cron, every string
	zone                 string
}

var overlapPolicies = map[string]enums.ScheduleOverlapPolicy{
	"skip":            enums.SCHEDULE_OVERLAP_POLICY_SKIP,
	"buffer-one":      enums.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
	"buffer-all":      enums.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
	"cancel-other":    enums.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER,
	"terminate-other": enums.SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER,
	"allow-all":       enums.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
}

// scheduledJobs are the job commands a schedule may wrap.
var scheduledJobs = []string{"migrate", "bulk-migrate", "share", "distribute"}

func (a *app) schedule(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(a.stderr, scheduleUsage)
		if len(args) == 0 {
			return usageErr("schedule needs a verb: create, list, describe, pause, unpause, trigger or delete")
		}
		return nil
	}
	verbs := map[string]func(context.Context, []string) error{
		"create": a.scheduleCreate, "list": a.scheduleList, "describe": a.scheduleDescribe,
		"pause": a.schedulePause(true), "unpause": a.schedulePause(false), "trigger": a.scheduleTrigger,
		"delete": a.scheduleDelete,
	}
	verb, ok := verbs[args[0]]
	if !ok {
		return usageErr("schedule verb %q is not one of create, list, describe, pause, unpause, trigger, delete",
			args[0])
	}
	return verb(ctx, args[1:])
}

func (a *app) scheduleCreate(ctx context.Context, args []string) error {
	fs := a.flags("schedule create", "--id ID (--cron SPEC | --every DURATION) [flags] <job command> [job flags]")
	p := &schedulePlan{}
	fs.StringVar(&p.id, "id", "", "the schedule's id (required)")
	fs.StringVar(&p.cron, "cron", "", `cron spec, e.g. "0 2 * * *" for 02:00 every day`)
	fs.StringVar(&p.every, "every", "", "an interval instead of a cron spec, e.g. 24h or 15m")
	fs.StringVar(&p.zone, "time-zone", "UTC", "IANA time zone the cron spec is read in, e.g. Europe/London")
	fs.StringVar(&p.overlap, "overlap", "skip", "when the last run still runs: skip, buffer-one, buffer-all, "+
		"cancel-other, terminate-other or allow-all")
	fs.Var(spanFlag{&p.catchup}, "catchup-window", "how late a missed run may still start after an outage (default 1h)")
	fs.StringVar(&p.note, "note", "", "a note shown with the schedule (why it exists, who owns it)")
	fs.BoolVar(&p.paused, "paused", false, "create it paused: nothing runs until it is unpaused")
	if err := parseLeading(fs, args); err != nil {
		return err
	}
	if err := p.build(); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 || !slices.Contains(scheduledJobs, rest[0]) {
		return usageErr("schedule create needs the job after its flags: one of %s, with that command's flags",
			strings.Join(scheduledJobs, ", "))
	}
	jobs := map[string]func(context.Context, []string) error{"migrate": a.migrate, "bulk-migrate": a.bulkMigrate,
		"share": a.share, "distribute": a.distribute}
	a.scheduling = p
	if err := jobs[rest[0]](ctx, rest[1:]); err != nil {
		return err
	}
	if !p.created {
		return errors.New("the job command started nothing to schedule") // a --dry-run, say
	}
	return nil
}

// build checks the schedule's own flags and fills its options.
func (p *schedulePlan) build() error {
	if p.id == "" {
		return usageErr("--id is required")
	}
	if err := workflows.CheckScheduleID(p.id); err != nil {
		return usageErr("--id: %v", err)
	}
	if (p.cron == "") == (p.every == "") {
		return usageErr("give --cron or --every, one of them")
	}
	if _, err := time.LoadLocation(p.zone); err != nil {
		return usageErr("--time-zone %q is not an IANA time zone (e.g. UTC, Europe/London)", p.zone)
	}
	spec := client.ScheduleSpec{TimeZoneName: p.zone}
	if p.cron != "" {
		if len(strings.Fields(p.cron)) != 5 {
			return usageErr("--cron %q: want five fields, minute hour day-of-month month day-of-week", p.cron)
		}
		spec.CronExpressions = []string{p.cron}
	} else {
		d, err := time.ParseDuration(p.every)
		if err != nil || d < time.Second {
			return usageErr("--every %q: want a duration of a second or more, e.g. 24h", p.every)
		}
		spec.Intervals = []client.ScheduleIntervalSpec{{Every: d}}
	}
	overlap, ok := overlapPolicies[p.overlap]
	if !ok {
		return usageErr("--overlap %q is not one of skip, buffer-one, buffer-all, cancel-other, terminate-other, "+
			"allow-all", p.overlap)
	}
	if p.catchup == 0 {
		p.catchup = time.Hour
	}
	p.opts = client.ScheduleOptions{ID: p.id, Spec: spec, Overlap: overlap, CatchupWindow: p.catchup,
		Note: p.note, Paused: p.paused}
	return nil
}

// createSchedule makes the schedule whose action starts jb; it replaces submit for a job a
// schedule wraps.
func (a *app) createSchedule(ctx context.Context, j *jobFlags, jb job) error {
	p := a.scheduling
	if j.via != "temporal" || j.wait {
		return usageErr("a scheduled job starts in Temporal at its times: --via nats and --wait do not apply")
	}
	tc, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	if !j.withoutWorker && !a.workerPolls(ctx, j.taskQueue, startupTries) {
		return fmt.Errorf("%w: %v", errUsage, errNoWorker{j.taskQueue, a.cfg.Temporal.Namespace})
	}
	action := &client.ScheduleWorkflowAction{ID: jb.id, Workflow: jb.workflow, Args: []any{jb.input},
		TaskQueue: j.taskQueue}
	action.StaticSummary, action.StaticDetails = workflows.Describe(jb.input, "the schedule "+p.id+
		", created by the starter as "+requester())
	if searchattr.Present(ctx, tc, a.cfg.Temporal.Namespace) {
		at := jb.attrs()
		action.TypedSearchAttributes = workflows.StartAttributes(at[0], at[1], jb.targets, jb.members)
	}
	p.opts.Action = action
	if _, err := tc.ScheduleClient().Create(ctx, p.opts); err != nil {
		return fmt.Errorf("create schedule %s: %w", p.id, err)
	}
	p.created = true
	return a.printJSON(map[string]any{"schedule_id": p.id, "workflow": jb.workflow, "workflow_id": jb.id,
		"task_queue": j.taskQueue, "paused": p.paused})
}

// scheduleRow is one schedule as list shows it.
type scheduleRow struct {
	ID       string    `json:"schedule_id"`
	Workflow string    `json:"workflow"`
	Spec     string    `json:"spec"`
	Paused   bool      `json:"paused"`
	Next     time.Time `json:"next,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	Note     string    `json:"note,omitempty"`
}

func (a *app) scheduleList(ctx context.Context, args []string) error {
	fs := a.flags("schedule list", "[--json]")
	var o out
	o.flag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	tc, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	it, err := tc.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	var list []scheduleRow
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		r := scheduleRow{ID: e.ID, Workflow: e.WorkflowType.Name, Spec: specText(e.Spec), Paused: e.Paused,
			Note: e.Note}
		if len(e.NextActionTimes) > 0 {
			r.Next = e.NextActionTimes[0]
		}
		if n := len(e.RecentActions); n > 0 {
			r.Last = e.RecentActions[n-1].ActualTime
		}
		list = append(list, r)
	}
	return a.print(o, list, func() [][]string {
		rows := [][]string{{"SCHEDULE", "JOB", "SPEC", "PAUSED", "NEXT (UTC)", "LAST (UTC)", "NOTE"}}
		for _, r := range list {
			rows = append(rows, []string{r.ID, r.Workflow, r.Spec, fmt.Sprint(r.Paused), when(r.Next), when(r.Last),
				orDash(r.Note)})
		}
		return rows
	})
}

// specText is a schedule spec in a line, as it was written: Temporal keeps a cron expression as
// a structured calendar, which is shown as the cron fields it came from.
func specText(s *client.ScheduleSpec) string {
	if s == nil {
		return "-"
	}
	var parts []string
	for _, c := range s.CronExpressions {
		parts = append(parts, "cron "+c)
	}
	for _, c := range s.Calendars {
		parts = append(parts, "cron "+calendarCron(c))
	}
	for _, i := range s.Intervals {
		parts = append(parts, "every "+i.Every.String())
	}
	if s.TimeZoneName != "" {
		parts = append(parts, "("+s.TimeZoneName+")")
	}
	return strings.Join(parts, " ")
}

// calendarCron writes a calendar as cron's five fields (minute hour day-of-month month
// day-of-week), with its seconds first when it has any. An empty minute or hour is 0 and an
// empty day or month is every one, as Temporal reads them.
func calendarCron(c client.ScheduleCalendarSpec) string {
	fields := []string{cronField(c.Minute, 0, 59, "0"), cronField(c.Hour, 0, 23, "0"),
		cronField(c.DayOfMonth, 1, 31, "*"), cronField(c.Month, 1, 12, "*"), cronField(c.DayOfWeek, 0, 6, "*")}
	if sec := cronField(c.Second, 0, 59, "0"); sec != "0" {
		fields = append([]string{"second " + sec + ":"}, fields...)
	}
	return strings.Join(fields, " ")
}

// cronField writes one field's ranges as cron does: *, */2, 5, 1-5, 0-30/10, and lists of them.
func cronField(ranges []client.ScheduleRange, lo, hi int, empty string) string {
	if len(ranges) == 0 {
		return empty
	}
	var out []string
	for _, r := range ranges {
		end, step := max(r.End, r.Start), max(r.Step, 1)
		var f string
		switch {
		case r.Start == lo && end == hi:
			f = "*"
		case r.Start == end:
			f = strconv.Itoa(r.Start)
		default:
			f = fmt.Sprintf("%d-%d", r.Start, end)
		}
		if step > 1 {
			f += "/" + strconv.Itoa(step)
		}
		out = append(out, f)
	}
	return strings.Join(out, ",")
}

// scheduleID parses a verb's --id.
func (a *app) scheduleID(name string, args []string, note *string) (string, error) {
	fs := a.flags("schedule "+name, "--id ID")
	var id string
	fs.StringVar(&id, "id", "", "the schedule's id (required)")
	if note != nil {
		fs.StringVar(note, "note", "", "why (shown with the schedule)")
	}
	if err := parse(fs, args); err != nil {
		return "", err
	}
	if id == "" {
		return "", usageErr("--id is required")
	}
	return id, nil
}

func (a *app) scheduleHandle(ctx context.Context, name string, args []string, note *string) (
	client.ScheduleHandle, error) {
	id, err := a.scheduleID(name, args, note)
	if err != nil {
		return nil, err
	}
	tc, err := a.temporal(ctx)
	if err != nil {
		return nil, err
	}
	return tc.ScheduleClient().GetHandle(ctx, id), nil
}

func (a *app) scheduleDescribe(ctx context.Context, args []string) error {
	h, err := a.scheduleHandle(ctx, "describe", args, nil)
	if err != nil {
		return err
	}
	d, err := h.Describe(ctx)
	if err != nil {
		return scheduleErr(h.GetID(), err)
	}
	recent := []map[string]any{}
	for _, r := range d.Info.RecentActions {
		recent = append(recent, map[string]any{"scheduled": r.ScheduleTime.UTC(), "started": r.ActualTime.UTC(),
			"workflow_id": r.StartWorkflowResult.WorkflowID})
	}
	running := []string{}
	for _, r := range d.Info.RunningWorkflows {
		running = append(running, r.WorkflowID)
	}
	next := []time.Time{}
	for _, t := range d.Info.NextActionTimes {
		next = append(next, t.UTC())
	}
	job := map[string]any{}
	if act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		job = map[string]any{"workflow": act.Workflow, "workflow_id": act.ID, "task_queue": act.TaskQueue}
	}
	return a.printJSON(map[string]any{"schedule_id": h.GetID(), "spec": specText(d.Schedule.Spec), "job": job,
		"paused": d.Schedule.State.Paused, "note": d.Schedule.State.Note,
		"overlap": strings.ToLower(strings.TrimPrefix(d.Schedule.Policy.Overlap.String(), "ScheduleOverlapPolicy")),
		"runs":    d.Info.NumActions, "skipped_overlap": d.Info.NumActionsSkippedOverlap,
		"missed_catchup": d.Info.NumActionsMissedCatchupWindow, "running": running, "recent": recent,
		"next": next})
}

func (a *app) schedulePause(pause bool) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		name := map[bool]string{true: "pause", false: "unpause"}[pause]
		var note string
		h, err := a.scheduleHandle(ctx, name, args, &note)
		if err != nil {
			return err
		}
		if note == "" {
			note = name + "d by the starter as " + requester()
		}
		if pause {
			err = h.Pause(ctx, client.SchedulePauseOptions{Note: note})
		} else {
			err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
		}
		if err != nil {
			return scheduleErr(h.GetID(), err)
		}
		return a.printJSON(map[string]any{"schedule_id": h.GetID(), "paused": pause, "note": note})
	}
}

func (a *app) scheduleTrigger(ctx context.Context, args []string) error {
	h, err := a.scheduleHandle(ctx, "trigger", args, nil)
	if err != nil {
		return err
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		return scheduleErr(h.GetID(), err)
	}
	return a.printJSON(map[string]any{"schedule_id": h.GetID(), "triggered": true})
}

func (a *app) scheduleDelete(ctx context.Context, args []string) error {
	h, err := a.scheduleHandle(ctx, "delete", args, nil)
	if err != nil {
		return err
	}
	if err := h.Delete(ctx); err != nil {
		return scheduleErr(h.GetID(), err)
	}
	return a.printJSON(map[string]any{"schedule_id": h.GetID(), "deleted": true})
}

// scheduleErr says plainly that a schedule does not exist.
func scheduleErr(id string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("no schedule %q (starter schedule list shows them)", id)
	}
	return fmt.Errorf("schedule %s: %w", id, err)
}
