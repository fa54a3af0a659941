package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/imageflow/imageflow/cloud"
	"github.com/imageflow/imageflow/events"
	"github.com/imageflow/imageflow/workflows"
)

// demo results, for the summary and for tests.
type demoRun struct {
	what, workflowID, runID string
	tenant                  string // whose namespace holds it ("" for the producer's)
	ok                      bool
	detail                  string
	// earlier is when the run started, for a run an earlier start of devstack made (the demo's
	// workflow ids come from its requests, so a restart finds the runs instead of running again).
	earlier time.Time
}

// runDemo publishes the demo's commands as events, as another system would, and waits for the
// runs: a migration of demo-web-01 from DFW to IAD and LON, then a share of the IAD copy with the
// partner, whose worker accepts it by event. It prints a summary with links to the UI.
func (s *stack) runDemo(ctx context.Context) bool {
	fmt.Fprintln(s.out, "\nDemo")
	// The sign-in and the look-up get the quick part of the demo's time; the runs get theirs below.
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var runs []demoRun
	pub := events.NewPublisher(s.js, subjects, "devstack")
	cc, err := cloud.New(
		lctx,
		cloud.Credentials{IdentityURL: s.emu.IdentityURL(), Username: "demo", APIKey: "demo-api-key"},
		cloud.Options{},
	)
	if err != nil {
		fmt.Fprintln(s.out, "  cannot log in to the emulator:", err)
		return false
	}
	imgs, err := cc.ListImages(lctx, "DFW", cloud.ImageFilter{Name: "demo-web-01", Owner: cc.Tenant()})
	if err != nil || len(imgs) != 1 {
		fmt.Fprintln(s.out, "  demo-web-01 is missing from the emulator's DFW region:", err)
		return false
	}
	web := imgs[0]
	ctx, cancel = context.WithTimeout(ctx, s.demoTimeout(web.Size))
	defer cancel()

	mig := workflows.MigrateInput{ImageID: web.ID, SourceRegion: "DFW", TargetRegions: []string{"IAD", "LON"}}
	migID := workflows.MigrateWorkflowID(cc.Tenant(), mig)
	fmt.Fprintf(
		s.out,
		"  publishing %s: %s (%s, %d MiB) DFW -> IAD, LON\n",
		subjects.Cmd(cc.Tenant(), events.CmdMigrate),
		web.Name,
		web.ID,
		web.Size>>20,
	)
	var res workflows.MigrateResult
	run := s.await(
		ctx,
		"migrate",
		migID,
		func() error {
			return s.traced(ctx, "devstack demo: migrate", func(ctx context.Context) error {
				return pub.Command(ctx, events.CmdMigrate, "devstack-demo-migrate", cc.Tenant(), mig)
			})
		},
		&res,
	)
	if run.ok {
		run.detail = fmt.Sprintf("%d MiB moved in %.1fs:", web.Size>>20, res.TotalSeconds)
		for _, t := range res.Targets {
			run.detail += fmt.Sprintf(" %s %s (%s)", t.Region, t.ImageID, t.Status)
		}
	}
	runs = append(runs, run)

	if run.ok && len(res.Targets) > 0 {
		share := workflows.ShareInput{Region: "IAD", ImageID: res.Targets[0].ImageID, Members: []string{"100002"},
			Deadline: workflows.Duration(5 * time.Minute), PollInterval: workflows.Duration(time.Minute)}
		shareID := workflows.ShareWorkflowID(cc.Tenant(), share)
		fmt.Fprintf(
			s.out,
			"  publishing %s: %s in IAD with tenant 100002 (the partner's worker accepts by event)\n",
			subjects.Cmd(cc.Tenant(), events.CmdShare),
			share.ImageID,
		)
		var sres workflows.ShareResult
		srun := s.await(
			ctx,
			"share",
			shareID,
			func() error { return pub.Command(ctx, events.CmdShare, "devstack-demo-share", cc.Tenant(), share) },
			&sres,
		)
		if srun.ok {
			srun.ok = len(sres.Members) == 1 && sres.Members[0].Status == "accepted"
			srun.detail = fmt.Sprintf("member 100002 %s", sres.Members[0].Status)
		}
		runs = append(runs, srun)
		acc := workflows.AcceptWorkflowID("100002", workflows.AcceptInput{Region: "IAD", ImageID: share.ImageID})
		pc, err := s.clientOf("100002")
		if err != nil {
			fmt.Fprintln(s.out, "  cannot reach the partner's namespace:", err)
			return false
		}
		if d, err := pc.DescribeWorkflowExecution(ctx, acc, ""); err == nil {
			info := d.GetWorkflowExecutionInfo()
			r := demoRun{what: "accept (partner)", workflowID: acc, runID: info.GetExecution().GetRunId(), ok: true,
				detail: "accepted by policy: producer 100001 is trusted", tenant: "100002"}
			if started := info.GetStartTime().AsTime(); started.Before(s.started) {
				r.earlier = started
			}
			runs = append(runs, r)
		}
	}
	return s.summary(runs)
}

