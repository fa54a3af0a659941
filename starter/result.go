package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// maxResultRows bounds the rows a result gets in a table (a bulk can list hundreds of copies).
const maxResultRows = 20

// resultRows shows what a finished run made, the thing its user came for, as rows: each new
// image by region (a migration, a distribution), each member's decision (a share), a bulk's
// counts and copies, an acceptance's decision. A result of another shape gets no rows.
func resultRows(result any) [][]string {
	m, ok := result.(map[string]any)
	if !ok {
		return nil
	}
	var rows [][]string
	for _, key := range []string{"targets", "regions"} { // MigrateResult, DistributeResult
		for _, t := range listOf(m[key]) {
			rows = append(rows, []string{"image " + str(t["region"]), imageText(t)})
			for _, mo := range listOf(t["members"]) {
				rows = append(rows, []string{"member " + str(mo["member"]), str(t["region"]) + " " + str(mo["status"])})
			}
		}
	}
	for _, mo := range listOf(m["members"]) { // ShareResult
		rows = append(rows, []string{"member " + str(mo["member"]), str(mo["status"])})
	}
	if d := str(m["decision"]); d != "" { // AcceptResult
		rows = append(rows, []string{"decision", strings.TrimSpace(d + " " + paren(str(m["reason"])))})
	}
	rows = append(rows, bulkRows(m)...)
	if len(rows) > maxResultRows {
		rows = append(rows[:maxResultRows], []string{"more", fmt.Sprintf("%d rows more (--json for all)",
			len(rows)-maxResultRows)})
	}
	return rows
}

// bulkRows shows a bulk's counts, its failures and the copies it made (BulkSummary).
func bulkRows(m map[string]any) [][]string {
	if _, ok := m["total"]; !ok {
		return nil
	}
	rows := [][]string{{"images", fmt.Sprintf("%v succeeded, %v failed of %v", m["succeeded"], m["failed"],
		m["total"])}}
	for _, f := range listOf(m["failures"]) {
		rows = append(rows, []string{"failed " + str(f["image_id"]), str(f["error"])})
	}
	for _, made := range listOf(m["made"]) {
		images, _ := made["images"].(map[string]any)
		var each []string
		for _, region := range slices.Sorted(maps.Keys(images)) {
			each = append(each, region+" "+str(images[region]))
		}
		rows = append(rows, []string{"copies of " + str(made["source_image_id"]), strings.Join(each, ", ")})
	}
	return rows
}

// imageText is one region's outcome: the new image's id and how it went.
func imageText(t map[string]any) string {
	notes := []string{str(t["status"])}
	if t["reused"] == true {
		notes = append(notes, "reused")
	}
	if p := str(t["path"]); p != "" {
		notes = append(notes, p)
	}
	if e := str(t["error"]); e != "" {
		notes = append(notes, e)
	}
	return strings.TrimSpace(orDash(str(t["image_id"])) + " " + paren(strings.Join(notes, ", ")))
}

func listOf(v any) []map[string]any {
	items, _ := v.([]any)
	var out []map[string]any
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}
