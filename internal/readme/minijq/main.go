// Command minijq is the little of jq the README's examples use (`jq -r PATH [FILE]`, with PATH
// made of .key and .[index] steps), so the README test runs on a machine with only Go. Where
// the real jq is installed, the test uses it instead.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

func main() {
	args := os.Args[1:]
	raw := len(args) > 0 && args[0] == "-r"
	if raw {
		args = args[1:]
	}
	if len(args) < 1 || len(args) > 2 {
		fail("usage: jq [-r] PATH [FILE]")
	}
	in := io.Reader(os.Stdin)
	if len(args) == 2 {
		f, err := os.Open(args[1])
		if err != nil {
			fail(err.Error())
		}
		defer f.Close()
		in = f
	}
	var v any
	if err := json.NewDecoder(in).Decode(&v); err != nil {
		fail("input is not JSON: " + err.Error())
	}
	v, err := walk(v, args[0])
	if err != nil {
		fail(err.Error())
	}
	if s, ok := v.(string); ok && raw {
		fmt.Println(s)
		return
	}
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// walk follows a path such as .[0].id or .result.image_id; a missing step gives null, as jq does.
func walk(v any, path string) (any, error) {
	if path == "." {
		return v, nil
	}
	for _, step := range strings.Split(strings.TrimPrefix(path, "."), ".") {
		key, index, hasIndex := strings.Cut(step, "[")
		if key != "" {
			m, _ := v.(map[string]any)
			v = m[key]
		}
		if hasIndex {
			n, err := strconv.Atoi(strings.TrimSuffix(index, "]"))
			if err != nil {
				return nil, fmt.Errorf("path %q: only .key and .[n] steps are supported", path)
			}
			a, _ := v.([]any)
			if n < 0 || n >= len(a) {
				v = nil
				continue
			}
			v = a[n]
		}
	}
	return v, nil
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "jq:", msg)
	os.Exit(2)
}
