package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// testRedis returns a client of the test Redis and a key prefix no other test uses.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	rdb, prefix := storetest.Redis(t)
	return rdb, prefix + ":"
}

// Two nodes share one limit: their events count together, whichever node they hit.
func TestRedisSharesTheLimitBetweenNodes(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	a, b := NewRedis(rdb, prefix, PerMinute(5)), NewRedis(rdb, prefix, PerMinute(5))
	ctx := context.Background()
	for i := range 5 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if ok, _, err := l.Allow(ctx, "ip:1"); !ok || err != nil {
			t.Fatalf("event %d: ok=%v err=%v, want allowed", i, ok, err)
		}
	}
	for _, l := range []*Redis{a, b} {
		ok, retry, err := l.Allow(ctx, "ip:1")
		if ok || err != nil || retry <= 11*time.Second || retry > 12*time.Second {
			t.Fatalf("sixth event: ok=%v retry=%v err=%v, want refused with about 12s to wait", ok, retry, err)
		}
	}
	if ok, _, _ := b.Allow(ctx, "ip:2"); !ok {
		t.Fatal("another key: want allowed")
	}
	// The key vanishes once its TAT has passed: at most a minute from now.
	ttl, err := rdb.PTTL(ctx, prefix+"ip:1").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute+time.Second {
		t.Fatalf("key TTL %v (%v), want within a minute", ttl, err)
	}
}

// Concurrent events on several nodes: exactly the burst is allowed.
func TestRedisIsExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	nodes := []*Redis{NewRedis(rdb, prefix, Rate{Events: 20, Per: time.Hour}), NewRedis(rdb, prefix, Rate{Events: 20, Per: time.Hour})}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			ok, _, err := nodes[i%2].Allow(context.Background(), "k")
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 20 {
		t.Fatalf("allowed %d of 100, want exactly the burst of 20", n)
	}
}

func TestRedisReportsAnUnreachableServer(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	if _, _, err := NewRedis(rdb, "x:", PerMinute(1)).Allow(context.Background(), "k"); err == nil {
		t.Fatal("want an error when Redis does not answer")
	}
}
