package auth_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/store"
)

// TestOnSessionsRevoked: every way a session ends (logout, revocation, refresh-token reuse, a
// password change) tells the hook which sessions of which user, so push can drop their devices.
func TestOnSessionsRevoked(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		var mu sync.Mutex
		var calls []string // "user:session"
		h := newHarness(t, d, func(o *auth.Options) {
			o.OnSessionsRevoked = func(_ context.Context, userID string, ids []string) {
				mu.Lock()
				defer mu.Unlock()
				for _, id := range ids {
					calls = append(calls, userID+":"+id)
				}
			}
		})
		took := func() []string {
			mu.Lock()
			defer mu.Unlock()
			out := calls
			calls = nil
			return out
		}
		first := h.register(t, "revokee")
		uid := first.User.ID
		sessions := func(token string) []string {
			var page sessionPage
			if resp := h.Do(t, http.MethodGet, "/api/v1/auth/sessions", token, nil, &page); resp.StatusCode != http.StatusOK {
				t.Fatalf("sessions: %d %s", resp.StatusCode, body(resp))
			}
			var ids []string
			for _, s := range page.Items {
				ids = append(ids, s.ID)
			}
			return ids
		}
		only := func(token string) string {
			ids := sessions(token)
			if len(ids) != 1 {
				t.Fatalf("sessions %v", ids)
			}
			return ids[0]
		}
		sid := only(first.AccessToken)
		// Logout.
		if s := h.status(t, http.MethodPost, "/api/v1/auth/logout", "", map[string]string{"refresh_token": first.RefreshToken}); s != http.StatusNoContent {
			t.Fatalf("logout: %d", s)
		}
		if got := took(); !slices.Equal(got, []string{uid + ":" + sid}) {
			t.Fatalf("logout: hook saw %v", got)
		}
		// DELETE /auth/sessions/{id}.
		_, a := h.login(t, "revokee", password, nil)
		_, b := h.login(t, "revokee", password, nil)
		ids := sessions(a.AccessToken)
		if len(ids) != 2 {
			t.Fatalf("sessions %v", ids)
		}
		if s := h.status(t, http.MethodDelete, "/api/v1/auth/sessions/"+ids[0], b.AccessToken, nil); s != http.StatusNoContent {
			t.Fatalf("revoke: %d", s)
		}
		if got := took(); !slices.Equal(got, []string{uid + ":" + ids[0]}) {
			t.Fatalf("revoke: hook saw %v", got)
		}
		// Refresh-token reuse.
		_, c := h.login(t, "revokee", password, nil)
		if resp, _ := h.refresh(t, c.RefreshToken); resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d", resp.StatusCode)
		}
		if resp, _ := h.refresh(t, c.RefreshToken); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("reuse: %d", resp.StatusCode)
		}
		if got := took(); len(got) != 1 {
			t.Fatalf("reuse: hook saw %v", got)
		}
		// A password change revokes the other sessions.
		_, e := h.login(t, "revokee", password, nil)
		if s := h.status(t, http.MethodPut, "/api/v1/users/me/password", e.AccessToken,
			map[string]string{"current_password": password, "new_password": "another fine password"}); s != http.StatusNoContent {
			t.Fatalf("password: %d", s)
		}
		if got := took(); len(got) != 1 { // b's session (a's and c's are revoked already)
			t.Fatalf("password change: hook saw %v", got)
		}
	})
}
