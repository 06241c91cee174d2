// Package ratelimit decides whether an action identified by a key (an IP address, an account) may
// happen now. Limiter is the seam: Memory enforces limits inside one process, Redis enforces one
// limit for every node sharing a Redis server, and Noop switches them off (NERUTALK_RATE_LIMITS=off).
//
// Both implement GCRA (the generic cell rate algorithm, equivalent to a token bucket that holds
// Rate.Events tokens and refills one every Rate.Per/Rate.Events): per key it keeps a single
// timestamp, the theoretical arrival time (TAT) of the next event. A key whose TAT has passed is in
// the same state as a key never seen, so it can be forgotten without changing any decision; that is
// how memory stays bounded (see Memory).
//
// Concurrency: Memory is safe for concurrent use. Keys are spread over shards, each guarded by its
// own mutex held only for a map lookup and an update; no goroutine runs in the background.
package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// Limiter decides whether one more event for key may happen now. When it may not, retryAfter says
// how long to wait before the next event would be allowed. err reports a failure of the limiter
// itself (a remote store that does not answer); callers decide whether to fail open or closed.
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// Counter is a Limiter that can also report a key's state without recording an event, for limits
// that count only some events (failures) but are consulted before every attempt.
type Counter interface {
	Limiter
	// Peek returns how many events key holds now (0: none within the window; Allow refuses once
	// it reaches Rate.Events) and how long until one more would be allowed (0: now). It records
	// nothing.
	Peek(ctx context.Context, key string) (n int, retryAfter time.Duration, err error)
}

// Rate is "Events per Per": up to Events events may happen at once (the burst), after which one
// more becomes available every Per/Events.
type Rate struct {
	Events int
	Per    time.Duration
}

// PerMinute returns a rate of n events per minute.
func PerMinute(n int) Rate { return Rate{Events: n, Per: time.Minute} }

func (r Rate) String() string { return fmt.Sprintf("%d per %s", r.Events, r.Per) }

// Noop allows everything; it is used when rate limits are switched off.
type Noop struct{}

// Allow always allows.
func (Noop) Allow(context.Context, string) (bool, time.Duration, error) { return true, 0, nil }

// Peek reports every key as fresh.
func (Noop) Peek(context.Context, string) (int, time.Duration, error) { return 0, 0, nil }

const shardCount = 16

// Memory is an in-process GCRA limiter.
//
// Memory bound: every key's entry disappears once its TAT has passed (at most Rate.Per after its
// last event): a shard sweeps its expired entries whenever it has doubled in size since the last
// sweep, so the cost of sweeping is amortised over the inserts that made it necessary. On top of
// that a shard never holds more than MaxKeys/16 entries: when a new key arrives at a full shard
// and nothing has expired, one arbitrary entry is dropped, which at worst lets that key start
// afresh with a full burst. An attacker spraying keys therefore costs memory proportional to
// MaxKeys, never more.
type Memory struct {
	rate      Rate
	interval  time.Duration // time between two events at the sustained rate: Per/Events
	tolerance time.Duration // how far ahead of now the TAT may run: (Events-1)*interval
	now       func() time.Time
	seed      maphash.Seed
	shardMax  int
	shards    [shardCount]shard
}

type shard struct {
	mu        sync.Mutex
	tat       map[string]time.Time
	nextSweep int
}

// Option adjusts a Memory limiter.
type Option func(*Memory)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(m *Memory) { m.now = now } }

// WithMaxKeys bounds the number of keys remembered at once (default 1<<20).
func WithMaxKeys(n int) Option {
	return func(m *Memory) {
		m.shardMax = max(1, n/shardCount)
	}
}

const minSweep = 256

// NewMemory returns an in-memory limiter allowing r for every key. It panics on a rate with no
// events or no period, which is a programming error.
func NewMemory(r Rate, opts ...Option) *Memory {
	if r.Events < 1 || r.Per <= 0 {
		panic("ratelimit: invalid rate " + r.String())
	}
	m := &Memory{rate: r, now: time.Now, seed: maphash.MakeSeed(), shardMax: (1 << 20) / shardCount}
	m.interval = r.Per / time.Duration(r.Events)
	m.tolerance = m.interval * time.Duration(r.Events-1)
	for _, o := range opts {
		o(m)
	}
	for i := range m.shards {
		m.shards[i].tat = make(map[string]time.Time)
		m.shards[i].nextSweep = minSweep
	}
	return m
}

// Allow records one event for key if the rate allows it.
func (m *Memory) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	now := m.now()
	s := &m.shards[maphash.String(m.seed, key)%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, seen := s.tat[key]
	if !seen || tat.Before(now) {
		tat = now
	}
	if ahead := tat.Sub(now); ahead > m.tolerance {
		return false, ahead - m.tolerance, nil
	}
	if !seen {
		s.makeRoom(now, m.shardMax)
	}
	s.tat[key] = tat.Add(m.interval)
	return true, 0, nil
}

// Peek reports key's state without recording an event (see Counter).
func (m *Memory) Peek(_ context.Context, key string) (int, time.Duration, error) {
	now := m.now()
	s := &m.shards[maphash.String(m.seed, key)%shardCount]
	s.mu.Lock()
	tat, seen := s.tat[key]
	s.mu.Unlock()
	if !seen || !tat.After(now) {
		return 0, 0, nil
	}
	n, retry := peek(tat.Sub(now), m.interval, m.tolerance)
	return n, retry, nil
}

// peek turns how far a key's TAT runs ahead of now into the events it holds and the wait
// before the next one is allowed.
func peek(ahead, interval, tolerance time.Duration) (int, time.Duration) {
	n := int((ahead + interval - 1) / interval)
	return n, max(0, ahead-tolerance)
}

// makeRoom keeps the shard within its bounds before a new key is added. The caller holds s.mu.
func (s *shard) makeRoom(now time.Time, limit int) {
	if len(s.tat) >= s.nextSweep || len(s.tat) >= limit {
		for k, t := range s.tat {
			if !t.After(now) {
				delete(s.tat, k)
			}
		}
		s.nextSweep = max(minSweep, 2*len(s.tat))
	}
	for k := range s.tat {
		if len(s.tat) < limit {
			break
		}
		delete(s.tat, k)
	}
}

// Len returns the number of keys currently remembered (expired ones included until swept).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}
