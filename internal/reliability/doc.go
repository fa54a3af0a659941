// Package reliability holds the fault and attack suite: integration tests that kill workers,
// restart Temporal and NATS, break the cloud, feed bad input at every door and scan everything
// imageflow wrote for secrets. RELIABILITY.md reports what they observed. The long variants run
// with IMAGEFLOW_LONG_TESTS=1.
package reliability