// await publishes (once) and waits for the run with the given id to finish, decoding its result.
func (s *stack) await(ctx context.Context, what, id string, publish func() error, result any) demoRun {
	r := demoRun{what: what, workflowID: id}
	if err := publish(); err != nil {
		r.detail = "publish failed: " + err.Error()
		return r
	}
	for {
		d, err := s.client.DescribeWorkflowExecution(ctx, id, "")
		var nf *serviceerror.NotFound
		if err == nil {
			info := d.GetWorkflowExecutionInfo()
			r.runID = info.GetExecution().GetRunId()
			if started := info.GetStartTime().AsTime(); started.Before(s.started) {
				r.earlier = started
				fmt.Fprintf(s.out, "  %s ran before (started %s); its result follows\n", what, when(started))
			} else {
				fmt.Fprintf(s.out, "  %s started: go run ./starter wait %s\n    %s\n", what, id, s.link(r))
			}
			break
		}
		if !errors.As(err, &nf) || ctx.Err() != nil {
			r.detail = "waiting for the run: " + err.Error()
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := s.follow(ctx, what, id, r.runID, result); err != nil {
		r.detail = "failed: " + err.Error()
		return r
	}
	r.ok = true
	return r
}

// demoTimeout is how long the demo's runs may take: ten minutes, and with slow tasks
// (--task-bytes-per-second) twice the migration's export and import besides.
func (s *stack) demoTimeout(size int64) time.Duration {
	d := 10 * time.Minute
	if s.o.taskRate > 0 {
		d += 4 * time.Duration(float64(size)/float64(s.o.taskRate)*float64(time.Second))
	}
	return d
}

// follow waits for the run's result, saying its step when it has changed, every progressEvery of
// the options (with slow tasks, --task-bytes-per-second, a migration takes minutes).
func (s *stack) follow(ctx context.Context, what, id, runID string, result any) error {
	done := make(chan error, 1)
	go func() { done <- s.client.GetWorkflow(ctx, id, runID).Get(ctx, result) }()
	tick := time.NewTicker(s.o.progressEvery)
	defer tick.Stop()
	last := ""
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if step := s.stepOf(ctx, id); step != "" && step != last {
				fmt.Fprintf(s.out, "  %s: %s\n", what, step)
				last = step
			}
		}
	}
}

// stepOf is a run's step as its status query tells it, "" when it cannot be asked.
func (s *stack) stepOf(ctx context.Context, id string) string {
	v, err := s.client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		return ""
	}
	var st struct {
		Step string    `json:"step"`
		ETA  time.Time `json:"eta"`
	}
	if v.Get(&st) != nil {
		var step string
		if v.Get(&step) != nil {
			return ""
		}
		return step
	}
	if !st.ETA.IsZero() {
		return st.Step + " (ETA " + st.ETA.UTC().Format("15:04:05") + " UTC)"
	}
	return st.Step
}

