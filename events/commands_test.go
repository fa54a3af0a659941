package events

import (
	"encoding/json"
	"fmt"
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
		// Issue 43: what the cloud would refuse mid-run is refused before it starts, with one dead letter.
		{"share_with its owner", "migrate", `{` + migrate + `,"share_with":["100001"]}`, "is the account the request is for"},
		{"share with its owner", "share", `{"region":"DFW","image_id":"x","members":["100001"]}`,
			"is the account the request is for"},
		{"distribute to one region twice", "distribute", `{"image_id":"x","source_region":"DFW","family":"web",` +
			`"version":1,"regions":["IAD","iad"]}`, "region IAD is listed twice"},
		{"distribute to its owner", "distribute", `{"image_id":"x","source_region":"DFW","family":"web",` +
			`"version":1,"regions":["IAD"],"accounts":["100001"]}`, "is the account the request is for"},
		{
			"poll_interval of 1ms",
			"share",
			`{"region":"DFW","image_id":"x","members":["100002"],"poll_interval":"1ms"}`,
			"below the floor",
		},
		// Issue 25: impossible durations and times are refused, not run as the default.
		{"deadline -1h", "share", `{"region":"DFW","image_id":"x","members":["100002"],"deadline":"-1h"}`,
			"more than zero"},
		{"deadline 0s", "share", `{"region":"DFW","image_id":"x","members":["100002"],"deadline":"0s"}`,
			"more than zero"},
		{"deadline -5 seconds", "share", `{"region":"DFW","image_id":"x","members":["100002"],"deadline":-5}`,
			"more than zero"},
		{"deadline overflowing", "share",
			`{"region":"DFW","image_id":"x","members":["100002"],"deadline":1e300}`, "more than zero"},
		{"deadline overflowing as text", "share",
			`{"region":"DFW","image_id":"x","members":["100002"],"deadline":"9999999999h"}`, "invalid duration"},
		{"deadline null", "share", `{"region":"DFW","image_id":"x","members":["100002"],"deadline":null}`,
			"invalid duration"},
		{"deadline 1e3h", "share", `{"region":"DFW","image_id":"x","members":["100002"],"deadline":"1e3h"}`,
			`duration "1e3h"`},
		{"deadline of ten years", "share",
			`{"region":"DFW","image_id":"x","members":["100002"],"deadline":"87600h"}`, "at most 366 days"},
		{"heartbeat_timeout 0", "migrate", `{` + migrate + `,"heartbeat_timeout":"0s"}`, "more than zero"},
		{"migration deadline in the year 9999", "migrate", `{` + migrate + `,"deadline":"9999-01-01T00:00:00Z"}`,
			"more than 366 days away"},
		{"bulk deadline in the year 3000", "bulk-migrate",
			`{"source_region":"DFW","target_regions":["IAD"],"deadline":"3000-01-01T00:00:00Z"}`, "366 days"},
		// Issue 25: invisible and line-breaking characters, not only controls and bidi overrides.
		{"zero-width space in target_name", "migrate", `{` + migrate + `,"target_name":"web\u200b01"}`,
			"U+200B"},
		{"byte-order mark in target_name", "migrate", `{` + migrate + `,"target_name":"\ufeffweb"}`, "U+FEFF"},
		{"line separator in target_name", "migrate",
			`{` + migrate + `,"target_name":"web\u2028level=ERROR msg=forged"}`, "U+2028"},
		{"paragraph separator in a pattern", "bulk-migrate",
			`{"source_region":"DFW","target_regions":["IAD"],"filter":{"name_pattern":"web*\u2029"}}`, "U+2029"},
		{"word joiner in lineage_key", "migrate", `{` + migrate + `,"lineage_key":"a\u2060b"}`, "U+2060"},
		// Issue 25: one account, one spelling.
		{"member with a leading zero", "share", `{"region":"DFW","image_id":"x","members":["0100002"]}`,
			"not a tenant id"},
		{"share past the cloud's member limit", "share",
			`{"region":"DFW","image_id":"x","members":[` + manyMembers(130) + `]}`, "limit of 128 members"},
		{"member-status in another member's name", "member-status",
			`{"image_id":"x","region":"DFW","member":"100003","status":"accepted","share_workflow_id":"share-100001-x"}`,
			"may only report its own"},
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
				// A member-status arrives on the subject of member 100002's decisions.
				_, err = command(Route{Command: true, Tenant: "100001", Name: c.typ, Other: "100002"}, ev, configured)
			}
			if err == nil || !strings.Contains(plain(err), c.want) {
				t.Fatalf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func manyMembers(n int) string {
	ms := make([]string, n)
	for i := range ms {
		ms[i] = fmt.Sprintf(`"%d"`, 200000+i)
	}
	return strings.Join(ms, ",")
}

// TestEnvelopeKeysAreStrict: the tenant decides which worker acts, so it must not be ambiguous.
func TestEnvelopeKeysAreStrict(t *testing.T) {
	for name, raw := range map[string]string{
		"two tenants":          `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001","tenant":"100002","data":{}}`,
		"Tenant":               `{"specversion":"1.0","id":"a","source":"s","type":"t","Tenant":"100002","data":{}}`,
		"control in id":        `{"specversion":"1.0","id":"a\u0007b","source":"s","type":"t","tenant":"100001","data":{}}`,
		"newline in id":        `{"specversion":"1.0","id":"a\nforged log line","source":"s","type":"t","tenant":"100001","data":{}}`,
		"bidi in tenant":       `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001\u202e","data":{}}`,
		"dup inside data":      `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001","data":{"k":1,"k":2}}`,
		"zero-width in tenant": `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"1000\u200b01","data":{}}`,
		"BOM in id":            `{"specversion":"1.0","id":"\ufeffa","source":"s","type":"t","tenant":"100001","data":{}}`,
		"json-ish type": `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001",` +
			`"datacontenttype":"application/jsonx","data":{}}`,
		"json with a parameter": `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001",` +
			`"datacontenttype":"application/json; profile=evil","data":{}}`,
		"data and data_base64": `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001",` +
			`"data":{},"data_base64":"e30="}`,
	} {
		if _, err := ParseEvent([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestEnvelopeTakesPlainJSON: the strict answers keep what a CloudEvents SDK sends.
func TestEnvelopeTakesPlainJSON(t *testing.T) {
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "Application/JSON"} {
		raw := `{"specversion":"1.0","id":"a","source":"s","type":"t","tenant":"100001","datacontenttype":"` + ct +
			`","data":{}}`
		if _, err := ParseEvent([]byte(raw)); err != nil {
			t.Errorf("datacontenttype %q refused: %v", ct, err)
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
	s, err := command(Route{Command: true, Tenant: "100002", Name: "accept"}, ev, configured)
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
	if s, err = command(Route{Command: true, Tenant: "100002", Name: "accept"}, ev, configured); err != nil ||
		s.input.(workflows.AcceptInput).Policy.Decision != "rejected" {
		t.Fatalf("a forced rejection: %+v %v", s.input, err)
	}
}

// TestOffersComeFromTheirProducer: an offer is taken only on the subject its producer's worker
// may publish, addressed to the member it names.
func TestOffersComeFromTheirProducer(t *testing.T) {
	data := `{"image_id":"x","region":"DFW","producer":"100001","member":"100002","share_workflow_id":"share-100001-x"}`
	ev, err := ParseEvent(envelope("share.offered", "100001", data))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		route Route
		ok    bool
	}{
		{Route{Tenant: "100001", Name: EvtShareOffered, Other: "100002"}, true},
		{Route{Tenant: "100009", Name: EvtShareOffered, Other: "100002"}, false}, // another producer's subject
		{Route{Tenant: "100001", Name: EvtShareOffered, Other: "100003"}, false}, // addressed to another member
	} {
		s, err := offerToAccept(ev, c.route, workflows.AcceptPolicy{})
		if (err == nil) != c.ok {
			t.Errorf("route %+v: error %v", c.route, err)
		}
		if c.ok && s.input.(workflows.AcceptInput).Producer != "100001" {
			t.Errorf("accept input %+v", s.input)
		}
	}
}
