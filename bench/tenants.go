package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageflow/imageflow/events"
)

// tenantCounts are row 9's accounts on one NATS.
var tenantCounts = []int{1, 10, 100}

// Row 9: one NATS, 1, 10 and 100 accounts' bridges, the same number of commands spread over the
// accounts. Commands travel on their account's subject and each bridge's consumer is filtered to
// it, so each command should reach one bridge however many run (with one subject for all, each
// reached every bridge and all but one discarded it). The commands wait in the stream, then the
// bridges start together and are timed to the last start; CPU is this process's (bridges, NATS
// and Temporal's frontend, all embedded), whose Temporal part per start is the same at every
// account count.
func (e *env) tenants(ctx context.Context) ([]row, error) {
	cmds := e.sz.events / 2
	if _, err := events.EnsureStream(ctx, e.js, "IMAGEFLOW", subjects, 1); err != nil {
		return nil, err
	}
	var rows []row
	var base tenantRun
	for _, n := range tenantCounts {
		r, err := e.tenantRound(ctx, n, cmds)
		if err != nil {
			return nil, fmt.Errorf("%d accounts: %w", n, err)
		}
		if n == tenantCounts[0] {
			base = r
		}
		rate, baseRate := float64(cmds)/r.took.Seconds(), float64(cmds)/base.took.Seconds()
		cpu, baseCPU := r.cpu.Seconds()*1000/float64(cmds), base.cpu.Seconds()*1000/float64(cmds)
		per := float64(r.deliveries) / float64(cmds)
		rows = append(rows, row{n: 9, name: fmt.Sprintf("%d account(s)' bridges on one NATS, %d commands", n, cmds),
			measured: fmt.Sprintf("%.2f deliveries/command, %.0f starts/s, %.2f CPU-ms/command", per, rate, cpu),
			baseline: fmt.Sprintf("1 account: %.0f starts/s, %.2f CPU-ms/command", baseRate, baseCPU),
			ratio:    fmt.Sprintf("rate %.2f, CPU %.2f", rate/baseRate, cpu/baseCPU),
			goal:     "1 delivery/command; rate >= 0.8 and CPU <= 1.25 of 1 account's",
			met:      r.deliveries == int64(cmds) && rate/baseRate >= 0.8 && cpu/baseCPU <= 1.25,
			note: fmt.Sprintf("%d accounts: %d bridges received %d events for %d commands; dead-lettered %d. "+
				"A separate NATS cluster moves NATS's CPU off this machine and adds a network hop per delivery "+
				"and ack: deliveries stay one per command, so the cost still does not grow with accounts", n, n,
				r.deliveries, cmds, r.dead)})
	}
	return rows, nil
}

type tenantRun struct {
	took       time.Duration
	cpu        time.Duration
	deliveries int64
	dead       int64
}

// tenantRound publishes cmds commands over n accounts, then runs n bridges until all started.
func (e *env) tenantRound(ctx context.Context, n, cmds int) (tenantRun, error) {
	tenant := func(i int) string { return strconv.Itoa(3000000 + n*1000 + i%n) }
	pub := events.NewPublisher(e.js, subjects, "bench")
	if err := parallel(cmds, 16, func(i int) error {
		return pub.Command(ctx, events.CmdMigrate, fmt.Sprintf("bench-tenants-%d-%05d", n, i), tenant(i),
			startInput(100000*n+i))
	}); err != nil {
		return tenantRun{}, err
	}
	var bridges []*events.Bridge
	for i := 0; i < n; i++ {
		nc, err := nats.Connect(e.nats.ClientURL())
		if err != nil {
			return tenantRun{}, err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return tenantRun{}, err
		}
		b, err := events.NewBridge(ctx, js, e.tc, events.BridgeConfig{Subjects: subjects, Stream: "IMAGEFLOW",
			Tenant: tenant(i), TaskQueue: "bench-nobody", Concurrency: 16, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return tenantRun{}, err
		}
		bridges = append(bridges, b)
	}
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, n)
	defer func() {
		cancel()
		for range bridges {
			<-done
		}
	}()
	cpu0, start := processCPU(), time.Now()
	for _, b := range bridges {
		go func() { _ = b.Run(bctx); done <- struct{}{} }()
	}
	var r tenantRun
	for {
		var started int64
		for _, b := range bridges {
			started += b.Stats.Started.Load() + b.Stats.Duplicates.Load() + b.Stats.DeadLettered.Load()
		}
		if started >= int64(cmds) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return r, fmt.Errorf("the bridges handled %d of %d commands", started, cmds)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.took, r.cpu = time.Since(start), processCPU()-cpu0
	time.Sleep(time.Second) // a delivery to a second bridge would show by now
	for _, b := range bridges {
		r.deliveries += b.Stats.Received.Load()
		r.dead += b.Stats.DeadLettered.Load()
	}
	return r, nil
}
