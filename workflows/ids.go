package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"

	"go.temporal.io/sdk/workflow"
)

// key builds a readable, deterministic workflow id: "<kind>-<tenant>-<parts...>", with a hash
// suffix when the parts are long, so the same request always maps to the same run.
func key(kind, tenant string, parts ...string) string {
	id := kind + "-" + tenant + "-" + strings.Join(parts, "-")
	if len(id) <= 200 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:180] + "-" + hex.EncodeToString(sum[:8])
}

func sortedCopy(xs []string) []string {
	out := append([]string{}, xs...)
	sort.Strings(out)
	return out
}

// runKey names this run in the ids of the facts it publishes: a job run again announces again,
// while an activity's retry repeats an id the stream drops.
func runKey(ctx workflow.Context) string {
	ex := workflow.GetInfo(ctx).WorkflowExecution
	return ex.ID + "@" + ex.RunID
}

// variant is a short hash of the parts of a request that change its outcome but not what it is
// about, appended to workflow ids: two requests that differ there are two jobs, not one.
func variant(parts ...any) string {
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:4])
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
