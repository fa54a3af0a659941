//go:build tools

// Package jaeger pins the Jaeger binary devstack builds (go build
// github.com/jaegertracing/jaeger/cmd/jaeger in this module).
package jaeger

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
