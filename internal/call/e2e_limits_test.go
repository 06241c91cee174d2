package call_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
)

// TestE2ECallStartRateLimit: over NERUTALK_CALLS_PER_MINUTE a user's call starts are refused with
// 429 rate_limited and Retry-After, before anything rings; other users keep their own budget. With
// Redis the nodes share one budget. Each call is ended before the next starts (a chat has one live
// call at a time), the loop an abuser ringing a group over and over would run.
func TestE2ECallStartRateLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	for _, dep := range servertest.Deployments() {
		t.Run(dep.Name, func(t *testing.T) {
			t.Parallel()
			nodes := dep.Start(t, func(c *config.Config) { c.CallsPerMinute = limit })
			alice, bob := nodes[0].Register(t, "alice"), nodes[0].Register(t, "bob")
			var direct chatRef
			if resp := nodes[0].Do(t, http.MethodPost, "/api/v1/chats", alice.AccessToken,
				map[string]any{"type": "direct", "member_ids": []string{bob.ID}}, &direct); resp.StatusCode != http.StatusCreated {
				t.Fatalf("direct chat: %d", resp.StatusCode)
			}
			// ring starts a call as u on node n and, if it started, ends it.
			ring := func(n *servertest.Node, u servertest.User) *http.Response {
				var c struct {
					ID string `json:"id"`
				}
				resp := n.Do(t, http.MethodPost, "/api/v1/calls", u.AccessToken, map[string]any{"chat_id": direct.ID, "kind": "audio"}, &c)
				if resp.StatusCode == http.StatusCreated {
					if end := n.Do(t, http.MethodPost, "/api/v1/calls/"+c.ID+"/end", u.AccessToken, nil, nil); end.StatusCode != http.StatusOK {
						t.Fatalf("end call: %d", end.StatusCode)
					}
				}
				return resp
			}
			for i := range limit {
				if resp := ring(nodes[i%len(nodes)], alice); resp.StatusCode != http.StatusCreated {
					t.Fatalf("call %d: %d, want 201", i+1, resp.StatusCode)
				}
			}
			resp := ring(nodes[len(nodes)-1], alice)
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("call over the limit: %d, want 429", resp.StatusCode)
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
				t.Errorf("Retry-After %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
			}
			if resp := ring(nodes[0], bob); resp.StatusCode != http.StatusCreated {
				t.Errorf("another user's call: %d, want 201 (budgets are per user)", resp.StatusCode)
			}
		})
	}
}

// TestE2ECallWriteRateLimit: answering, declining, joining, leaving and ending over REST share a
// per-user budget at the WebSocket's frame rate (NERUTALK_WS_FRAMES_PER_SECOND, bursts of twice
// that), since each tells every member of the chat: a member joining and leaving in a loop is
// refused with 429 rate_limited and Retry-After after the burst, and others keep their budget.
func TestE2ECallWriteRateLimit(t *testing.T) {
	t.Parallel()
	const burst = 4 // two a second, bursts of twice that
	for _, dep := range servertest.Deployments() {
		t.Run(dep.Name, func(t *testing.T) {
			t.Parallel()
			nodes := dep.Start(t, func(c *config.Config) { c.WSFramesPerSecond = 2 })
			alice, bob, carol := nodes[0].Register(t, "alice"), nodes[0].Register(t, "bob"), nodes[0].Register(t, "carol")
			var group chatRef
			if resp := nodes[0].Do(t, http.MethodPost, "/api/v1/chats", alice.AccessToken,
				map[string]any{"type": "group", "title": "g", "member_ids": []string{bob.ID, carol.ID}}, &group); resp.StatusCode != http.StatusCreated {
				t.Fatalf("group: %d", resp.StatusCode)
			}
			var c struct {
				ID string `json:"id"`
			}
			if resp := nodes[0].Do(t, http.MethodPost, "/api/v1/calls", alice.AccessToken, map[string]any{"chat_id": group.ID, "kind": "audio"}, &c); resp.StatusCode != http.StatusCreated {
				t.Fatalf("start: %d", resp.StatusCode)
			}
			// Bob joins and leaves; joins alone or leaves alone would pass twice the burst.
			servertest.ExpectRateLimited(t, burst, burst+3, func(i int) *http.Response {
				action := "/join"
				if i%2 == 1 {
					action = "/leave"
				}
				return nodes[i%len(nodes)].Do(t, http.MethodPost, "/api/v1/calls/"+c.ID+action, bob.AccessToken, nil, nil)
			})
			if resp := nodes[0].Do(t, http.MethodPost, "/api/v1/calls/"+c.ID+"/join", carol.AccessToken, nil, nil); resp.StatusCode >= 300 {
				t.Errorf("carol's join: %d, want 2xx (budgets are per user)", resp.StatusCode)
			}
		})
	}
}
