// Package testenv gives integration tests a real Temporal server, a real NATS server and the
// cloud emulator in one call.
package testenv
