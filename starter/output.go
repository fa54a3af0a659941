package main

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// out is how a command prints its answer: a table for people, or JSON for scripts (--json).
type out struct{ json bool }

func (o *out) flag(fs *flag.FlagSet) {
	fs.BoolVar(&o.json, "json", false, "print JSON for scripts instead of a table")
}

// print writes v as JSON with --json, else the table rows gives (a header first).
func (a *app) print(o out, v any, rows func() [][]string) error {
	if o.json {
		return a.printJSON(v)
	}
	return a.table(rows())
}

// table aligns rows in columns; the first row is the header.
func (a *app) table(rows [][]string) error {
	tw := tabwriter.NewWriter(a.stdout, 2, 8, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// mib shows a byte count in MiB, the unit images are thought of in.
func mib(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// when shows a time in UTC to the second, or "-".
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// orDash is s, or "-" for nothing.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
