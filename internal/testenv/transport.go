package testenv

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// ReadCounter is a client transport that counts the response bytes read through it: how a test
// sees what passed through a worker. Hide, when set, answers 404 to the requests it picks, as if
// the server had no such endpoint.
type ReadCounter struct {
	Read atomic.Int64
	Hide func(*http.Request) bool
}

// RoundTrip implements http.RoundTripper.
func (c *ReadCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.Hide != nil && c.Hide(r) {
		return &http.Response{StatusCode: 404, Body: io.NopCloser(strings.NewReader(`{}`)), Header: http.Header{},
			Request: r}, nil
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = &countedBody{ReadCloser: resp.Body, n: &c.Read}
	}
	return resp, err
}

type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
