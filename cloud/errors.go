package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// Kind classifies a failed cloud call by what a caller should do about it.
type Kind string

const (
	NotFound     Kind = "NotFound"     // 404: wrong id, or not visible to this account
	Forbidden    Kind = "Forbidden"    // 403: visible but not allowed
	Conflict     Kind = "Conflict"     // 409: state clash (already exists, not empty)
	Invalid      Kind = "Invalid"      // 400, 415, 416, 422: the request itself is wrong
	RateLimited  Kind = "RateLimited"  // 413 or 429: slow down, retry after RetryAfter
	Unavailable  Kind = "Unavailable"  // 5xx, timeouts, refused connections: retry with backoff
	Unauthorized Kind = "Unauthorized" // 401 after re-authenticating: bad or revoked credentials
)

// Error is a cloud call that failed, with its kind and the cloud's own message.
type Error struct {
	Kind       Kind
	Status     int           // HTTP status, 0 for transport failures
	Op         string        // what was attempted, e.g. "get image 123 in DFW"
	Message    string        // the cloud's message, when it gave one
	RetryAfter time.Duration // RateLimited: how long the cloud asked to wait; Unavailable: when to try again
	Err        error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d %s", e.Status, e.Kind)
	} else {
		b.WriteString(string(e.Kind))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	} else if e.Err != nil && e.Status == 0 {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a cloud error anywhere in err's chain, or "".
func KindOf(err error) Kind {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Kind
	}
	return ""
}

// IsNotFound reports whether err is a cloud 404.
func IsNotFound(err error) bool { return KindOf(err) == NotFound }

// IsConflict reports whether err is a cloud 409.
func IsConflict(err error) bool { return KindOf(err) == Conflict }

func kindForStatus(code int) Kind {
	switch {
	case code == 401:
		return Unauthorized
	case code == 403:
		return Forbidden
	case code == 404:
		return NotFound
	case code == 409:
		return Conflict
	case code == 413 || code == 429:
		return RateLimited
	case code >= 500:
		return Unavailable
	}
	return Invalid
}

// classify turns an error from gophercloud or net/http into an *Error naming op. Context
// cancellation passes through unchanged so callers can tell it apart.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	var down *HostDownError
	if errors.As(err, &down) {
		// The next attempt waits for the host again, so it may come at once (a fifth of a probe's
		// interval, at most a second: a test's scaled probe keeps production's ratio).
		return &Error{Kind: Unavailable, Op: op, Message: down.Text(), Err: err,
			RetryAfter: max(min(time.Second, down.ProbeEvery/5), time.Millisecond)}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	var uep *gophercloud.ErrUnexpectedResponseCode
	switch {
	case errors.As(err, &ue):
		return fromResponse(op, ue.Actual, ue.ResponseHeader, ue.Body, err)
	case errors.As(err, &uep):
		return fromResponse(op, uep.Actual, uep.ResponseHeader, uep.Body, err)
	}
	var reauth *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &reauth) {
		return reauthFailed(op, reauth)
	}
	if transportFailure(err) {
		return &Error{Kind: Unavailable, Op: op, Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// reauthFailed classifies a token renewal that failed by what identity itself answered: only a
// refusal of the credentials (401, 403, 400 from identity) is Unauthorized; identity down, slow
// or busy (5xx, 429, a transport failure) is Unavailable and heals, so a job waits it out instead
// of failing for good with the advice to check a key that is fine.
func reauthFailed(op string, reauth *gophercloud.ErrUnableToReauthenticate) *Error {
	inner := classify("re-authenticate", reauth.ErrReauth)
	switch kind := KindOf(inner); {
	case kind == Unavailable || kind == RateLimited:
		return &Error{Kind: kind, Op: op, Message: "renewing the token failed, identity is not answering: " +
			inner.Error(), RetryAfter: retryAfterOf(inner), Err: reauth}
	case errors.Is(reauth.ErrReauth, context.Canceled) || errors.Is(reauth.ErrReauth, context.DeadlineExceeded):
		return &Error{Kind: Unavailable, Op: op, Message: "renewing the token timed out", Err: reauth}
	}
	return &Error{Kind: Unauthorized, Status: 401, Op: op,
		Message: "identity refused to renew the token; check the configured username and API key or password",
		Err:     reauth}
}

func retryAfterOf(err error) time.Duration {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.RetryAfter
	}
	return 0
}

// transportFailure says the request failed on the way, not at the far end: a network error
// (net/http wraps every dial, read and write failure in one), or a body cut short.
func transportFailure(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// fromResponse builds an *Error from an HTTP answer, reading the fault message from the body.
func fromResponse(op string, status int, h http.Header, body []byte, err error) *Error {
	e := &Error{Kind: kindForStatus(status), Status: status, Op: op, Message: faultMessage(body), Err: err}
	if !isRateLimit(status, h) && e.Kind == RateLimited {
		e.Kind = Invalid // Swift's 413 without Retry-After means "too large", not "slow down"
	}
	if e.Kind == RateLimited {
		e.RetryAfter = retryAfter(h)
	}
	return e
}

var htmlTag = regexp.MustCompile(`<[^>]*>`)

// faultMessage finds "message" in a Rackspace fault body {"<fault>":{"code":N,"message":"..."}},
// or takes the body's text; either way without HTML (Glance answers some faults with
// "...<br /><br />"), on one line, at most 200 bytes.
func faultMessage(body []byte) string {
	s := string(body)
	var m map[string]struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil {
		for _, f := range m {
			if f.Message != "" {
				s = f.Message
				break
			}
		}
	}
	s = strings.Join(strings.Fields(htmlTag.ReplaceAllString(s, " ")), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	return s
}

// retryAfter reads Retry-After as seconds or an HTTP date; missing or bad means one second.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return time.Second
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
		return 0
	}
	return time.Second
}

// isRateLimit tells a rate limit (429, or Rackspace's 413 with Retry-After) from Swift's 413
// "request entity too large", which carries no Retry-After.
func isRateLimit(status int, h http.Header) bool {
	return status == 429 || (status == 413 && h.Get("Retry-After") != "")
}
