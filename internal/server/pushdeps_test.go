package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// Nodes sharing a Redis share the admin send limit: two sends spread over two nodes use up a
// budget of two, and the next is refused on either node.
func TestPushAdminLimitIsSharedByNodes(t *testing.T) {
	t.Parallel()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	cluster := func(c *config.Config) {
		c.RedisURL, c.RedisPrefix, c.RateLimits, c.PushAdminSendsPerMin = redisURL, prefix, true, 2
	}
	a := servertest.New(t, store.Postgres, cluster)
	second := servertest.New(t, store.Postgres, func(c *config.Config) { cluster(c); c.DatabaseURL = a.Config.DatabaseURL })
	boss, joe := a.Register(t, "boss"), a.Register(t, "joe")
	if err := auth.SetRole(context.Background(), a.Srv.DB, "boss", true); err != nil {
		t.Fatal(err)
	}
	send := func(n *servertest.Node) int {
		return n.Do(t, http.MethodPost, "/api/v1/notifications/send", boss.AccessToken,
			map[string]any{"user_ids": []string{joe.ID}, "title": "Hi"}, nil).StatusCode
	}
	for i, n := range []*servertest.Node{a, second} {
		if s := send(n); s != http.StatusAccepted {
			t.Fatalf("send %d: status %d, want 202", i+1, s)
		}
	}
	for _, n := range []*servertest.Node{a, second} {
		if s := send(n); s != http.StatusTooManyRequests {
			t.Fatalf("send after the budget: status %d, want 429", s)
		}
	}
}
