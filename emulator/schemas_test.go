package emulator

import (
	"bytes"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestSchemasDescribeResponses validates what the API answers against the schemas it serves, as
// python-glanceclient does (draft 4, through warlock): a response its own schema rejects breaks
// every glance command that reads it.
func TestSchemasDescribeResponses(t *testing.T) {
	e := startEmu(t)
	s := demo(t, e)
	web := s.imageID("DFW", "demo-web-01")
	wantCode(t, s.do("PUT", "DFW", s.files("exports"), nil), 201)
	task := s.do("POST", "DFW", "/v2/tasks", exportBody(web, "exports"))
	taskID, _ := task.json(t)["id"].(string)
	responses := map[string]reply{
		"image":   s.do("GET", "DFW", "/v2/images/"+web, nil),
		"images":  s.do("GET", "DFW", "/v2/images?limit=2", nil),
		"member":  s.do("POST", "DFW", "/v2/images/"+web+"/members", map[string]string{"member": "100002"}),
		"members": s.do("GET", "DFW", "/v2/images/"+web+"/members", nil),
		"task":    task,
		"tasks":   s.do("GET", "DFW", "/v2/tasks", nil),
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r := s.do("GET", "DFW", "/v2/tasks/"+taskID, nil); r.json(t)["status"] == "success" {
			responses["task done"] = r
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, r := range responses {
		schemaName := map[string]string{"task done": "task"}[name]
		if schemaName == "" {
			schemaName = name
		}
		t.Run(name, func(t *testing.T) {
			if r.code != 200 && r.code != 201 {
				t.Fatalf("%s answered %d: %s", name, r.code, r.body)
			}
			sch := compileSchema(t, s, schemaName)
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(doc); err != nil {
				t.Fatalf("the %s response does not fit /v2/schemas/%s: %v", name, schemaName, err)
			}
		})
	}
	wantFault(t, s.do("GET", "DFW", "/v2/schemas/nothing", nil), 404)
}

func compileSchema(t *testing.T, s *session, name string) *jsonschema.Schema {
	t.Helper()
	r := s.do("GET", "DFW", "/v2/schemas/"+name, nil)
	wantCode(t, r, 200)
	m := r.json(t)
	if _, ok := m["properties"].(map[string]any); !ok {
		t.Fatalf("schema %s has no properties: %s", name, r.body)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	if err := c.AddResource(name+".json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(name + ".json")
	if err != nil {
		t.Fatalf("schema %s does not compile: %v", name, err)
	}
	return sch
}
