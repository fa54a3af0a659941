package testenv

import (
	"bytes"
	"math/rand/v2"
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

// FreePort returns a port nothing listens on right now, below the ephemeral range (see
// FreePortRun).
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePortRun(t, 1)
}

// FreePortRun returns the first of n consecutive free ports (the emulator takes seven). It looks
// below Linux's ephemeral range (32768 and up): a run found free there is not taken a moment
// later by another test process's outgoing connection or ":0" listener, as runs inside it were.
//
// A port it returned is never returned again by this process: the caller may not have bound it
// yet, and devstack's test once got one port for both its UI and NATS.
func FreePortRun(t testing.TB, n int) int {
	t.Helper()
	const low, high = 20000, 32000
	for try := 0; try < 200; try++ {
		base := low + rand.IntN(high-low-n)
		if portsFree(base, n) && handOut(base, n) {
			return base
		}
	}
	t.Fatalf("no %d free ports in a row between %d and %d", n, low, high)
	return 0
}

var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)

// handOut records ports base to base+n-1 as given out; false if one of them already was.
func handOut(base, n int) bool {
	handedMu.Lock()
	defer handedMu.Unlock()
	for p := base; p < base+n; p++ {
		if handed[p] {
			return false
		}
	}
	for p := base; p < base+n; p++ {
		handed[p] = true
	}
	return true
}

func portsFree(base, n int) bool {
	for j := 0; j < n; j++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+j)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
