package chat_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
)

// TestE2EPerUserRateLimits: creating groups (NERUTALK_GROUPS_PER_MINUTE) and chat writes over
// REST, sends and read and delivered marks sharing one budget (at the WebSocket's frame rate,
// NERUTALK_WS_FRAMES_PER_SECOND with bursts of twice that) are limited per user: over the limit 429 rate_limited with Retry-After, while another user keeps
// a budget of their own. With Redis two nodes share one budget. (No timing assertion: the test
// sends until refused, at most far more than the burst.)
func TestE2EPerUserRateLimits(t *testing.T) {
	t.Parallel()
	type limit struct {
		name   string
		mutate func(*config.Config)
		burst  int // events allowed at once
		// maxAllowed, if not 0, is the most actions that may pass before one is refused (the
		// burst, with room for what refills while the test runs).
		maxAllowed int
		// act does one limited action of user on node n (i: its rank) and returns status and body.
		act func(t *testing.T, n *servertest.Node, token string, fixture map[string]string, i int) *http.Response
	}
	limits := []limit{
		{
			name: "groups per minute", burst: 3,
			mutate: func(c *config.Config) { c.GroupsPerMinute = 3 },
			act: func(t *testing.T, n *servertest.Node, token string, f map[string]string, i int) *http.Response {
				return n.Do(t, http.MethodPost, "/api/v1/chats", token,
					map[string]any{"type": "group", "title": fmt.Sprint("g", i), "member_ids": []string{f["peer"]}}, nil)
			},
		},
		{
			name: "REST sends at the WebSocket frame rate", burst: 2,
			mutate: func(c *config.Config) { c.WSFramesPerSecond = 1 },
			act: func(t *testing.T, n *servertest.Node, token string, f map[string]string, i int) *http.Response {
				return n.Do(t, http.MethodPost, "/api/v1/chats/"+f["chat"]+"/messages", token,
					map[string]any{"client_id": fmt.Sprint("c", i, "-", token[len(token)-8:]), "text": "hi"}, nil)
			},
		},
		{
			// Every chat write over REST reaches every member: they share the send budget.
			// Sends alone would pass 11 actions before one is refused (a send is every third).
			name: "REST read and delivered marks and sends, one budget", burst: 4, maxAllowed: 7,
			mutate: func(c *config.Config) { c.WSFramesPerSecond = 2 },
			act: func(t *testing.T, n *servertest.Node, token string, f map[string]string, i int) *http.Response {
				switch i % 3 {
				case 0:
					return n.Do(t, http.MethodPost, "/api/v1/chats/"+f["chat"]+"/read", token, map[string]any{"seq": 0}, nil)
				case 1:
					return n.Do(t, http.MethodPost, "/api/v1/chats/"+f["chat"]+"/delivered", token, map[string]any{"seq": 0}, nil)
				}
				return n.Do(t, http.MethodPost, "/api/v1/chats/"+f["chat"]+"/messages", token,
					map[string]any{"client_id": fmt.Sprint("c", i, "-", token[len(token)-8:]), "text": "hi"}, nil)
			},
		},
	}
	for _, l := range limits {
		for _, dep := range servertest.Deployments() {
			t.Run(l.name+"/"+dep.Name, func(t *testing.T) {
				t.Parallel()
				nodes := dep.Start(t, l.mutate)
				alice, bob := nodes[0].Register(t, "alice"), nodes[0].Register(t, "bob")
				var g struct {
					ID string `json:"id"`
				}
				if resp := nodes[0].Do(t, http.MethodPost, "/api/v1/chats", alice.AccessToken,
					map[string]any{"type": "direct", "member_ids": []string{bob.ID}}, &g); resp.StatusCode != http.StatusCreated {
					t.Fatalf("direct chat: %d", resp.StatusCode)
				}
				fixture := map[string]string{"peer": bob.ID, "chat": g.ID}
				servertest.ExpectRateLimited(t, l.burst, l.maxAllowed, func(i int) *http.Response {
					return l.act(t, nodes[i%len(nodes)], alice.AccessToken, fixture, i)
				})
				if resp := l.act(t, nodes[0], bob.AccessToken, fixture, 0); resp.StatusCode >= 300 {
					t.Errorf("another user: status %d, want 2xx (budgets are per user)", resp.StatusCode)
				}
			})
		}
	}
}
