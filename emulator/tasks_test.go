package emulator

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator/images"
)

func exportBody(id, c string) string {
	return fmt.Sprintf(`{"type":"export","input":{"image_uuid":%q,"receiving_swift_container":%q}}`, id, c)
}

func importBody(from, name string) string {
	return fmt.Sprintf(
		`{"type":"import","input":{"import_from":%q,"import_from_format":"vhd","image_properties":{"name":%q}}}`,
		from,
		name,
	)
}

func TestTaskLifecycle(t *testing.T) {
	e := startEmu(t, func(c *Config) { c.TaskDuration = 400 * time.Millisecond })
	s, p := demo(t, e), partner(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("exports"), nil), 201)
	id := s.imageID("DFW", "demo-web-01")
	r := s.do("POST", "DFW", "/v2/tasks", exportBody(id, "exports"))
	wantCode(t, r, 201)
	tk := r.json(t)
	tid := tk["id"].(string)
	if tk["status"] != "pending" || tk["result"] != nil || tk["message"] != "None" || tk["owner"] != "100001" ||
		tk["expires_at"] != nil {
		t.Fatalf("new task %v", tk)
	}
	seen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !seen["success"] {
		seen[s.do("GET", "DFW", "/v2/tasks/"+tid, nil).json(t)["status"].(string)] = true
		time.Sleep(25 * time.Millisecond)
	}
	if !seen["pending"] || !seen["processing"] || !seen["success"] {
		t.Fatalf("statuses seen %v", seen)
	}
	done := s.do("GET", "DFW", "/v2/tasks/"+tid, nil).json(t)
	if done["result"].(map[string]any)["export_location"] != "exports/"+id+".vhd" || done["expires_at"] == nil {
		t.Fatalf("finished task %v", done)
	}
	list := s.do("GET", "DFW", "/v2/tasks", nil).json(t)["tasks"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["input"] != nil || list[0].(map[string]any)["id"] != tid {
		t.Fatalf("task list %v", list)
	}
	wantFault(t, p.do("GET", "DFW", "/v2/tasks/"+tid, nil), 404)
	if n := len(p.do("GET", "DFW", "/v2/tasks", nil).json(t)["tasks"].([]any)); n != 0 {
		t.Fatalf("partner sees %d tasks", n)
	}
	for _, bad := range []string{
		`{"type":"copy","input":{}}`, `{"input":{}}`, `{"type":"export","input":"x"}`,
		`{"type":"export","input":{"image_uuid":"x"}}`, `{"type":"import","input":{"import_from":"nocontainer"}}`,
		`{"type":"import","input":{"import_from":"c/o","import_from_format":"qcow2"}}`,
		`{"type":"import","input":{"import_from":"c/o","image_properties":{"name":"n","os":"linux"}}}`, `{"type":`,
	} {
		wantFault(t, s.do("POST", "DFW", "/v2/tasks", bad), 400)
	}
}

