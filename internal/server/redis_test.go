package server_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// redisURL returns the test Redis, skipping (or failing under CI) without one.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("NERUTALK_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("NERUTALK_TEST_REDIS_URL is not set; CI must run the Redis tests")
		}
		t.Skip("Redis tests skipped: set NERUTALK_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run them")
	}
	return u
}

func TestReadyzChecksRedisWhenConfigured(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, func(c *config.Config) { c.RedisURL = redisURL(t) })
	var out struct {
		Checks map[string]string `json:"checks"`
	}
	resp := n.Do(t, http.MethodGet, "/readyz", "", nil, &out)
	if resp.StatusCode != http.StatusOK || out.Checks["redis"] != "ok" || out.Checks["database"] != "ok" {
		t.Fatalf("readyz: status %d checks %v, want 200 with database and redis ok", resp.StatusCode, out.Checks)
	}
	// When Redis stops answering, the node is not ready.
	n.Srv.Redis.Close()
	resp = n.Do(t, http.MethodGet, "/readyz", "", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Redis gone: status %d, want 503", resp.StatusCode)
	}
}
