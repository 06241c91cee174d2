package server_test

import (
	"net/http"
	"testing"
	"time"

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

// A session revoked through one node is refused by the other at once, although that node trusts
// the sessions it has checked for an hour here: the revocation travels as a bus signal.
func TestLogoutTakesEffectOnEveryNode(t *testing.T) {
	t.Parallel()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	cluster := func(c *config.Config) { c.RedisURL, c.RedisPrefix, c.SessionCacheTTL = redisURL, prefix, time.Hour }
	a := servertest.New(t, store.Postgres, cluster)
	second := servertest.New(t, store.Postgres, func(c *config.Config) { cluster(c); c.DatabaseURL = a.Config.DatabaseURL })
	u := a.Register(t, "leaver")
	me := func() int {
		return second.Do(t, http.MethodGet, "/api/v1/users/me", u.AccessToken, nil, nil).StatusCode
	}
	if s := me(); s != http.StatusOK {
		t.Fatalf("before logout: status %d on the other node, want 200", s)
	}
	if s := a.Do(t, http.MethodPost, "/api/v1/auth/logout", "", map[string]string{"refresh_token": u.RefreshToken}, nil).StatusCode; s != http.StatusNoContent {
		t.Fatalf("logout: status %d", s)
	}
	for deadline := time.Now().Add(15 * time.Second); me() != http.StatusUnauthorized; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the other node still accepts the revoked session's access token")
		}
	}
}
