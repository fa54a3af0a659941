// Package emutest starts the cloud emulator for a test on free ports, with fast tasks, and
// stops it when the test ends. It imports nothing of imageflow but the emulator, so even the
// cloud and activities packages' own tests can use it.
package emutest

import (
	"testing"
	"time"

	"github.com/imageflow/imageflow/emulator"
)

// Start runs an emulator; mod adjusts its configuration first.
func Start(t testing.TB, mod ...func(*emulator.Config)) *emulator.Emulator {
	t.Helper()
	cfg := emulator.Config{TaskDuration: 40 * time.Millisecond}
	for _, m := range mod {
		m(&cfg)
	}
	e, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}
