package events

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/imageflow/imageflow/workflows"
)

func envelope(typ, tenant, data string) []byte {
	return []byte(`{"specversion":"1.0","id":"e-1","source":"test","type":"imageflow.cmd.` + typ +
		`","tenant":"` + tenant + `","data":` + data + `}`)
}

// TestCommandsRefuseWhatTheyMustNot: every case names what was wrong, so the dead letter says it.
func TestCommandsRefuseWhatTheyMustNot(t *testing.T) {
	migrate := `"image_id":"x","source_region":"DFW","target_regions":["IAD"]`
	cases := []struct {
		name, typ, data, want string
	}{
		{"bulk request carrying the workflow's own state", "bulk-migrate",
			`{"source_region":"DFW","target_regions":["IAD"],"listed":true,"pending":[],"summary":{"succeeded":999}}`, `unknown field "listed"`},
		{
			"upper-case key",
			"migrate",
			`{"Image_ID":"x","source_region":"DFW","target_regions":["IAD"]}`,
			"case-sensitive",
		},
		{"repeated key", "migrate", `{` + migrate + `,"image_id":"y"}`, `"image_id" appears twice`},
		{
			"repeated nested key",
			"bulk-migrate",
			`{"source_region":"DFW","target_regions":["IAD"],"filter":{"name":"a","name":"b"}}`,
			`"name" appears twice in data.filter`,
		},
		{"NUL in target_name", "migrate", `{` + migrate + `,"target_name":"web\u0000"}`, "control character"},
		{
			"bidi override in target_name",
			"migrate",
			`{` + migrate + `,"target_name":"web\u202eexe.gpj"}`,
			"control character",
		},
		{"escape in target_name", "migrate", `{` + migrate + `,"target_name":"\u001b[31mred"}`, "control character"},
		{
			"60,000-character target_name",
			"migrate",
			`{` + migrate + `,"target_name":"` + strings.Repeat("n", 60000) + `"}`,
			"more than 255",
		},
		{"share_with not a tenant", "migrate", `{` + migrate + `,"share_with":["../admin"]}`, "not a tenant id"},
		{
			"poll_interval of 1ms",
			"share",
			`{"region":"DFW","image_id":"x","members":["100002"],"poll_interval":"1ms"}`,
			"below the floor",
		},
		{"member-status into another tenant's share", "member-status",
			`{"image_id":"x","region":"DFW","member":"100002","status":"accepted","share_workflow_id":"share-100009-DFW-x-100002-abcd"}`,
			"not a share of account 100001"},
		{
			"accept forced by the event",
			"accept",
			`{"region":"DFW","image_id":"x","producer":"100009","policy":{"decision":"accepted"}}`,
			"may force a rejection",
		},
		{
			"accept pattern widened",
			"accept",
			`{"region":"DFW","image_id":"x","producer":"100009","policy":{"name_pattern":"*"}}`,
			"may only narrow",
		},
	}
	configured := workflows.AcceptPolicy{NamePattern: "golden-*"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseEvent(envelope(c.typ, "100001", c.data))
			if err == nil {
				_, err = command("cmd."+c.typ, ev, "100001", configured)
			}
			if err == nil || !strings.Contains(plain(err), c.want) {
				t.Fatalf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// TestEnvelopeKeysAreStrict: the tenant decides which worker acts, so it must not be ambiguous.
func TestEnvelopeKeysAreStrict(t *testing.T) {
	for name, raw := range map[string]string{
		"two tenants":     `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001","tenant":"100002","data":{}}`,
		"Tenant":          `{"specversion":"1.0","id":"a","source":"s","type":"t","Tenant":"100002","data":{}}`,
		"control in id":   `{"specversion":"1.0","id":"a\u0007b","source":"s","type":"t","tenant":"100001","data":{}}`,
		"newline in id":   `{"specversion":"1.0","id":"a\nforged log line","source":"s","type":"t","tenant":"100001","data":{}}`,
		"bidi in tenant":  `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001\u202e","data":{}}`,
		"dup inside data": `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001","data":{"k":1,"k":2}}`,
	} {
		if _, err := ParseEvent([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestAcceptPolicyOnlyNarrows: an event can drop trusted producers and force a rejection, never
// add trust.
func TestAcceptPolicyOnlyNarrows(t *testing.T) {
	configured := workflows.AcceptPolicy{TrustedProducers: []string{"100001", "100003"}}
	ev, err := ParseEvent(envelope("accept", "100002",
		`{"region":"DFW","image_id":"x","producer":"100001","policy":{"trusted_producers":["100001","100009"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := command("cmd.accept", ev, "100002", configured)
	if err != nil {
		t.Fatal(err)
	}
	got := s.input.(workflows.AcceptInput).Policy
	if b, _ := json.Marshal(got.TrustedProducers); string(b) != `["100001"]` {
		t.Fatalf("trusted producers %s: the event added trust or lost the narrowing", b)
	}
	ev, _ = ParseEvent(
		envelope(
			"accept",
			"100002",
			`{"region":"DFW","image_id":"x","producer":"100001","policy":{"decision":"rejected"}}`,
		),
	)
	if s, err = command("cmd.accept", ev, "100002", configured); err != nil ||
		s.input.(workflows.AcceptInput).Policy.Decision != "rejected" {
		t.Fatalf("a forced rejection: %+v %v", s.input, err)
	}
}
