package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// checkRateLimited fails unless resp is 429 rate_limited with a positive Retry-After.
func checkRateLimited(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	var p struct{ Code string }
	_ = json.Unmarshal(body, &p)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || p.Code != "rate_limited" || err != nil || retry < 1 {
		t.Fatalf("%s: %d %q Retry-After %q, want 429 rate_limited with Retry-After (%s)",
			what, resp.StatusCode, p.Code, resp.Header.Get("Retry-After"), body)
	}
}

// abuseNodes are the setups the limits are tested on: one node, and two nodes sharing Redis
// (alternating requests between them must use up the one budget).
func abuseNodes(t *testing.T, shared bool, mutate func(*config.Config)) (a, b *servertest.Node) {
	t.Helper()
	if !shared {
		a = servertest.New(t, store.SQLite, mutate)
		return a, a
	}
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	a = servertest.New(t, store.Postgres, func(c *config.Config) {
		mutate(c)
		c.RedisURL, c.RedisPrefix = redisURL, prefix
	})
	b = servertest.New(t, store.Postgres, func(c *config.Config) {
		mutate(c)
		c.DatabaseURL, c.RedisURL, c.RedisPrefix = a.Config.DatabaseURL, redisURL, prefix
	})
	return a, b
}

// A session refreshes NERUTALK_REFRESHES_PER_MINUTE times, then gets 429 rate_limited with
// Retry-After (its token still valid: the refusal comes before the transaction); another session
// of the same user and another user are not affected. With Redis the budget is shared by the nodes.
func TestRefreshRateLimitPerSession(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		shared bool
	}{{"one node", false}, {"two nodes sharing Redis", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, b := abuseNodes(t, c.shared, func(c *config.Config) { c.RefreshesPerMinute = 3 })
			refresh := func(n *servertest.Node, token string) (*http.Response, string) {
				var out struct {
					RefreshToken string `json:"refresh_token"`
				}
				resp := n.Do(t, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": token}, &out)
				return resp, out.RefreshToken
			}
			abuser := a.Register(t, "looper")
			token := abuser.RefreshToken
			for i := range 3 {
				n := a
				if i%2 == 1 {
					n = b
				}
				resp, next := refresh(n, token)
				if resp.StatusCode != http.StatusOK || next == "" {
					t.Fatalf("refresh %d: status %d, want 200", i+1, resp.StatusCode)
				}
				token = next
			}
			for _, n := range []*servertest.Node{a, b} {
				resp, _ := refresh(n, token)
				checkRateLimited(t, "refresh over the budget", resp)
			}
			// Another session of the same user has its own budget.
			var login struct {
				RefreshToken string `json:"refresh_token"`
			}
			if resp := a.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"login": "looper", "password": "correct horse battery"}, &login); resp.StatusCode != http.StatusOK {
				t.Fatalf("login: status %d", resp.StatusCode)
			}
			if resp, _ := refresh(b, login.RefreshToken); resp.StatusCode != http.StatusOK {
				t.Errorf("another session's refresh: status %d, want 200", resp.StatusCode)
			}
			// So has another user.
			other := a.Register(t, "bystander")
			if resp, _ := refresh(b, other.RefreshToken); resp.StatusCode != http.StatusOK {
				t.Errorf("another user's refresh: status %d, want 200", resp.StatusCode)
			}
			// An unknown token is still 401, not 429 (nothing to count it against).
			if resp, _ := refresh(a, strings.Repeat("x", 43)); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("unknown token: status %d, want 401", resp.StatusCode)
			}
		})
	}
}

