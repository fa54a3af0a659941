// Package activities wraps each Cloud Images and Cloud Files call imageflow makes as a Temporal
// activity: one method per call on Activities, which holds the account's cloud client. The
// credentials live in that client, never in activity inputs, results, errors or heartbeats.
package activities
