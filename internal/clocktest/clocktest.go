// Package clocktest is the settable clock that tests inject wherever code reads the time through
// a Now func or a Clock interface, so that timeouts, expiry and backoff are tested without
// sleeping. It is safe for concurrent use.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a time that moves only when a test moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock that reads t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
