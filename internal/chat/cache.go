package chat

import (
	"context"
	"sync"
)

// lazyCache is a read-through cache of immutable values, loaded on a miss and dropped when the
// data behind them changes. A load that overlaps an invalidation is not stored, so a value read
// before a change can never outlive it: every invalidation bumps an epoch, and a load stores its
// result only if the epoch is unchanged since it began.
type lazyCache[V any] struct {
	load func(ctx context.Context, key string) (V, error)
	max  int // entries kept; beyond it an arbitrary half is dropped

	mu      sync.RWMutex
	entries map[string]V
	epoch   uint64
}

func newLazyCache[V any](max int, load func(ctx context.Context, key string) (V, error)) *lazyCache[V] {
	return &lazyCache[V]{load: load, max: max, entries: make(map[string]V)}
}

// get returns the cached value of key, loading it on a miss. Load errors are not cached.
func (c *lazyCache[V]) get(ctx context.Context, key string) (V, error) {
	c.mu.RLock()
	v, ok := c.entries[key]
	epoch := c.epoch
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := c.load(ctx, key)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.epoch == epoch {
		if len(c.entries) >= c.max {
			c.shrink()
		}
		c.entries[key] = v
	}
	c.mu.Unlock()
	return v, nil
}

// peek returns the cached value of key without loading it.
func (c *lazyCache[V]) peek(key string) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.entries[key]
	return v, ok
}

// shrink drops about half of the entries (map order is random, which makes this a cheap random
// eviction). The caller holds mu.
func (c *lazyCache[V]) shrink() {
	n := len(c.entries) / 2
	for k := range c.entries {
		if n <= 0 {
			break
		}
		delete(c.entries, k)
		n--
	}
}

// invalidate drops keys and makes every load that is in flight discard its result.
func (c *lazyCache[V]) invalidate(keys ...string) {
	c.mu.Lock()
	c.epoch++
	for _, k := range keys {
		delete(c.entries, k)
	}
	c.mu.Unlock()
}
