package auth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	imgpng "image/png"
	"io"
	"net/http"
	"net/netip"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// These tests run the whole node (server.New with the default configuration, cheap argon2) to check
// how the accounts capability is wired: the Authenticator, the rate limits that
// NERUTALK_RATE_LIMITS switches, the media package's avatar store and the OpenAPI document.

func TestServerWiring(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, nil)
			u := n.Register(t, "wired")
			var me profile
			if resp := n.Do(t, http.MethodGet, "/api/v1/users/me", u.AccessToken, nil, &me); resp.StatusCode != http.StatusOK || me.ID != u.ID {
				t.Fatalf("me: %d %+v", resp.StatusCode, me)
			}
			// The token of one node's secret is valid on the node; a made-up one is not.
			resp := n.Do(t, http.MethodGet, "/api/v1/users/me", u.AccessToken+"x", nil, nil)
			wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")

			// The media package's avatar store is wired: a real image is accepted, re-encoded and
			// served; a broken one is refused with the store's own 4xx.
			var withAvatar profile
			resp = upload(t, n, u.AccessToken, map[string][]byte{"file": realPNG(t)})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("avatar upload: %d %s", resp.StatusCode, body(resp))
			}
			_ = json.Unmarshal([]byte(body(resp)), &withAvatar)
			if withAvatar.AvatarURL == "" || withAvatar.Email == nil {
				t.Fatalf("profile after upload = %+v", withAvatar)
			}
			resp = upload(t, n, u.AccessToken, map[string][]byte{"file": png(100)})
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Fatalf("broken image: %d %s", resp.StatusCode, body(resp))
			}
			var cleared profile
			if resp := n.Do(t, http.MethodDelete, "/api/v1/users/me/avatar", u.AccessToken, nil, &cleared); resp.StatusCode != http.StatusOK || cleared.AvatarURL != "" {
				t.Fatalf("avatar delete: %d %+v", resp.StatusCode, cleared)
			}
			resp = upload(t, n, "", map[string][]byte{"file": realPNG(t)})
			wantProblem(t, resp, http.StatusUnauthorized, "unauthenticated")

			resp = n.Do(t, http.MethodGet, "/api/v1/admin/users", u.AccessToken, nil, nil)
			wantProblem(t, resp, http.StatusForbidden, "forbidden")
		})
	}
}

// realPNG encodes a small gradient as PNG.
func realPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := imgpng.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestServerRateLimitsAreOnByDefault(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	if !n.Config.RateLimits {
		t.Skip("the test configuration switches rate limits off; nothing to check here")
	}
	var last *http.Response
	for i := range 11 {
		last = n.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"login": fmt.Sprint("nobody", i), "password": password}, nil)
	}
	wantProblem(t, last, http.StatusTooManyRequests, "rate_limited")
	if last.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}

	off := servertest.New(t, store.SQLite, func(c *config.Config) { c.RateLimits = false })
	for i := range 15 {
		resp := off.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"login": fmt.Sprint("nobody", i), "password": password}, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_credentials")
	}
}

