package workflows

import (
	"unicode"
	"unicode/utf8"
)

// Limits on text a request carries to the cloud or into summaries and logs.
const (
	maxNameLen = 255 // Glance's limit on an image name
	maxIDLen   = 64  // image ids are UUIDs; room for other clouds' ids
)

// checkText refuses text that is too long or carries control or bidirectional-formatting
// characters: they reach image names, summaries and logs, where they can hide or forge content.
func checkText(field, s string, max int) error {
	switch {
	case !utf8.ValidString(s):
		return invalid("%s is not valid UTF-8", field)
	case len(s) > max:
		return invalid("%s is %d bytes, more than %d", field, len(s), max)
	}
	for _, r := range s {
		if UnsafeRune(r) {
			return invalid("%s contains %U, a control character or an invisible or line-breaking one", field, r)
		}
	}
	return nil
}

// UnsafeRune reports a character that is invisible or moves text: control characters (Cc),
// Unicode's format characters (Cf: zero-width spaces and joiners, the byte-order mark, the
// bidirectional marks and overrides of "Trojan Source") and the line and paragraph separators
// (Zl, Zp), which start a new line in a log. None is ever wanted in ids, names, tenants and
// patterns that reach the cloud, logs, summaries and the UI: each can hide or forge content.
func UnsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// normalizeRoute upper-cases a source and its targets and checks them: known regions, at
// least one target, none twice, none the source.
func normalizeRoute(what string, source *string, targets []string, otherCloud bool) error {
	src, err := canonicalRegion(what+": source_region", *source)
	if err != nil {
		return err
	}
	*source = src
	if len(targets) == 0 {
		return invalid("%s: target_regions needs at least one region", what)
	}
	seen := map[string]bool{}
	for i, r := range targets {
		r, err := canonicalRegion(what+": target region", r)
		if err != nil {
			return err
		}
		targets[i] = r
		switch {
		case r == *source && !otherCloud:
			return invalid("%s: target region %s is the source region", what, r)
		case seen[r]:
			return invalid("%s: target region %s is listed twice", what, r)
		}
		seen[r] = true
	}
	return nil
}

// normalizePolicies fills and checks the target and cleanup policies.
func normalizePolicies(what string, policy, cleanup *string) error {
	switch *policy {
	case "":
		*policy = PolicyAll
	case PolicyAll, PolicyBestEffort:
	default:
		return invalid("%s: policy %q is not all or best-effort", what, *policy)
	}
	switch *cleanup {
	case "":
		*cleanup = CleanupOnSuccess
	case CleanupOnSuccess, CleanupAlways, CleanupNever:
	default:
		return invalid("%s: cleanup %q is not on-success, always or never", what, *cleanup)
	}
	return nil
}
