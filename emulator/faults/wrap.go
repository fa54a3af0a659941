package faults

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// Wrap applies the matching faults before handing the request to next.
func (s *Set) Wrap(region, service string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_emulator/") {
			next.ServeHTTP(w, r)
			return
		}
		for _, f := range s.take(region, service, r.Method, r.URL.Path) {
			switch f.Kind {
			case "latency":
				time.Sleep(f.latency)
			case "bandwidth":
				r.Body = &throttledReader{r: r.Body, limit: f.BytesPerSecond, start: time.Now()}
				w = &throttledWriter{ResponseWriter: w, limit: f.BytesPerSecond, start: time.Now()}
			case "link":
				r.Body = &linkReader{r: r.Body, link: f.link, ctx: r.Context()}
				w = &linkWriter{ResponseWriter: w, link: f.link, ctx: r.Context()}
			case "stall", "reset":
				cut := &cutter{kind: f.Kind, after: f.AfterBytes, done: r.Context().Done()}
				if r.Method == http.MethodPut || r.Method == http.MethodPost {
					r.Body = &cutReader{r: r.Body, c: cut}
				} else {
					w = &cutWriter{ResponseWriter: w, c: cut}
				}
			case "corrupt":
				// A bit flipped on the way in: what an MD5 check exists to catch.
				r.Body = &corruptReader{r: r.Body}
			case "rate-limit":
				if !f.refuses() {
					continue
				}
				w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
				core.Fail(w, f.Status, "Rate limit exceeded, retry after %d seconds.", f.RetryAfter)
				return
			case "error":
				core.Fail(w, f.Status, "The service is temporarily unavailable (injected fault).")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// pace sleeps until sent bytes fit under limit bytes per second since start.
func pace(sent, limit int64, start time.Time) {
	want := time.Duration(float64(sent) / float64(limit) * float64(time.Second))
	if d := want - time.Since(start); d > 0 {
		time.Sleep(d)
	}
}

const paceChunk = 32 << 10

type throttledReader struct {
	r     io.ReadCloser
	limit int64
	start time.Time
	n     int64
}

func (t *throttledReader) Read(p []byte) (int, error) {
	if len(p) > paceChunk {
		p = p[:paceChunk]
	}
	n, err := t.r.Read(p)
	t.n += int64(n)
	pace(t.n, t.limit, t.start)
	return n, err
}

func (t *throttledReader) Close() error { return t.r.Close() }

type throttledWriter struct {
	http.ResponseWriter
	limit int64
	start time.Time
	n     int64
}

func (t *throttledWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := min(len(p), paceChunk)
		n, err := t.ResponseWriter.Write(p[:c])
		written += n
		t.n += int64(n)
		if err != nil {
			return written, err
		}
		pace(t.n, t.limit, t.start)
		p = p[c:]
	}
	return written, nil
}

// linkReader and linkWriter move a body through a link shared with other requests: each chunk
// waits for its share of the link's capacity.
type linkReader struct {
	r    io.ReadCloser
	link *rate.Limiter
	ctx  context.Context
}

func (l *linkReader) Read(p []byte) (int, error) {
	if len(p) > paceChunk {
		p = p[:paceChunk]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.link.WaitN(l.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

func (l *linkReader) Close() error { return l.r.Close() }

type linkWriter struct {
	http.ResponseWriter
	link *rate.Limiter
	ctx  context.Context
}

func (l *linkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := min(len(p), paceChunk)
		if err := l.link.WaitN(l.ctx, c); err != nil {
			return written, err
		}
		n, err := l.ResponseWriter.Write(p[:c])
		written += n
		if err != nil {
			return written, err
		}
		p = p[c:]
	}
	return written, nil
}

// corruptReader flips one bit of the first byte it reads.
type corruptReader struct {
	r    io.ReadCloser
	done bool
}

func (c *corruptReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.done {
		p[0] ^= 0x01
		c.done = true
	}
	return n, err
}

func (c *corruptReader) Close() error { return c.r.Close() }

// cutter strikes after a number of bytes: a stall blocks until the client gives up (the
// connection stays open, nothing moves), a reset aborts the connection mid-body.
type cutter struct {
	kind  string
	after int64
	n     int64
	done  <-chan struct{}
}

// allow returns how many of want bytes may still move, and strikes when none may.
func (c *cutter) allow(want int) int {
	left := c.after - c.n
	if left > 0 {
		return int(min(int64(want), left))
	}
	if c.kind == "stall" {
		<-c.done
	}
	// net/http closes the connection without a response for this panic: a reset mid-body.
	panic(http.ErrAbortHandler)
}

type cutReader struct {
	r io.ReadCloser
	c *cutter
}

func (t *cutReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := t.r.Read(p[:t.c.allow(len(p))])
	t.c.n += int64(n)
	return n, err
}

func (t *cutReader) Close() error { return t.r.Close() }

type cutWriter struct {
	http.ResponseWriter
	c *cutter
}

func (t *cutWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k := t.c.allow(len(p))
		n, err := t.ResponseWriter.Write(p[:k])
		written += n
		t.c.n += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