func TestOpenAPIDocumentsTheAccountsCapability(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                            `json:"operationId"`
			Responses   map[string]any                    `json:"responses"`
			Security    []map[string][]any                `json:"security"`
			RequestBody *struct{ Content map[string]any } `json:"requestBody"`
		} `json:"paths"`
	}
	if resp := n.Do(t, http.MethodGet, "/openapi.json", "", nil, &doc); resp.StatusCode != http.StatusOK {
		t.Fatalf("openapi: %d", resp.StatusCode)
	}
	for _, tt := range []struct {
		method, path, id string
		statuses         []string
		secured          bool
	}{
		{"post", "/api/v1/auth/register", "register", []string{"201", "409", "422", "429"}, false},
		{"post", "/api/v1/auth/login", "login", []string{"200", "401", "429"}, false},
		{"post", "/api/v1/auth/refresh", "refresh", []string{"200", "401"}, false},
		{"post", "/api/v1/auth/logout", "logout", []string{"204"}, false},
		{"get", "/api/v1/auth/sessions", "listSessions", []string{"200", "401"}, true},
		{"delete", "/api/v1/auth/sessions/{id}", "revokeSession", []string{"204", "404"}, true},
		{"get", "/api/v1/users/me", "getMe", []string{"200"}, true},
		{"patch", "/api/v1/users/me", "updateMe", []string{"200", "422"}, true},
		{"put", "/api/v1/users/me/password", "changePassword", []string{"204", "403"}, true},
		{"put", "/api/v1/users/me/avatar", "putAvatar", []string{"200", "413", "415", "503"}, true},
		{"delete", "/api/v1/users/me/avatar", "deleteAvatar", []string{"200"}, true},
		{"get", "/api/v1/users/{id}", "getUser", []string{"200", "404"}, true},
		{"get", "/api/v1/users", "searchUsers", []string{"200"}, true},
		{"get", "/api/v1/admin/users", "adminListUsers", []string{"200", "401", "403"}, true},
	} {
		op, ok := doc.Paths[tt.path][tt.method]
		if !ok || op.OperationID != tt.id {
			t.Errorf("%s %s: operation %q missing (got %q)", tt.method, tt.path, tt.id, op.OperationID)
			continue
		}
		for _, s := range tt.statuses {
			if _, ok := op.Responses[s]; !ok {
				t.Errorf("%s: response %s not documented", tt.id, s)
			}
		}
		// An empty requirement object ({}) documents an anonymous operation.
		secured := false
		for _, req := range op.Security {
			secured = secured || len(req) > 0
		}
		if tt.secured != secured {
			t.Errorf("%s: secured = %v, want %v", tt.id, secured, tt.secured)
		}
	}
	avatar := doc.Paths["/api/v1/users/me/avatar"]["put"]
	if avatar.RequestBody == nil || avatar.RequestBody.Content["multipart/form-data"] == nil {
		b, _ := json.Marshal(avatar.RequestBody)
		t.Errorf("avatar upload body = %s, want multipart/form-data", b)
	}
}

// TestServerBehindProxy: behind a load balancer every connection comes from the balancer's
// address. With NERUTALK_TRUSTED_PROXIES naming it, the per-address sign-in limits and the
// sessions' address follow the client that X-Forwarded-For names; without, the header is
// ignored, so a client cannot dodge its address's limit by writing one.
func TestServerBehindProxy(t *testing.T) {
	t.Parallel()
	login := func(t *testing.T, n *servertest.Node, user, pw, xff string) *http.Response {
		t.Helper()
		b, _ := json.Marshal(map[string]string{"login": user, "password": pw})
		req, err := http.NewRequest(http.MethodPost, n.URL+"/api/v1/auth/login", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := n.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		return resp
	}
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			t.Run("trusted", func(t *testing.T) {
				t.Parallel()
				n := servertest.New(t, d, func(c *config.Config) {
					c.RateLimits = true
					c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
				})
				u := n.Register(t, "proxied")
				// An attacker's client address reaches its own limit...
				for range 10 {
					resp := login(t, n, u.Username, "wrong password", "198.51.100.7, 127.0.0.2")
					wantProblem(t, resp, http.StatusUnauthorized, "invalid_credentials")
				}
				wantProblem(t, login(t, n, u.Username, "wrong password", "198.51.100.7"), http.StatusTooManyRequests, "rate_limited")
				// ...and the owner, behind the same balancer, is another client: not refused.
				resp := login(t, n, u.Username, password, "203.0.113.5")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("owner from another client address: %d %s", resp.StatusCode, body(resp))
				}
				var pair struct {
					AccessToken string `json:"access_token"`
				}
				_ = json.Unmarshal([]byte(body(resp)), &pair)
				var sessions struct {
					Items []struct {
						IP string `json:"ip"`
					} `json:"items"`
				}
				n.Do(t, http.MethodGet, "/api/v1/auth/sessions", pair.AccessToken, nil, &sessions)
				found := false
				for _, s := range sessions.Items {
					found = found || s.IP == "203.0.113.5"
				}
				if !found {
					t.Fatalf("no session records the client address 203.0.113.5: %+v", sessions.Items)
				}
			})
			t.Run("untrusted", func(t *testing.T) {
				t.Parallel()
				n := servertest.New(t, d, func(c *config.Config) { c.RateLimits = true })
				// Every attempt names another address; all come from the one real peer.
				var last *http.Response
				for i := range 11 {
					last = login(t, n, fmt.Sprint("nobody", i), password, fmt.Sprintf("198.51.100.%d", i))
				}
				wantProblem(t, last, http.StatusTooManyRequests, "rate_limited")
			})
		})
	}
}
