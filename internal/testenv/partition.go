package testenv

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Partition is a TCP proxy a test puts between a process and a server (Temporal, NATS, the
// cloud) to cut the network between them and heal it again, as a partition does: while cut,
// bytes stop moving on every connection (nothing is closed, nothing answers) and new connections
// are accepted into the same silence. Healing closes what was held, as the far side's timeouts
// would have by then, and forwards again.
type Partition struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool // both sides of every live connection
	held  []net.Conn        // connections accepted while cut
}

// NewPartition proxies a local port to target until the test ends.
func NewPartition(t testing.TB, target string) *Partition {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Partition{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
	})
	return p
}

// Addr is host:port to give the process instead of the target's.
func (p *Partition) Addr() string { return p.ln.Addr().String() }

// Cut stops every byte between the two sides.
func (p *Partition) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
}

// Heal closes the connections the cut held and forwards again.
func (p *Partition) Heal() {
	p.closeAll()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func (p *Partition) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	for _, c := range p.held {
		_ = c.Close()
	}
	p.conns, p.held = map[net.Conn]bool{}, nil
}

func (p *Partition) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.held = append(p.held, c)
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		go p.forward(c)
	}
}

func (p *Partition) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go p.pipe(s, c)
	p.pipe(c, s)
}

// pipe copies src to dst in small steps, waiting out a cut between them.
func (p *Partition) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitHealed(src) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF included: the side closed
			return
		}
	}
}

// waitHealed holds a connection's bytes while the network is cut; false when it was closed.
func (p *Partition) waitHealed(c net.Conn) bool {
	for {
		p.mu.Lock()
		cut, live := p.cut, p.conns[c]
		p.mu.Unlock()
		if !live {
			return false
		}
		if !cut {
			return true
		}
		sleepBriefly()
	}
}

func sleepBriefly() { time.Sleep(10 * time.Millisecond) }
