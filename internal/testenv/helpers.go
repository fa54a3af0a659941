package testenv

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer safe for the concurrent writes of a process's or logger's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// FreePort returns a port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePortRun returns the first of n consecutive free ports (the emulator takes seven).
func FreePortRun(t testing.TB, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		base := FreePort(t)
		ok := true
		for j := 1; j < n && ok; j++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+j)))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d free ports in a row", n)
	return 0
}
