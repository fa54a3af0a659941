package emulator

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// quickstart holds the curl commands of Rackspace's Cloud Images quickstart with only the host
// changed ($IDENTITY instead of https://identity.api.rackspacecloud.com) and the cosmetic
// "| python -m json.tool" dropped. Placeholders in braces are filled in as a user would.
var quickstart = []struct{ step, cmd string }{
	{"authenticate", `curl -s -X POST $IDENTITY/v2.0/tokens \
  -H "Content-Type: application/json" \
  -d '{
    "auth": {
      "RAX-KSKEY:apiKeyCredentials": {
        "username": "{username}",
        "apiKey": "{apiKey}"
      }
    }
  }'`},
	{"list", `curl -s $ENDPOINT/images -H "X-Auth-Token: $TOKEN"`},
	{"get", `curl -s $ENDPOINT/images/{imageId} \
  -H "X-Auth-Token: $TOKEN"`},
	{"update", `curl -s $ENDPOINT/images/{imageId} -X PATCH \
  -H "X-Auth-Token: $TOKEN" \
  -H "Content-Type: application/openstack-images-v2.1-json-patch" \
  -H "Accent: application/json" \
  -d '[
    {
      "op": "add",
      "path": "/someAttribute",
      "value": "someValue"
    },
    {
      "op": "add",
      "path": "/anotherAttribute",
      "value": "anotherValue"
    }
  ]'`},
	{"export", `curl -s -X POST $ENDPOINT/tasks \
  -H "X-Auth-Token: $TOKEN" \
  -d '{
    "type": "export",
    "input": {
      "image_uuid": "{imageId}",
      "receiving_swift_container": "receivingSwiftContainer"
    }
  }'`},
	{"import", `curl -s $ENDPOINT/tasks -X POST \
  -H "X-Auth-Token: $TOKEN" \
  -d '{
    "type": "import",
    "input": {
      "image_properties": {
        "name": "My New Image"
      },
      "import_from": "exportSwiftContainer/my-image.vhd"
    }
  }'`},
	{"add member", `curl -s -X POST $ENDPOINT/images/{imageId}/members \
  -H "X-Auth-Token: $TOKEN" \
  -H "Content-Type: application/json" \
  -H "Accept: application/json" \
  -d '{ "member": "{memberId}" }'`},
	{"accept", `curl -s -X PUT $ENDPOINT/images/{imageId}/members/{memberId} \
  -H "X-Auth-Token: $PARTNER_TOKEN" \
  -H "Content-Type: application/json" \
  -H "Accept: application/json" \
  -d '{ "status": "accepted" }'`},
	{"get member", `curl -s $ENDPOINT/images/{imageId}/members/{memberId} \
  -H "X-Auth-Token: $TOKEN" \
  -H "Accept: application/json"`},
	{"list members", `curl -s $ENDPOINT/images/{imageId}/members \
  -H "X-Auth-Token: $TOKEN" \
  -H "Accept: application/json"`},
	{"delete member", `curl -i -X DELETE $ENDPOINT/images/{imageId}/members/{memberId} \
    -H "X-Auth-Token: $TOKEN"`},
}

func TestQuickstartCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the quickstart test needs curl on PATH (Debian package curl)")
	}
	e := startEmu(t)
	s, p := demo(t, e), partner(t, e)
	imageID := s.imageID("DFW", "demo-web-01")
	// The exported image and the container the import reads come from the user's earlier steps.
	wantCode(t, s.do("PUT", "DFW", s.files("receivingSwiftContainer"), nil), 201)
	wantCode(t, s.do("PUT", "DFW", s.files("exportSwiftContainer"), nil), 201)
	env := []string{"IDENTITY=" + e.BaseURL(), "PARTNER_TOKEN=" + p.token}
	fill := strings.NewReplacer(
		"{username}",
		"demo",
		"{apiKey}",
		"demo-api-key",
		"{imageId}",
		imageID,
		"{memberId}",
		"100002",
	)
	run := func(cmd string) string {
		c := exec.Command("bash", "-c", fill.Replace(cmd))
		c.Env = env
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, out)
		}
		return string(out)
	}
	var task map[string]any
	for _, q := range quickstart {
		out := run(q.cmd)
		var m map[string]any
		if q.step != "delete member" {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("%s: not JSON: %s", q.step, out)
			}
		}
		switch q.step {
		case "authenticate":
			access := m["access"].(map[string]any)
			env = append(env, "TOKEN="+access["token"].(map[string]any)["id"].(string))
			for _, svc := range access["serviceCatalog"].([]any) {
				if svc.(map[string]any)["name"] == "cloudImages" {
					for _, ep := range svc.(map[string]any)["endpoints"].([]any) {
						if ep.(map[string]any)["region"] == "DFW" {
							env = append(env, "ENDPOINT="+ep.(map[string]any)["publicURL"].(string))
						}
					}
				}
			}
		case "list":
			if len(m["images"].([]any)) != 6 {
				t.Fatalf("list: %s", out)
			}
		case "get":
			if m["id"] != imageID {
				t.Fatalf("get: %s", out)
			}
		case "update":
			if m["someAttribute"] != "someValue" || m["anotherAttribute"] != "anotherValue" {
				t.Fatalf("update: %s", out)
			}
		case "export", "import":
			if m["status"] != "pending" {
				t.Fatalf("%s: %s", q.step, out)
			}
			if q.step == "export" {
				task = m
			}
		case "add member", "accept", "get member":
			want := map[string]string{"add member": "pending", "accept": "accepted", "get member": "accepted"}[q.step]
			if m["status"] != want || m["member_id"] != "100002" {
				t.Fatalf("%s: %s", q.step, out)
			}
		case "list members":
			if len(m["members"].([]any)) != 1 {
				t.Fatalf("list members: %s", out)
			}
		case "delete member":
			if !strings.HasPrefix(out, "HTTP/1.1 204") {
				t.Fatalf("delete member: %s", out)
			}
		}
	}
	if done := s.waitTask("DFW", task["id"].(string)); done["status"] != "success" {
		t.Fatalf("quickstart export: %v", done)
	}
}