// A user opens NERUTALK_WS_CONNECTS_PER_MINUTE/3 WebSockets in a burst (closing each), then the
// next upgrade is refused with 429 rate_limited and Retry-After before upgrading; another user
// still connects. With Redis the budget is shared by the nodes.
func TestWSConnectRateLimitPerUser(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		shared bool
	}{{"one node", false}, {"two nodes sharing Redis", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// 6 a minute: bursts of 2, then one every 10 s.
			a, b := abuseNodes(t, c.shared, func(c *config.Config) { c.WSConnectsPerMinute = 6 })
			churner := a.Register(t, "churner")
			for i := range 2 {
				n := a
				if i%2 == 1 {
					n = b
				}
				ws, _, err := dialWS(n, churner.AccessToken)
				if err != nil {
					t.Fatalf("connect %d: %v", i+1, err)
				}
				ws.Close(websocket.StatusNormalClosure, "")
			}
			for _, n := range []*servertest.Node{a, b} {
				expectUpgradeRateLimited(t, "connect over the budget", n, churner.AccessToken)
			}
			bystander := a.Register(t, "steady")
			ws, _, err := dialWS(b, bystander.AccessToken)
			if err != nil {
				t.Fatalf("another user's connect: %v, want an upgrade", err)
			}
			ws.Close(websocket.StatusNormalClosure, "")
		})
	}
}

// TestRequestBudgetPerUser: every authenticated request of a user on a node counts against one
// budget (NERUTALK_REQUESTS_PER_SECOND, bursts of four times it): REST reads, file downloads and
// WebSocket upgrades alike are 429 rate_limited with Retry-After once it is spent, before their
// handler runs, while another user is not affected. Rate limits off lift it.
func TestRequestBudgetPerUser(t *testing.T) {
	t.Parallel()
	const perSecond = 5 // bursts of 20
	n := servertest.New(t, store.SQLite, func(c *config.Config) {
		c.RateLimits = true
		c.RequestsPerSecond = perSecond
	})
	reader := n.Register(t, "reader")
	bystander := n.Register(t, "bystander")
	fileID := uploadFile(t, n, reader.AccessToken)
	// Spend what is left of the burst on reads (the upload and sign-up took some), then the
	// budget refuses every kind of authenticated request.
	servertest.ExpectRateLimited(t, 4*perSecond-3, 4*perSecond+3, func(int) *http.Response {
		return n.Do(t, http.MethodGet, "/api/v1/chats", reader.AccessToken, nil, nil)
	})
	for _, path := range []string{"/api/v1/users/me", "/api/v1/files/" + fileID} {
		checkRateLimited(t, "GET "+path, n.Do(t, http.MethodGet, path, reader.AccessToken, nil, nil))
	}
	expectUpgradeRateLimited(t, "WebSocket upgrade over the budget", n, reader.AccessToken)
	if resp := n.Do(t, http.MethodGet, "/api/v1/users/me", bystander.AccessToken, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("another user's request: %d, want 200", resp.StatusCode)
	}

	off := servertest.New(t, store.SQLite, func(c *config.Config) {
		c.RateLimits = false
		c.RequestsPerSecond = perSecond
	})
	u := off.Register(t, "unlimited")
	for i := range 10 * perSecond {
		if resp := off.Do(t, http.MethodGet, "/api/v1/users/me", u.AccessToken, nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("rate limits off, request %d: %d", i, resp.StatusCode)
		}
	}
}

// dialWS opens a WebSocket to node n with token (in the query, as browsers do).
func dialWS(n *servertest.Node, token string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+"/api/v1/ws?token="+token, nil)
}

// expectUpgradeRateLimited fails unless a WebSocket upgrade to n with token is refused with 429
// rate_limited and Retry-After.
func expectUpgradeRateLimited(t *testing.T, what string, n *servertest.Node, token string) {
	t.Helper()
	ws, resp, err := dialWS(n, token)
	if err == nil {
		ws.Close(websocket.StatusNormalClosure, "")
		t.Fatalf("%s: upgraded, want 429", what)
	}
	if resp == nil {
		t.Fatalf("%s: %v, want a 429 answer", what, err)
	}
	checkRateLimited(t, what, resp)
}