func (s *stack) link(r demoRun) string {
	return fmt.Sprintf(
		"%s/namespaces/%s/workflows/%s/%s/history",
		s.ui.URL,
		s.namespace(cmp.Or(r.tenant, "100001")),
		url.PathEscape(r.workflowID),
		r.runID,
	)
}

func (s *stack) summary(runs []demoRun) bool {
	fmt.Fprintln(s.out, "\nSummary")
	all := len(runs) > 0
	for _, r := range runs {
		mark := "ok    "
		if !r.ok {
			mark, all = "FAILED", false
		}
		detail := r.detail
		if !r.earlier.IsZero() {
			detail += " (the earlier run of " + when(r.earlier) + "; nothing new ran)"
		}
		fmt.Fprintf(s.out, "  %s %-17s %s\n         %s\n         go run ./starter status %s\n", mark, r.what,
			detail, s.link(r), r.workflowID)
	}
	fmt.Fprintf(s.out, "\n  All runs: %s/namespaces/%s/workflows\n", s.ui.URL, s.namespace("100001"))
	if link := s.traceLink(); link != "" {
		fmt.Fprintf(s.out, "  The migration's trace (bridge, workflow, activities, cloud calls): %s\n", link)
		found, err := s.checkTrace(context.Background())
		if err != nil {
			found, all = "FAILED: "+err.Error(), false
		}
		fmt.Fprintf(s.out, "    in Jaeger: %s\n", found)
	}
	s.createDemoSchedule(context.Background())
	s.starterEnv()
	cli := "temporal workflow list --address " + s.temporal.Address
	if s.o.isolated {
		// The operator's view, as the UI's: the internal frontend asks no key and sees every namespace.
		cli = fmt.Sprintf("temporal workflow list --address %s --namespace %s (the operator's internal "+
			"frontend; tenants use %s with their key)", s.temporal.InternalAddress, s.namespace("100001"),
			s.temporal.Address)
	}
	fmt.Fprintf(s.out, "  With the temporal CLI (https://docs.temporal.io/cli#install): %s\n", cli)
	return all
}

// starterEnv prints every variable the starter needs against this stack, as the demo account,
// so a session can start by pasting it: a forgotten task queue used to leave jobs waiting for a
// worker that serves another.
func (s *stack) starterEnv() {
	natsURL := ""
	if s.nats != nil {
		natsURL = s.nats.ClientURL()
	}
	fmt.Fprintf(s.out, "\n  The starter's environment for the demo account (paste it into a shell):\n"+
		"    export IMAGEFLOW_TEMPORAL_ADDRESS=%s IMAGEFLOW_TEMPORAL_NAMESPACE=%s \\\n"+
		"      IMAGEFLOW_TEMPORAL_TASK_QUEUE=%s IMAGEFLOW_NATS_URL=%s \\\n"+
		"      IMAGEFLOW_CLOUD_IDENTITY_URL=%s IMAGEFLOW_CLOUD_USERNAME=%s\n"+
		"    and IMAGEFLOW_CLOUD_API_KEY, the demo account's key (in the README; never printed here)\n",
		s.temporal.Address, s.namespace("100001"), producerQueue, natsURL, s.emu.IdentityURL(), "demo")
	if s.o.isolated {
		fmt.Fprintf(s.out, "    with --isolated also IMAGEFLOW_TEMPORAL_PLAINTEXT=true and IMAGEFLOW_TEMPORAL_API_KEY, the "+
			"demo tenant's key (in the README; it opens only %s)\n", s.namespace("100001"))
	}
	if s.o.natsAuth {
		fmt.Fprintf(s.out, "    with --nats-auth also IMAGEFLOW_NATS_USER=%s and IMAGEFLOW_NATS_PASSWORD, that user's "+
			"password (%s; the README has the demo one)\n", events.UserName(events.RoleSender, "100001"),
			events.PasswordVar(events.RoleSender, "100001"))
	}
}

// when is a time for the summary: UTC, to the second.
func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