func TestExportRules(t *testing.T) {
	e := startEmu(t)
	s, p := demo(t, e), partner(t, e)
	wantCode(t, s.do("PUT", "DFW", s.files("exports"), nil), 201)
	wantCode(t, p.do("PUT", "DFW", p.files("exports"), nil), 201)
	web := s.imageID("DFW", "demo-web-01")
	wantCode(t, s.do("POST", "DFW", "/v2/images/"+web+"/members", `{"member":"100002"}`), 200)
	cases := []struct {
		name   string
		who    *session
		image  string
		cont   string
		prefix string
	}{
		{
			"unknown image",
			s,
			"00000000-0000-0000-0000-000000000000",
			"exports",
			"Requested image for export was not found",
		},
		{
			"other account's image",
			p,
			s.imageID("DFW", "demo-db-01"),
			"exports",
			"Requested image for export was not found",
		},
		{
			"base image",
			s,
			s.imageID("DFW", "Debian%2012%20(Bookworm)%20(PVHVM)"),
			"exports",
			"Base images cannot be exported",
		},
		{"shared with caller", p, web, "exports", "Images shared with you cannot be exported"},
		{
			"licence restricted",
			s,
			s.imageID("DFW", "demo-rhel-01"),
			"exports",
			"Image " + s.imageID("DFW", "demo-rhel-01") + " cannot be exported: it carries licensed software",
		},
		{"missing container", s, web, "nowhere", "Swift container 'nowhere' was not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk := c.who.runTask("DFW", exportBody(c.image, c.cont))
			if tk["status"] != "failure" || !strings.HasPrefix(tk["message"].(string), c.prefix) ||
				tk["result"] != nil {
				t.Fatalf("task %v, want failure starting %q", tk, c.prefix)
			}
		})
	}
	ok := s.runTask("DFW", exportBody(web, "exports"))
	if ok["status"] != "success" {
		t.Fatalf("export: %v", ok)
	}
	again := s.runTask("DFW", exportBody(web, "exports"))
	want := fmt.Sprintf("Swift already has an object with id '%s.vhd' in container 'exports'", web)
	if again["status"] != "failure" || again["message"] != want {
		t.Fatalf("second export: %v", again)
	}
}

// TestExportImportRoundTrip moves demo-db-01 from DFW to IAD the way imageflow does: export to a
// DLO, download it, upload it in IAD, import; the new image has the same size and checksum.
func TestExportImportRoundTrip(t *testing.T) {
	e := startEmu(t, func(c *Config) { c.ExportSegmentSize = 100 << 20 })
	s := demo(t, e)
	id := s.imageID("DFW", "demo-db-01")
	src := s.do("GET", "DFW", "/v2/images/"+id, nil).json(t)
	wantCode(t, s.do("PUT", "DFW", s.files("exports"), nil), 201)
	if tk := s.runTask("DFW", exportBody(id, "exports")); tk["status"] != "success" {
		t.Fatalf("export %v", tk)
	}
	listing := s.do("GET", "DFW", s.files("exports")+"?format=json", nil)
	if got := strings.Count(string(listing.body), `"name"`); got != 4 { // manifest + 3 segments of 100 MiB
		t.Fatalf("export wrote %d objects: %s", got, listing.body)
	}
	head := s.do("HEAD", "DFW", s.files("exports")+"/"+id+".vhd", nil)
	if head.header.Get("X-Object-Manifest") != "exports/"+id+".vhd-" ||
		head.header.Get("Content-Length") != fmt.Sprint(256<<20) {
		t.Fatalf("manifest headers %v", head.header)
	}

	// Stream the download straight into the upload.
	get, _ := http.NewRequest("GET", e.RegionURL("DFW")+s.files("exports")+"/"+id+".vhd", nil)
	get.Header.Set("X-Auth-Token", s.token)
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wantCode(t, s.do("PUT", "IAD", s.files("imports"), nil), 201)
	h := md5.New()
	up := s.do("PUT", "IAD", s.files("imports")+"/db.vhd", io.TeeReader(resp.Body, h))
	wantCode(t, up, 201)
	if up.header.Get("ETag") != hex.EncodeToString(h.Sum(nil)) || up.header.Get("ETag") != src["checksum"] {
		t.Fatalf(
			"upload etag %s, streamed md5 %x, source checksum %v",
			up.header.Get("ETag"),
			h.Sum(nil),
			src["checksum"],
		)
	}
	tk := s.runTask("IAD", importBody("imports/db.vhd", "demo-db-01 (IAD)"))
	if tk["status"] != "success" {
		t.Fatalf("import %v", tk)
	}
	newID := tk["result"].(map[string]any)["image_id"].(string)
	img := s.do("GET", "IAD", "/v2/images/"+newID, nil).json(t)
	if newID == id || img["size"] != src["size"] || img["checksum"] != src["checksum"] ||
		img["name"] != "demo-db-01 (IAD)" ||
		img["status"] != "active" ||
		img["owner"] != "100001" ||
		img["visibility"] != "private" {
		t.Fatalf("imported %v\nsource %v", img, src)
	}
	// The image's bytes download intact.
	dl := s.do("GET", "IAD", "/v2/images/"+newID+"/file", nil)
	if sum := md5.Sum(dl.body); hex.EncodeToString(sum[:]) != src["checksum"] {
		t.Fatal("downloaded image bytes differ")
	}
}

