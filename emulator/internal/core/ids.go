package core

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"fmt"
	"net/http"
	"time"
)

// NewID returns a random version-4 UUID.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return formatUUID(b, 4)
}

// StableID derives a UUID from a name, so seed images keep their ids across runs.
func StableID(name string) string {
	return formatUUID(md5.Sum([]byte(name)), 3)
}

func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Now is second-resolution UTC, as Glance reports timestamps.
func Now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// TimeFormat is how Glance writes times.
const TimeFormat = "2006-01-02T15:04:05Z"

type callerKey struct{}

// WithCaller passes the authenticated tenant on to the services.
func WithCaller(r *http.Request, tenant string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, tenant))
}

// Caller is the tenant whose token the request carries ("" before identity checked it).
func Caller(r *http.Request) string { s, _ := r.Context().Value(callerKey{}).(string); return s }
