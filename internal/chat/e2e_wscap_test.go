package chat_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// TestE2EConnectionCapAcrossNodes: with Redis, NERUTALK_WS_MAX_CONNECTIONS_PER_USER counts a
// user's WebSocket connections on every node (leases in Redis): with the cap at 2, one connection
// on each node leaves no room on either; closing one frees a slot for the other node; another user
// is counted apart. Without Redis each node counts its own.
func TestE2EConnectionCapAcrossNodes(t *testing.T) {
	t.Parallel()
	const limit = 2
	type tc struct {
		name   string
		shared bool // the nodes share Redis
	}
	for _, tt := range []tc{{"two nodes sharing redis", true}, {"two nodes without redis", false}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var a, b *servertest.Node
			if tt.shared {
				redisURL := storetest.RedisURL(t)
				_, prefix := storetest.Redis(t)
				a = servertest.New(t, store.Postgres, func(c *config.Config) {
					c.WSMaxConnectionsPerUser, c.RedisURL, c.RedisPrefix = limit, redisURL, prefix
				})
				b = servertest.New(t, store.Postgres, func(c *config.Config) {
					c.WSMaxConnectionsPerUser, c.RedisURL, c.RedisPrefix, c.DatabaseURL = limit, redisURL, prefix, a.Config.DatabaseURL
				})
			} else {
				a = servertest.New(t, store.Postgres, func(c *config.Config) { c.WSMaxConnectionsPerUser = limit })
				b = servertest.New(t, store.Postgres, func(c *config.Config) {
					c.WSMaxConnectionsPerUser, c.DatabaseURL = limit, a.Config.DatabaseURL
				})
			}
			alice, bob := a.Register(t, "alice"), a.Register(t, "bob")
			first := dial(t, a, alice, "a1")
			dial(t, b, alice, "b1")
			dial(t, b, bob, "b1") // another user: counted apart
			if tt.shared {
				wantRefused(t, a, alice)
				wantRefused(t, b, alice)
				first.close()
				// The slot comes back once node a has seen the close and released the lease.
				deadline := time.Now().Add(10 * time.Second)
				for !tryDial(t, b, alice) {
					if time.Now().After(deadline) {
						t.Fatal("the closed connection's lease was never released")
					}
					time.Sleep(20 * time.Millisecond)
				}
				wantRefused(t, a, alice)
				return
			}
			// Per node: a second connection on each node is still allowed, a third is not.
			dial(t, a, alice, "a2")
			dial(t, b, alice, "b2")
			wantRefused(t, a, alice)
			wantRefused(t, b, alice)
		})
	}
}

func wsURL(n *servertest.Node, u servertest.User) string {
	return "ws" + strings.TrimPrefix(n.URL, "http") + realtime.Path + "?token=" + url.QueryEscape(u.AccessToken)
}

// tryDial opens a connection of u on n, kept until the test ends; false when it is refused with
// 429 too_many_connections.
func tryDial(t *testing.T, n *servertest.Node, u servertest.User) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, wsURL(n, u), nil)
	if err == nil {
		t.Cleanup(func() { ws.CloseNow() })
		return true
	}
	if resp == nil {
		t.Fatalf("dial: %v (no response)", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &p)
	if resp.StatusCode != http.StatusTooManyRequests || p.Code != "too_many_connections" {
		t.Fatalf("refused with %d %s, want 429 too_many_connections", resp.StatusCode, body)
	}
	return false
}

func wantRefused(t *testing.T, n *servertest.Node, u servertest.User) {
	t.Helper()
	if tryDial(t, n, u) {
		t.Fatalf("%s: connection over the cap accepted", u.Username)
	}
}
