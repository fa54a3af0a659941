package config

// suggest names the known variable closest to a misspelled one (at most a few edits away), or
// "" when none is: IMAGEFLOW_TEMPORAL_TASKQUEUE is IMAGEFLOW_TEMPORAL_TASK_QUEUE, not a new one.
func suggest(name string, known map[string]bool) string {
	best, bestDist := "", 4
	for k := range known {
		if d := editDistance(name, k); d < bestDist || (d == bestDist && best != "" && k < best) {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is Levenshtein's distance between a and b (bytes: variable names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
