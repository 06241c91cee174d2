package auth

import (
	"sync"
	"time"
)

// sessionCache remembers, for a short TTL, what the Authenticator learnt about a session, so that
// an authenticated request costs no database read in the common case. Entries are dropped (or
// marked dead) at once when this node revokes a session, and when another node does and tells
// every node (Options.Signals, over the Redis bus); a role changed by `nerutalk admin`, or a
// revocation by a node that cannot signal, is seen here at most TTL later
// (NERUTALK_SESSION_CACHE_TTL).
type sessionCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[string]cachedSession
}

type cachedSession struct {
	sessionState
	fetched time.Time
	killed  bool // revoked by this node: a concurrent read of older state must not replace it
}

func newSessionCache(ttl time.Duration, max int) *sessionCache {
	return &sessionCache{ttl: ttl, max: max, entries: make(map[string]cachedSession)}
}

// get returns the cached state of session id if it is younger than the TTL.
func (c *sessionCache) get(id string, now time.Time) (sessionState, bool) {
	if c.ttl <= 0 {
		return sessionState{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || now.Sub(e.fetched) >= c.ttl || now.Before(e.fetched) {
		return sessionState{}, false
	}
	return e.sessionState, true
}

// put caches st. When the cache is full it first drops stale entries, then arbitrary ones, so its
// size never exceeds max.
func (c *sessionCache) put(id string, st sessionState, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.entries[id]
	if ok && old.killed && now.Sub(old.fetched) < c.ttl {
		return
	}
	if !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if now.Sub(e.fetched) >= c.ttl {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[id] = cachedSession{sessionState: st, fetched: now}
}

// kill records that these sessions were revoked by this node. The entry is written even for a
// session not cached yet, so that an Authenticate that read the session just before the
// revocation committed cannot cache it as live afterwards.
func (c *sessionCache) kill(now time.Time, ids ...string) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		e := c.entries[id]
		e.live, e.killed, e.fetched = false, true, now
		c.entries[id] = e
	}
}
