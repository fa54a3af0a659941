package core

import "sync"

// Counter counts bytes per region (what a service received or served), for tests and
// benchmarks. The zero value is ready.
type Counter struct {
	mu    sync.Mutex
	bytes map[string]int64
}

// Add counts n more bytes for region.
func (c *Counter) Add(region string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes == nil {
		c.bytes = map[string]int64{}
	}
	c.bytes[region] += n
}

// Get is the bytes counted for region.
func (c *Counter) Get(region string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes[region]
}
