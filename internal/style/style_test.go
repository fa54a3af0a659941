// Package style holds checks of the code's shape that vet does not make.
package style

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxLine is the longest code line allowed; the style asks for 120, and this catches the lines
// that left it far behind. Struct tags (envconfig's descriptions) are one line by their nature.
const maxLine = 160

// TestNoOverlongLines: no line of non-test Go code is longer than maxLine (issue 43 found five).
func TestNoOverlongLines(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if len([]rune(line)) > maxLine && !strings.Contains(line, " desc:\"") {
				t.Errorf("%s:%d is %d characters (at most %d)", path, n, len([]rune(line)), maxLine)
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}
