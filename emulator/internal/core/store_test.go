package core

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// blockingWriter stands for a client that reads slowly: every Write waits for release.
type blockingWriter struct {
	*httptest.ResponseRecorder
	writing chan struct{}
	release chan struct{}
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	close(b.writing)
	<-b.release
	return b.ResponseRecorder.Write(p)
}

// TestLockReplyWritesAfterUnlock: while a reply built under the lock is being written to a
// client that does not read, the lock is free for everyone else.
func TestLockReplyWritesAfterUnlock(t *testing.T) {
	s := NewStore(t.TempDir(), nil)
	w := &blockingWriter{httptest.NewRecorder(), make(chan struct{}), make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		held, unlock := s.LockReply(w)
		WriteJSON(held, 200, map[string]string{"listing": "big"})
		unlock()
	}()
	<-w.writing
	if !s.mu.TryLock() {
		t.Fatal("the lock is held while the answer is written")
	}
	s.mu.Unlock()
	close(w.release)
	<-done
	if w.Code != 200 || !strings.Contains(w.Body.String(), "big") || w.Header().Get("Content-Type") == "" {
		t.Fatalf("the held answer arrived as %d %q", w.Code, w.Body)
	}
}

func TestWriteBlobKeepsNothingPastItsLimit(t *testing.T) {
	s := NewStore(t.TempDir(), nil)
	if _, _, _, err := s.WriteBlob("d", strings.NewReader("12345"), 4); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("5 bytes under a limit of 4: %v", err)
	}
	rel, size, etag, err := s.WriteBlob("d", strings.NewReader("1234"), 4)
	if err != nil || size != 4 || etag != "81dc9bdb52d04dc20036dbd8313ed055" {
		t.Fatalf("%s %d %s %v", rel, size, etag, err)
	}
	r := s.OpenParts([]FilePart{{Rel: rel, Size: size}, {Rel: rel, Size: size}})
	defer r.Close()
	b := make([]byte, 8)
	if n, _ := r.Read(b[:4]); n != 4 || string(b[:4]) != "1234" {
		t.Fatalf("read %q", b[:n])
	}
}
