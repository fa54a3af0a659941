package faults

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestSetCountsAndScopes: a counted fault strikes that many matching requests and no others; a
// fault for one region, service or path leaves the rest alone; Replace refuses a bad set whole.
func TestSetCountsAndScopes(t *testing.T) {
	s, err := New([]Fault{{Kind: "error", Region: "DFW", Service: "images", Path: "/v2/images", Count: 2}},
		[]string{"DFW", "ORD"})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	dfw, ord := s.Wrap("DFW", "images", ok), s.Wrap("ORD", "images", ok)
	files := s.Wrap("DFW", "files", ok)
	status := func(h http.Handler, path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code
	}
	if got := []int{status(ord, "/v2/images"), status(files, "/v2/images"), status(dfw, "/v2/tasks")}; got[0] != 200 ||
		got[1] != 200 || got[2] != 200 {
		t.Fatalf("a fault struck outside its scope: %v", got)
	}
	if a, b, c := status(dfw, "/v2/images"), status(dfw, "/v2/images/x"), status(dfw, "/v2/images"); a != 503 ||
		b != 503 || c != 200 {
		t.Fatalf("count 2 answered %d, %d, %d", a, b, c)
	}
	if len(s.List()) != 0 {
		t.Fatalf("a used-up fault is still listed: %v", s.List())
	}
	if err := s.Replace([]Fault{{Kind: "latency", Latency: "1ms"}, {Kind: "meteor"}}); err == nil {
		t.Fatal("Replace took an unknown kind")
	}
	if err := s.Replace([]Fault{{Kind: "task-failure", TaskType: "export", Count: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, fails := s.TaskFailure("DFW", "import", "id", "n"); fails {
		t.Fatal("an export failure struck an import")
	}
	if msg, fails := s.TaskFailure("ORD", "export", "id", "n"); !fails || msg == "" {
		t.Fatal("the export failure did not strike")
	}
	if _, fails := s.TaskFailure("ORD", "export", "id", "n"); fails {
		t.Fatal("a count-1 task failure struck twice")
	}
}

func TestParseNamesWhatIsWrong(t *testing.T) {
	regions := []string{"DFW", "RegionOne"}
	if f, err := Parse("kind=reset,region=dfw,after_bytes=1024", regions); err != nil || f.Region != "DFW" ||
		f.AfterBytes != 1024 {
		t.Fatalf("%+v %v", f, err)
	}
	for spec, want := range map[string]string{
		"kind=error,region=MARS": `fault region "MARS" is not one of DFW, RegionOne`,
		"kind=stall,after_bytes=x": `fault "kind=stall,after_bytes=x": after_bytes: ` +
			`strconv.ParseInt: parsing "x": invalid syntax`,
		"kind=bandwidth": `fault "kind=bandwidth": bandwidth fault needs bytes_per_second above 0`,
	} {
		_, err := Parse(spec, regions)
		if err == nil || (err.Error() != want && err.Error() != `fault "`+spec+`": `+want) {
			t.Errorf("Parse(%q) = %v, want %q", spec, err, want)
		}
	}
}
