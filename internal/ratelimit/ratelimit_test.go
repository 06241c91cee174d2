package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestMemoryGCRA(t *testing.T) {
	t.Parallel()
	allow := step{wantOK: true}
	tests := []struct {
		name  string
		rate  Rate
		steps []step
	}{
		{
			name:  "burst of ten then one every six seconds",
			rate:  PerMinute(10),
			steps: append(repeat(allow, 10), step{wantOK: false, wantRetry: 6 * time.Second}, step{advance: 5 * time.Second, wantRetry: time.Second}, step{advance: time.Second, wantOK: true}, step{wantRetry: 6 * time.Second}),
		},
		{
			name:  "an idle minute refills the whole burst",
			rate:  PerMinute(3),
			steps: append(append(repeat(allow, 3), step{wantRetry: 20 * time.Second}, step{advance: time.Minute, wantOK: true}), repeat(allow, 2)...),
		},
		{
			name:  "one per second",
			rate:  Rate{Events: 1, Per: time.Second},
			steps: []step{allow, {wantRetry: time.Second}, {advance: 400 * time.Millisecond, wantRetry: 600 * time.Millisecond}, {advance: 600 * time.Millisecond, wantOK: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			m := NewMemory(tt.rate, WithClock(clk.Now))
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				ok, retry, err := m.Allow(context.Background(), "k")
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if ok != s.wantOK || retry != s.wantRetry {
					t.Fatalf("step %d: got ok=%v retry=%v, want ok=%v retry=%v", i, ok, retry, s.wantOK, s.wantRetry)
				}
			}
		})
	}
}

func repeat(s step, n int) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

type step struct {
	advance   time.Duration
	wantOK    bool
	wantRetry time.Duration
}

func TestMemoryKeysAreIndependent(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := NewMemory(PerMinute(1), WithClock(clk.Now))
	ctx := context.Background()
	if ok, _, _ := m.Allow(ctx, "a"); !ok {
		t.Fatal("first a denied")
	}
	if ok, _, _ := m.Allow(ctx, "a"); ok {
		t.Fatal("second a allowed")
	}
	if ok, _, _ := m.Allow(ctx, "b"); !ok {
		t.Fatal("b denied because of a")
	}
}

func TestMemoryConcurrentAllowsExactlyTheBurst(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := NewMemory(PerMinute(10), WithClock(clk.Now))
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _, _ := m.Allow(context.Background(), "shared"); ok {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 10 {
		t.Fatalf("allowed %d of 100 concurrent events, want 10", got)
	}
}

func TestMemoryForgetsIdleKeys(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := NewMemory(PerMinute(10), WithClock(clk.Now))
	ctx := context.Background()
	for i := range 10000 {
		m.Allow(ctx, fmt.Sprint("old", i))
	}
	if n := m.Len(); n != 10000 {
		t.Fatalf("Len = %d after 10000 keys, want 10000", n)
	}
	clk.Advance(time.Minute) // every TAT (now + 6 s) has passed
	for i := range 10000 {
		m.Allow(ctx, fmt.Sprint("new", i))
	}
	// Each shard swept its expired keys when it doubled, so the old keys are (nearly) all gone.
	if n := m.Len(); n > 10000+shardCount*minSweep {
		t.Fatalf("Len = %d after the old keys went idle, want about 10000", n)
	}
}

func TestMemoryMaxKeysIsAHardBound(t *testing.T) {
	t.Parallel()
	clk := newClock()
	const maxKeys = 1024
	m := NewMemory(PerMinute(10), WithClock(clk.Now), WithMaxKeys(maxKeys))
	for i := range 50000 {
		m.Allow(context.Background(), fmt.Sprint("k", i)) // nothing expires: the clock stands still
	}
	if n := m.Len(); n > maxKeys {
		t.Fatalf("Len = %d, want at most %d", n, maxKeys)
	}
}

func TestNoopAllowsEverything(t *testing.T) {
	t.Parallel()
	var l Limiter = Noop{}
	for range 1000 {
		if ok, retry, err := l.Allow(context.Background(), "k"); !ok || retry != 0 || err != nil {
			t.Fatalf("Noop.Allow = %v, %v, %v", ok, retry, err)
		}
	}
}

func TestNewMemoryRejectsInvalidRates(t *testing.T) {
	t.Parallel()
	for _, r := range []Rate{{Events: 0, Per: time.Second}, {Events: 1, Per: 0}, {Events: -1, Per: time.Minute}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewMemory(%v) did not panic", r)
				}
			}()
			NewMemory(r)
		}()
	}
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := NewMemory(PerMinute(10))
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Allow(ctx, fmt.Sprint("k", i%4096))
			i++
		}
	})
}
