// Package events holds the NATS JetStream subjects, the CloudEvents envelope and the bridge
// that turns command events into workflow starts and signals.
package events
