package auth_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"

	"github.com/nerutalk/nerutalk/internal/store"
)

// TestHostileInput: NUL bytes, control characters and malformed ids are refused at the edge with
// a 4xx validation failure naming the field, the same on SQLite (which would store them) and on
// PostgreSQL (which fails on NUL: a 500 before), the unauthenticated sign-in included.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		u := h.register(t, "ana")
		nul := url.PathEscape("\x00")
		for _, tc := range []struct {
			method, path, token string
			body                any
			field               string
		}{
			{http.MethodPost, "/api/v1/auth/login", "", map[string]any{"login": "ana\x00", "password": password}, "body.login"},
			{http.MethodPost, "/api/v1/auth/login", "", map[string]any{"login": "\x00@example.com", "password": password}, "body.login"},
			{http.MethodPost, "/api/v1/auth/login", "", map[string]any{"login": "ana", "password": password, "device_name": "a\x00"}, "body.device_name"},
			{http.MethodPost, "/api/v1/auth/register", "", map[string]any{"username": "bob", "email": "bob@example.com", "password": password, "display_name": "B\x00b"}, "body.display_name"},
			{http.MethodPost, "/api/v1/auth/register", "", map[string]any{"username": "bo\x00b", "email": "bob@example.com", "password": password}, "body.username"},
			{http.MethodPost, "/api/v1/auth/register", "", map[string]any{"username": "bob", "email": "b\x00b@example.com", "password": password}, "body.email"},
			{http.MethodGet, "/api/v1/users/" + nul, u.AccessToken, nil, "path.id"},
			{http.MethodGet, "/api/v1/users/not-an-id", u.AccessToken, nil, "path.id"},
			{http.MethodDelete, "/api/v1/auth/sessions/" + nul, u.AccessToken, nil, "path.id"},
			{http.MethodDelete, "/api/v1/auth/sessions/not-an-id", u.AccessToken, nil, "path.id"},
			{http.MethodGet, "/api/v1/users?q=" + url.QueryEscape("an\x00"), u.AccessToken, nil, "query.q"},
			{http.MethodGet, "/api/v1/users?q=an&cursor=" + base64.RawURLEncoding.EncodeToString([]byte("u:\x00")), u.AccessToken, nil, "query.cursor"},
			{http.MethodPatch, "/api/v1/users/me", u.AccessToken, map[string]any{"display_name": "A\x00"}, "body.display_name"},
			{http.MethodPatch, "/api/v1/users/me", u.AccessToken, map[string]any{"display_name": "ad\u200bmin"}, "body.display_name"},
			{http.MethodPatch, "/api/v1/users/me", u.AccessToken, map[string]any{"bio": "bell\a"}, "body.bio"},
		} {
			var p struct {
				Code   string `json:"code"`
				Errors []struct {
					Location string `json:"location"`
				} `json:"errors"`
			}
			resp := h.Do(t, tc.method, tc.path, tc.token, tc.body, &p)
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || p.Code != "validation_failed" {
				t.Errorf("%s %s %v: %d %s, want 4xx validation_failed", tc.method, tc.path, tc.body, resp.StatusCode, p.Code)
				continue
			}
			if len(p.Errors) == 0 || p.Errors[0].Location != tc.field {
				t.Errorf("%s %s %v: errors %+v, want the field %s named", tc.method, tc.path, tc.body, p.Errors, tc.field)
			}
		}
	})
}
