package emulator

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/imageflow/imageflow/emulator/images"
)

func names(t *testing.T, r reply) []string {
	t.Helper()
	wantCode(t, r, 200)
	var out []string
	for _, i := range r.json(t)["images"].([]any) {
		out = append(out, i.(map[string]any)["name"].(string))
	}
	return out
}

func TestListImages(t *testing.T) {
	e := startEmu(t)
	s, p := demo(t, e), partner(t, e)
	list := func(s *session, q string) []string { return names(t, s.do("GET", "DFW", "/v2/images?"+q, nil)) }
	cases := []struct {
		who  *session
		q    string
		want string
	}{
		{
			s,
			"sort_key=name&sort_dir=asc",
			"CentOS Stream 9 (PVHVM),Debian 12 (Bookworm) (PVHVM),Ubuntu 24.04 LTS (Noble Numbat) (PVHVM),demo-db-01,demo-rhel-01,demo-web-01",
		},
		{s, "image_type=snapshot", "demo-rhel-01,demo-db-01,demo-web-01"}, // created_at desc by default
		{
			p,
			"sort_key=name&sort_dir=asc",
			"CentOS Stream 9 (PVHVM),Debian 12 (Bookworm) (PVHVM),Ubuntu 24.04 LTS (Noble Numbat) (PVHVM)",
		},
		{s, "visibility=private&sort_key=name&sort_dir=asc", "demo-db-01,demo-rhel-01,demo-web-01"},
		{
			s,
			"visibility=public&sort_key=name&sort_dir=asc",
			"CentOS Stream 9 (PVHVM),Debian 12 (Bookworm) (PVHVM),Ubuntu 24.04 LTS (Noble Numbat) (PVHVM)",
		},
		{s, "name=demo-db-01", "demo-db-01"},
		{s, "tag=web&tag=production", "demo-web-01"},
		{s, "tag=web&tag=db", ""},
		{s, "app=postgres", "demo-db-01"},
		{s, "image_type=snapshot&sort_key=size&sort_dir=asc", "demo-rhel-01,demo-web-01,demo-db-01"},
		{s, "size_min=60000000&size_max=70000000", "demo-web-01"},
		{s, "owner=100001&sort_key=size", "demo-db-01,demo-web-01,demo-rhel-01"},
		{s, "status=queued", ""},
		{s, "com.rackspace__1__options=1", "demo-rhel-01"},
		// Demo images were made at 13:00, 14:00 and 15:00 on 2026-01-05 (web, db, rhel).
		{s, "image_type=snapshot&created_at=lt:2026-01-05T14:00:00Z", "demo-web-01"},
		{s, "image_type=snapshot&created_at=lte:2026-01-05T14:00:00Z", "demo-db-01,demo-web-01"},
		{s, "image_type=snapshot&created_at=gt:2026-01-05T13:00:00Z&created_at=lt:2026-01-05T15:00:00Z", "demo-db-01"},
		{s, "image_type=snapshot&created_at=neq:2026-01-05T14:00:00Z", "demo-rhel-01,demo-web-01"},
		{s, "image_type=snapshot&created_at=2026-01-05T15:00:00Z", "demo-rhel-01"},
		// Glance v2's sort=key[:dir],... (the openstack client's --sort), not a property filter.
		{s, "image_type=snapshot&sort=name:desc", "demo-web-01,demo-rhel-01,demo-db-01"},
		{s, "owner=100001&sort=size:asc,name", "demo-rhel-01,demo-web-01,demo-db-01"},
	}
	for _, c := range cases {
		t.Run(c.q, func(t *testing.T) {
			if got := strings.Join(list(c.who, c.q), ","); got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	for _, q := range []string{"limit=x", "limit=-1", "sort_key=owner", "sort_dir=up", "visibility=all", "member_status=maybe", "size_min=-3", "marker=nope",
		"created_at=lt:yesterday", "created_at=about:2026-01-05T14:00:00Z", "sort=name:up", "sort=owner",
		"sort=name&sort_key=size"} {
		t.Run("bad "+q, func(t *testing.T) { wantFault(t, s.do("GET", "DFW", "/v2/images?"+q, nil), 400) })
	}
}

func TestListPagination(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	var all []string
	next := "/v2/images?limit=2&sort_key=name&sort_dir=asc"
	pages := 0
	for next != "" {
		r := s.do("GET", "DFW", next, nil)
		m := r.json(t)
		for _, i := range m["images"].([]any) {
			all = append(all, i.(map[string]any)["name"].(string))
		}
		if m["first"] != "/v2/images?limit=2&sort_dir=asc&sort_key=name" || m["schema"] != "/v2/schemas/images" {
			t.Fatalf("first %v schema %v", m["first"], m["schema"])
		}
		next, _ = m["next"].(string)
		if next != "" {
			u, _ := url.Parse(next)
			if u.Query().Get("limit") != "2" || u.Query().Get("marker") == "" {
				t.Fatalf("next link %s lost the query", next)
			}
		}
		pages++
	}
	if pages != 3 || len(all) != 6 || all[0] != "CentOS Stream 9 (PVHVM)" || all[5] != "demo-web-01" {
		t.Fatalf("%d pages: %v", pages, all)
	}
}

func TestGetImageVisibility(t *testing.T) {
	e := startEmu(t)
	s, p := demo(t, e), partner(t, e)
	id := s.imageID("DFW", "demo-web-01")
	img := s.do("GET", "DFW", "/v2/images/"+id, nil).json(t)
	for k, want := range map[string]any{"name": "demo-web-01", "status": "active", "visibility": "private", "owner": "100001",
		"disk_format": "vhd", "container_format": "ovf", "size": float64(64 << 20), "image_type": "snapshot", "app": "web",
		"self": "/v2/images/" + id, "file": "/v2/images/" + id + "/file", "schema": "/v2/schemas/image"} {
		if img[k] != want {
			t.Errorf("%s = %v, want %v", k, img[k], want)
		}
	}
	if c, _ := img["checksum"].(string); len(c) != 32 {
		t.Errorf("checksum %v", img["checksum"])
	}
	wantFault(t, p.do("GET", "DFW", "/v2/images/"+id, nil), 404)
	wantFault(t, s.do("GET", "IAD", "/v2/images/"+id, nil), 404) // images are per region
	wantFault(t, s.do("GET", "DFW", "/v2/images/no-such-id", nil), 404)
}

func TestPatchImage(t *testing.T) {
	e := startEmu(t)
	s, p := demo(t, e), partner(t, e)
	id := s.imageID("DFW", "demo-web-01")
	base := s.imageID("DFW", url.QueryEscape("Debian 12 (Bookworm) (PVHVM)"))
	patch := func(who *session, img, ct, body string) reply {
		return who.do("PATCH", "DFW", "/v2/images/"+img, body, "Content-Type", ct)
	}
	const ct = "application/openstack-images-v2.1-json-patch"
	const v20 = "application/openstack-images-v2.0-json-patch"
	op := func(o, path, value string) string {
		if value == "" {
			return fmt.Sprintf(`[{"op":%q,"path":%q}]`, o, path)
		}
		return fmt.Sprintf(`[{"op":%q,"path":%q,"value":%s}]`, o, path, value)
	}
	cases := []struct {
		name, body, ct string
		code           int
	}{
		{"add property", op("add", "/color", `"blue"`), ct, 200},
		{"add existing replaces (v2.1)", op("add", "/color", `"green"`), ct, 200},
		{"add existing (v2.0)", `[{"add":"/color","value":"red"}]`, v20, 409},
		{"add core attribute (v2.0)", `[{"add":"/name","value":"x"}]`, v20, 409},
		{"v2.0 two ops in one object", `[{"add":"/x","replace":"/y","value":"1"}]`, v20, 400},
		{"v2.0 no op", `[{"path":"/x","value":"1"}]`, v20, 400},
		{"v2.0 add", `[{"add":"/flavour","value":"mint"}]`, v20, 200},
		{"v2.0 remove", `[{"remove":"/flavour"}]`, v20, 200},
		{"replace property", op("replace", "/color", `"red"`), ct, 200},
		{"replace missing", op("replace", "/flavor", `"x"`), ct, 409},
		{"remove property", op("remove", "/color", ""), ct, 200},
		{"remove missing", op("remove", "/color", ""), ct, 409},
		{"escaped path", op("add", "/a~1b~0c", `"v"`), ct, 200},
		{"bad escape", op("add", "/a~2", `"v"`), ct, 400},
		{"rename", op("replace", "/name", `"web-renamed"`), ct, 200},
		{"v2.0 media type", `[{"replace":"/min_ram","value":2048}]`, v20, 200},
		{"plain json", op("replace", "/name", `"x"`), "application/json", 415},
		{"no content type", op("replace", "/name", `"x"`), "", 415},
		{"read-only id", op("replace", "/id", `"x"`), ct, 403},
		{"read-only checksum", op("replace", "/checksum", `"x"`), ct, 403},
		{"read-only owner", op("replace", "/owner", `"100002"`), ct, 403},
		{"reserved location", op("add", "/location", `"x"`), ct, 403},
		{"reserved deleted", op("add", "/deleted", `"x"`), ct, 403},
		{"rackspace property", op("replace", "/com.rackspace__1__options", `"0"`), ct, 403},
		{"remove base attribute", op("remove", "/name", ""), ct, 403},
		{"make public", op("replace", "/visibility", `"public"`), ct, 403},
		{"bad op", op("move", "/name", `"x"`), ct, 400},
		{"deep path", op("add", "/a/b", `"x"`), ct, 400},
		{"no slash", op("add", "name", `"x"`), ct, 400},
		{"non-string property", op("add", "/n", `5`), ct, 400},
		{"missing value", `[{"op":"add","path":"/z"}]`, ct, 400},
		{"not a list", `{"op":"add"}`, ct, 400},
		{"malformed", `[{`, ct, 400},
		{"bad min_disk", op("replace", "/min_disk", `-1`), ct, 400},
		{"tags", op("replace", "/tags", `["a","b","a"]`), ct, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := patch(s, id, c.ct, c.body)
			if c.code != 200 {
				wantFault(t, r, c.code)
				return
			}
			wantCode(t, r, 200)
		})
	}
	img := s.do("GET", "DFW", "/v2/images/"+id, nil).json(t)
	if img["name"] != "web-renamed" || img["a/b~c"] != "v" || img["color"] != nil || img["min_ram"] != float64(2048) ||
		fmt.Sprint(img["tags"]) != "[a b]" {
		t.Fatalf(
			"after patches: name=%v a/b~c=%v color=%v min_ram=%v tags=%v",
			img["name"],
			img["a/b~c"],
			img["color"],
			img["min_ram"],
			img["tags"],
		)
	}
	// A failing operation in a list changes nothing.
	wantFault(
		t,
		patch(s, id, ct, `[{"op":"add","path":"/one","value":"1"},{"op":"replace","path":"/id","value":"x"}]`),
		403,
	)
	if s.do("GET", "DFW", "/v2/images/"+id, nil).json(t)["one"] != nil {
		t.Fatal("a failed patch document was partly applied")
	}
	// Quota.
	var ops []string
	for i := 0; i <= images.MaxProps; i++ {
		ops = append(ops, fmt.Sprintf(`{"op":"add","path":"/p%d","value":"v"}`, i))
	}
	wantFault(t, patch(s, id, ct, "["+strings.Join(ops, ",")+"]"), 413)
	// Other accounts and base images.
	wantFault(t, patch(p, id, ct, op("replace", "/name", `"mine"`)), 404)
	wantFault(t, patch(s, base, ct, op("replace", "/name", `"mine"`)), 403)
}

func TestTagsAndDelete(t *testing.T) {
	e := startEmu(t)
	s, p := demo(t, e), partner(t, e)
	id := s.imageID("DFW", "demo-db-01")
	wantCode(t, s.do("PUT", "DFW", "/v2/images/"+id+"/tags/blue", nil), 204)
	wantCode(t, s.do("PUT", "DFW", "/v2/images/"+id+"/tags/blue", nil), 204)
	if tags := fmt.Sprint(s.do("GET", "DFW", "/v2/images/"+id, nil).json(t)["tags"]); tags != "[db blue]" {
		t.Fatalf("tags %s", tags)
	}
	wantCode(t, s.do("DELETE", "DFW", "/v2/images/"+id+"/tags/blue", nil), 204)
	wantFault(t, s.do("DELETE", "DFW", "/v2/images/"+id+"/tags/blue", nil), 404)
	wantFault(t, p.do("PUT", "DFW", "/v2/images/"+id+"/tags/x", nil), 404)

	base := s.imageID("DFW", url.QueryEscape("CentOS Stream 9 (PVHVM)"))
	wantFault(t, s.do("DELETE", "DFW", "/v2/images/"+base, nil), 403)
	wantFault(t, p.do("DELETE", "DFW", "/v2/images/"+id, nil), 404)
	wantCode(t, s.do("PATCH", "DFW", "/v2/images/"+id, `[{"op":"replace","path":"/protected","value":true}]`,
		"Content-Type", "application/openstack-images-v2.1-json-patch"), 200)
	wantFault(t, s.do("DELETE", "DFW", "/v2/images/"+id, nil), 403)
	wantCode(t, s.do("PATCH", "DFW", "/v2/images/"+id, `[{"op":"replace","path":"/protected","value":false}]`,
		"Content-Type", "application/openstack-images-v2.1-json-patch"), 200)
	wantCode(t, s.do("DELETE", "DFW", "/v2/images/"+id, nil), 204)
	wantFault(t, s.do("GET", "DFW", "/v2/images/"+id, nil), 404)
	wantFault(t, s.do("DELETE", "DFW", "/v2/images/"+id, nil), 404)
	wantFault(t, s.do("POST", "DFW", "/v2/images", `{"name":"x"}`), 403)
	wantFault(t, s.do("GET", "DFW", "/v2/nothing", nil), 404)
}
