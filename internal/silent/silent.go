// Package silent is a Temporal SDK logger that drops everything, for clients whose own output
// matters more than the SDK's (the starter, devstack, benchmarks).
package silent

// Logger implements go.temporal.io/sdk/log.Logger and logs nothing.
type Logger struct{}

func (Logger) Debug(string, ...any) {}
func (Logger) Info(string, ...any)  {}
func (Logger) Warn(string, ...any)  {}
func (Logger) Error(string, ...any) {}
