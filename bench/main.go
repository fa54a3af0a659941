// Command bench measures imageflow against its limits and alternatives, each against a baseline in
// the same run, and prints a table (and writes it as Markdown with --out):
//
//	go run ./bench                  # all twelve rows (see bench/README.md for the time)
//	go run ./bench --only 1,4       # some rows
//	go run ./bench --quick          # smaller sizes, a smoke run of every row
//
// Everything runs on this machine: the emulator (in this process), an embedded Temporal server on
// SQLite, an embedded NATS server, and the real worker binary as a child process where a row
// measures the worker itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// row is one result line of the table.
type row struct {
	n        int
	name     string
	measured string
	baseline string
	ratio    string
	goal     string
	met      bool
	// unjudged, when set, replaces yes/no in the met column: why the goal does not apply here.
	unjudged string
	note     string
}

type sizes struct {
	loopback, slow, memSmall, memLarge, lineage int64
	huge, hugeBase                              int64 // row 11: the real-size image and its baseline
	events, shares                              int
	scaleOut, scaleOutMiB                       int  // row 8: migrations per replica count, and their size
	evacuate, evacuateLimited                   int  // row 13: images evacuated, without and with a rate limit
	quick                                       bool // smoke sizes: goals that need full sizes are not judged
	runs                                        int  // repetitions of each transfer in rows 1 and 2
}

func main() {
	only := flag.String("only", "", "comma-separated rows to run (1-14); default all")
	quick := flag.Bool("quick", false, "smaller sizes: a smoke run of every row (numbers are not comparable)")
	out := flag.String("out", "", "also write the table as Markdown to this file")
	dir := flag.String("dir", "", "working folder (default: a temporary one, removed at the end)")
	runs := flag.Int("runs", 3, "times each transfer of row 1 (and row 2's raw stream) runs; the table shows the "+
		"median and the spread (row 2 always runs five rounds of its settings)")
	shares := flag.Int("shares", 0, "waiting shares in row 6 (default 10000; 100 with --quick)")
	evac := flag.Int("evacuate", 0, "images row 13 evacuates (default 10000; 200 with --quick)")
	evacLimited := flag.Int("evacuate-limited", 0, "images row 13 evacuates under the rate limit (default 1000; "+
		"100 with --quick)")
	pprofAddr := flag.String("pprof", "", "serve Go's profiles of the bench process (emulator, Temporal, NATS) here, "+
		"e.g. 127.0.0.1:6060")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { fmt.Fprintln(os.Stderr, "bench: pprof:", http.ListenAndServe(*pprofAddr, nil)) }()
	}
	sz := sizes{loopback: 2 << 30, slow: 512 << 20, memSmall: 1 << 30, memLarge: 4 << 30, lineage: 1 << 30,
		huge: 160_000_000_000, hugeBase: 4 << 30,
		events: 2000, shares: 10000, scaleOut: 48, scaleOutMiB: 16, evacuate: 10000, evacuateLimited: 1000}
	if *quick {
		sz = sizes{
			loopback: 256 << 20,
			slow:     64 << 20,
			memSmall: 128 << 20,
			memLarge: 512 << 20,
			lineage:  128 << 20,
			huge:     2 << 30,
			hugeBase: 256 << 20,
			events:   200,
			shares:   100,
			scaleOut: 8, scaleOutMiB: 4,
			evacuate: 200, evacuateLimited: 100,
			quick: true,
		}
	}
	sz.runs = *runs
	if *shares > 0 {
		sz.shares = *shares
	}
	if *evac > 0 {
		sz.evacuate = *evac
	}
	if *evacLimited > 0 {
		sz.evacuateLimited = *evacLimited
	}
	want := map[int]bool{}
	for _, s := range strings.Split(*only, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			want[n] = true
		}
	}
	run := func(n int) bool { return len(want) == 0 || want[n] }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := setup(ctx, *dir, sz, run)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer e.close()
	started := time.Now()
	var rows []row
	steps := []struct {
		n int
		f func(context.Context) ([]row, error)
	}{
		{1, e.loopbackCopy}, {2, e.slowLink}, {3, e.memory}, {4, e.eventStarts}, {5, e.orchestration}, {6, e.scale},
		{7, e.lineage}, {8, e.scaleOut}, {9, e.tenants},
		{10, e.cpuPerGiB}, {11, e.realSize}, {12, e.regionOutage}, {13, e.evacuate},
		{14, e.tracingCost},
	}
	for _, s := range steps {
		if !run(s.n) {
			continue
		}
		fmt.Fprintf(os.Stderr, "row %d ...\n", s.n)
		rs, err := s.f(ctx)
		if err != nil {
			rows = append(rows, row{n: s.n, name: "error", measured: err.Error()})
			fmt.Fprintf(os.Stderr, "row %d failed: %v\n", s.n, err)
			continue
		}
		rows = append(rows, rs...)
	}
	table := markdown(rows, time.Since(started), *quick)
	fmt.Println(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

func markdown(rows []row, took time.Duration, quick bool) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(
		&b,
		"Run %s on %s (%d CPUs), %s%s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		host,
		numCPU(),
		took.Round(time.Second),
		map[bool]string{true: ", --quick sizes", false: ""}[quick],
	)
	b.WriteString(
		"| # | measurement | imageflow | baseline | ratio | goal | met |\n| --- | --- | --- | --- | --- | --- | --- |\n",
	)
	for _, r := range rows {
		met := "yes"
		switch {
		case r.unjudged != "":
			met = r.unjudged
		case !r.met:
			met = "**no**"
		}
		fmt.Fprintf(
			&b,
			"| %d | %s | %s | %s | %s | %s | %s |\n",
			r.n,
			r.name,
			r.measured,
			r.baseline,
			r.ratio,
			r.goal,
			met,
		)
	}
	var notes []string
	for _, r := range rows {
		if r.note != "" {
			notes = append(notes, fmt.Sprintf("- row %d (%s): %s", r.n, r.name, r.note))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

func mibps(bytes int64, d time.Duration) float64 { return float64(bytes) / (1 << 20) / d.Seconds() }
