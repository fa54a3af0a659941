package emulator

import (
	"fmt"
	"testing"

	"github.com/imageflow/imageflow/emulator/images"
)

func TestMemberRules(t *testing.T) {
	e, err := New(
		Config{
			Accounts: append(
				DefaultAccounts(),
				Account{Username: "third", APIKey: "third-key", Tenant: "100003", DefaultRegion: "ORD"},
			),
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	s, p, x := demo(t, e), partner(t, e), login(t, e, "third", "third-key")
	id := s.imageID("DFW", "demo-web-01")
	img := "/v2/images/" + id + "/members"
	base := s.imageID("DFW", "CentOS%20Stream%209%20(PVHVM)")

	// Producer adds; the member is pending and not yet in the consumer's default listing.
	r := s.do("POST", "DFW", img, `{"member":"100002"}`)
	wantCode(t, r, 200)
	if m := r.json(t); m["status"] != "pending" || m["member_id"] != "100002" || m["image_id"] != id ||
		m["schema"] != "/v2/schemas/member" {
		t.Fatalf("member %v", m)
	}
	wantFault(t, s.do("POST", "DFW", img, `{"member":"100002"}`), 409)
	wantFault(t, s.do("POST", "DFW", img, `{}`), 400)
	wantFault(t, s.do("POST", "DFW", img, `{"member":`), 400)
	wantFault(t, s.do("POST", "DFW", "/v2/images/"+base+"/members", `{"member":"100002"}`), 403)
	wantFault(t, p.do("POST", "DFW", img, `{"member":"100003"}`), 404) // consumer cannot add members
	wantFault(t, x.do("POST", "DFW", img, `{"member":"100003"}`), 404)

	if got := names(t, p.do("GET", "DFW", "/v2/images?visibility=private", nil)); len(got) != 0 {
		t.Fatalf("partner private listing %v", got)
	}
	if got := fmt.Sprint(names(t, p.do("GET", "DFW", "/v2/images?visibility=shared&member_status=pending&owner=100001", nil))); got != "[demo-web-01]" {
		t.Fatalf("pending offers %s", got)
	}
	if got := fmt.Sprint(names(t, p.do("GET", "DFW", "/v2/images?image_type=snapshot", nil))); got != "[]" {
		t.Fatalf("default listing before accept %s", got)
	}
	wantCode(t, p.do("GET", "DFW", "/v2/images/"+id, nil), 200) // a member may read the image
	wantFault(t, x.do("GET", "DFW", "/v2/images/"+id, nil), 404)

	// Who sees which members.
	wantCode(t, s.do("POST", "DFW", img, `{"member":"100003"}`), 200)
	count := func(who *session) int { return len(who.do("GET", "DFW", img, nil).json(t)["members"].([]any)) }
	if count(s) != 2 || count(p) != 1 || count(x) != 1 {
		t.Fatalf("member counts owner=%d partner=%d third=%d", count(s), count(p), count(x))
	}
	wantCode(t, p.do("GET", "DFW", img+"/100002", nil), 200)
	wantFault(t, p.do("GET", "DFW", img+"/100003", nil), 404)
	wantCode(t, s.do("GET", "DFW", img+"/100003", nil), 200)
	wantFault(t, s.do("GET", "DFW", img+"/100009", nil), 404)

	// Only the consumer changes its status, freely between states.
	wantFault(t, s.do("PUT", "DFW", img+"/100002", `{"status":"accepted"}`), 403)
	wantFault(t, x.do("PUT", "DFW", img+"/100002", `{"status":"accepted"}`), 404)
	wantFault(t, p.do("PUT", "DFW", img+"/100002", `{"status":"maybe"}`), 400)
	for _, st := range []string{"accepted", "rejected", "pending", "accepted"} {
		r := p.do("PUT", "DFW", img+"/100002", fmt.Sprintf(`{"status":%q}`, st))
		wantCode(t, r, 200)
		if r.json(t)["status"] != st {
			t.Fatalf("status %v want %s", r.json(t)["status"], st)
		}
	}
	if got := fmt.Sprint(names(t, p.do("GET", "DFW", "/v2/images?image_type=snapshot", nil))); got != "[demo-web-01]" {
		t.Fatalf("default listing after accept %s", got)
	}
	// Sharing is per region.
	wantFault(t, p.do("GET", "IAD", "/v2/images/"+id, nil), 404)

	// Only the owner deletes members.
	wantFault(t, p.do("DELETE", "DFW", img+"/100002", nil), 404)
	wantCode(t, s.do("DELETE", "DFW", img+"/100002", nil), 204)
	wantFault(t, s.do("DELETE", "DFW", img+"/100002", nil), 404)
	wantFault(t, p.do("GET", "DFW", "/v2/images/"+id, nil), 404)

	// Quota.
	for i := len(s.do("GET", "DFW", img, nil).json(t)["members"].([]any)); i < images.MaxMembers; i++ {
		wantCode(t, s.do("POST", "DFW", img, fmt.Sprintf(`{"member":"9%05d"}`, i)), 200)
	}
	wantFault(t, s.do("POST", "DFW", img, `{"member":"800000"}`), 413)
}
