package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RedisURL returns NERUTALK_TEST_REDIS_URL, skipping the test without it (failing it under
// CI=true, where the Redis tests must run).
func RedisURL(t testing.TB) string {
	t.Helper()
	return serverURL(t, "NERUTALK_TEST_REDIS_URL", "Redis", "redis://127.0.0.1:6379/0")
}

// Redis returns a client of the test Redis, closed when the test ends, and a key prefix no other
// test uses; the keys under it are deleted when the test ends. Redis tests share one server, so
// every key a test makes must start with its prefix.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("NERUTALK_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "nerutalk-test:" + strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		defer rdb.Close()
		ctx := context.Background()
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return rdb, prefix
}
