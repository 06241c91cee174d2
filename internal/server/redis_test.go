package server_test

import (
	"net/http"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func TestReadyzChecksRedisWhenConfigured(t *testing.T) {
	t.Parallel()
	_, prefix := storetest.Redis(t)
	n := servertest.New(t, store.SQLite, func(c *config.Config) { c.RedisURL, c.RedisPrefix = storetest.RedisURL(t), prefix })
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

// Nodes sharing a Redis share the sign-in limits: ten wrong passwords spread over two nodes use up
// the one budget, and the next attempt is refused on either node.
func TestAuthRateLimitsAreSharedByNodes(t *testing.T) {
	t.Parallel()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	a := servertest.New(t, store.Postgres, func(c *config.Config) { c.RedisURL, c.RedisPrefix = redisURL, prefix })
	second := servertest.New(t, store.Postgres, func(c *config.Config) {
		c.DatabaseURL, c.RedisURL, c.RedisPrefix = a.Config.DatabaseURL, redisURL, prefix
	})
	a.Register(t, "target")
	login := func(n *servertest.Node) int {
		return n.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"login": "target", "password": "wrong password"}, nil).StatusCode
	}
	for i := range 10 {
		n := a
		if i%2 == 1 {
			n = second
		}
		if s := login(n); s != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i+1, s)
		}
	}
	for _, n := range []*servertest.Node{a, second} {
		if s := login(n); s != http.StatusTooManyRequests {
			t.Fatalf("attempt after the budget: status %d, want 429", s)
		}
	}
}
