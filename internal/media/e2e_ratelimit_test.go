package media_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// TestUploadRateLimit: over NERUTALK_UPLOADS_PER_MINUTE a user's uploads are refused with 429
// rate_limited and Retry-After, before the body is processed; other users keep their own budget.
// With Redis the nodes share one budget.
func TestUploadRateLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	cases := map[string]func(t *testing.T) []*servertest.Node{
		"sqlite": func(t *testing.T) []*servertest.Node {
			return []*servertest.Node{servertest.New(t, store.SQLite, func(c *config.Config) { c.UploadsPerMin = limit })}
		},
		"postgres": func(t *testing.T) []*servertest.Node {
			return []*servertest.Node{servertest.New(t, store.Postgres, func(c *config.Config) { c.UploadsPerMin = limit })}
		},
		"two nodes sharing redis": func(t *testing.T) []*servertest.Node {
			redisURL := storetest.RedisURL(t)
			_, prefix := storetest.Redis(t)
			a := servertest.New(t, store.Postgres, func(c *config.Config) {
				c.UploadsPerMin, c.RedisURL, c.RedisPrefix = limit, redisURL, prefix
			})
			b := servertest.New(t, store.Postgres, func(c *config.Config) {
				c.UploadsPerMin, c.RedisURL, c.RedisPrefix = limit, redisURL, prefix
				c.DatabaseURL, c.DataDir = a.Config.DatabaseURL, a.Config.DataDir
			})
			return []*servertest.Node{a, b}
		},
	}
	for name, start := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			nodes := start(t)
			alice, bob := nodes[0].Register(t, "alice"), nodes[0].Register(t, "bob")
			doc := func(i int) []byte { return fmt.Appendf(nil, "%%PDF-1.4\nupload %d\n", i) }
			for i := range limit {
				n := nodes[i%len(nodes)]
				if resp, raw, _ := upload(t, n, alice.AccessToken, "a.pdf", "application/pdf", doc(i)); resp.StatusCode != http.StatusCreated {
					t.Fatalf("upload %d: %d %s", i+1, resp.StatusCode, raw)
				}
			}
			resp, raw, _ := upload(t, nodes[len(nodes)-1], alice.AccessToken, "a.pdf", "application/pdf", doc(limit))
			var p struct {
				Code string `json:"code"`
			}
			_ = json.Unmarshal(raw, &p)
			if resp.StatusCode != http.StatusTooManyRequests || p.Code != "rate_limited" {
				t.Fatalf("upload over the limit: %d %s, want 429 rate_limited", resp.StatusCode, raw)
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
				t.Errorf("Retry-After %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
			}
			if resp, raw, _ := upload(t, nodes[0], bob.AccessToken, "b.pdf", "application/pdf", doc(0)); resp.StatusCode != http.StatusCreated {
				t.Errorf("another user's upload: %d %s, want 201 (budgets are per user)", resp.StatusCode, raw)
			}
		})
	}
}
