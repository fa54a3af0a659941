package core

import (
	"bytes"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Store is the one lock over the whole cloud's state, which every service shares (a task reads
// images and writes objects in one step), the record that the state changed since it was last
// saved, and the data folder where images' and objects' bytes live as files.
type Store struct {
	mu      sync.Mutex
	dirty   bool          // under mu
	kick    chan struct{} // wakes whoever saves the state
	dataDir string
	log     *slog.Logger
	closing chan struct{}
	close   sync.Once
}

// NewStore keeps bytes under dataDir; log may be nil.
func NewStore(dataDir string, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{kick: make(chan struct{}, 1), dataDir: dataDir, log: log, closing: make(chan struct{})}
}

// Lock takes the state lock. Never write a response body while holding it: see LockReply.
func (s *Store) Lock() { s.mu.Lock() }

// Unlock releases the state lock.
func (s *Store) Unlock() { s.mu.Unlock() }

// Commit records a change made under the lock; whoever watches Changed saves it soon.
func (s *Store) Commit() {
	s.dirty = true
	select {
	case s.kick <- struct{}{}:
	default: // a save is already due
	}
}

// Changed fires after Commit (at most one pending signal however many commits).
func (s *Store) Changed() <-chan struct{} { return s.kick }

// TakeDirty reports whether the state changed since the last call; call with the lock held.
func (s *Store) TakeDirty() bool {
	d := s.dirty
	s.dirty = false
	return d
}

// Closing is closed when the emulator shuts down: background work stops at it.
func (s *Store) Closing() <-chan struct{} { return s.closing }

// Close closes Closing, once.
func (s *Store) Close() { s.close.Do(func() { close(s.closing) }) }

// Sleep waits d, or less if the emulator closes meanwhile (then it answers false).
func (s *Store) Sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-s.closing:
		return false
	}
}

// Log is the emulator's logger.
func (s *Store) Log() *slog.Logger { return s.log }

// LockReply takes the lock for a handler that answers from shared state, and gives it a writer
// that holds the answer in memory. The returned unlock releases the lock first and writes the
// answer after, so a client that reads slowly (or a stalled link) never holds the lock that
// every region and account shares. Use as: w, unlock := s.LockReply(w); defer unlock().
func (s *Store) LockReply(w http.ResponseWriter) (http.ResponseWriter, func()) {
	held := &heldReply{header: http.Header{}}
	s.mu.Lock()
	return held, func() {
		s.mu.Unlock()
		held.sendTo(w)
	}
}

// heldReply is an answer built under the lock and sent after it.
type heldReply struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldReply) Header() http.Header { return h.header }

func (h *heldReply) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldReply) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return h.body.Write(b)
}

func (h *heldReply) sendTo(w http.ResponseWriter) {
	if h.status == 0 {
		return // the handler wrote nothing: net/http answers 200 as it would have
	}
	for k, v := range h.header {
		w.Header()[k] = v
	}
	w.WriteHeader(h.status)
	_, _ = w.Write(h.body.Bytes())
}