func TestImportValidation(t *testing.T) {
	e := startEmu(t, func(c *Config) { c.MaxImportSize = 64 << 20 })
	s := demo(t, e)
	wantCode(t, s.do("PUT", "IAD", s.files("in"), nil), 201)
	disk := bytes.Repeat([]byte{7}, 4096)
	id := [16]byte{1, 2, 3}
	put := func(name string, footer []byte) {
		wantCode(t, s.do("PUT", "IAD", s.files("in")+"/"+name, append(append([]byte{}, disk...), footer...)), 201)
	}
	put("good.vhd", images.MakeVHDFooter(4096, images.VHDDiskFixed, id))
	put("dynamic.vhd", images.MakeVHDFooter(4096, images.VHDDiskDynamic, id))
	badCookie := images.MakeVHDFooter(4096, images.VHDDiskFixed, id)
	copy(badCookie, "notavhd!")
	put("cookie.vhd", badCookie)
	badSum := images.MakeVHDFooter(4096, images.VHDDiskFixed, id)
	badSum[100] ^= 0xff
	put("checksum.vhd", badSum)
	put("differencing.vhd", images.MakeVHDFooter(4096, images.VHDDiskDifferencing, id))
	put("type9.vhd", images.MakeVHDFooter(4096, 9, id))
	put("zeroid.vhd", images.MakeVHDFooter(4096, images.VHDDiskFixed, [16]byte{}))
	put("huge-virtual.vhd", images.MakeVHDFooter(1<<40, images.VHDDiskFixed, id))
	wantCode(t, s.do("PUT", "IAD", s.files("in")+"/tiny.vhd", "short"), 201)
	cases := map[string]string{
		"good.vhd": "", "dynamic.vhd": "",
		"cookie.vhd": "Error code 396", "checksum.vhd": "Error code 396", "tiny.vhd": "Error code 396",
		"differencing.vhd": "Error code 721", "type9.vhd": "Error code 523", "zeroid.vhd": "Error code 614",
		"huge-virtual.vhd": "Error code 413", "missing.vhd": images.ImportNotFound,
	}
	for obj, want := range cases {
		t.Run(obj, func(t *testing.T) {
			tk := s.runTask("IAD", importBody("in/"+obj, obj))
			if want == "" {
				if tk["status"] != "success" {
					t.Fatalf("import: %v", tk)
				}
				return
			}
			if tk["status"] != "failure" || !strings.HasPrefix(tk["message"].(string), want) {
				t.Fatalf("task %v, want message starting %q", tk, want)
			}
		})
	}
	// Physical size limit, and another account's object is not found.
	big := startEmu(t, func(c *Config) { c.MaxImportSize = 1000 })
	bs := demo(t, big)
	wantCode(t, bs.do("PUT", "IAD", bs.files("in"), nil), 201)
	wantCode(
		t,
		bs.do(
			"PUT",
			"IAD",
			bs.files("in")+"/big.vhd",
			append(append([]byte{}, disk...), images.MakeVHDFooter(4096, images.VHDDiskFixed, id)...),
		),
		201,
	)
	if tk := bs.runTask("IAD", importBody("in/big.vhd", "big")); !strings.HasPrefix(
		tk["message"].(string),
		"Error code 609",
	) {
		t.Fatalf("physical limit: %v", tk)
	}
	p := partner(t, e)
	if tk := p.runTask("IAD", importBody("in/good.vhd", "steal")); tk["message"] != images.ImportNotFound {
		t.Fatalf("cross-account import: %v", tk)
	}
}
