package auth_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/store"
)

func TestRegisterLoginAndProfile(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		var reg tokenPair
		resp := h.Do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]any{
			"username": "Ana.Silva", "email": "Ana@Example.COM", "password": password, "display_name": "  Ana Silva ",
		}, &reg)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("register: %d %s", resp.StatusCode, body(resp))
		}
		if reg.User.Username != "ana.silva" || reg.User.Email == nil || *reg.User.Email != "ana@example.com" || reg.User.DisplayName != "Ana Silva" {
			t.Fatalf("registered user = %+v", reg.User)
		}
		if reg.TokenType != "Bearer" || reg.ExpiresIn != 900 || reg.AccessToken == "" || reg.RefreshToken == "" {
			t.Fatalf("token pair = %+v", reg)
		}
		var me profile
		if resp := h.Do(t, http.MethodGet, "/api/v1/users/me", reg.AccessToken, nil, &me); resp.StatusCode != http.StatusOK {
			t.Fatalf("me: %d %s", resp.StatusCode, body(resp))
		}
		if diff := cmp.Diff(reg.User, me); diff != "" {
			t.Fatalf("GET /users/me differs from the registered user (-register +me):\n%s", diff)
		}
		for _, login := range []string{"ana.silva", "ANA.SILVA", "ana@example.com", " Ana@Example.com "} {
			resp, pair := h.login(t, login, password, nil)
			if resp.StatusCode != http.StatusOK || pair.User.ID != reg.User.ID || pair.User.Email == nil {
				t.Fatalf("login %q: %d %s", login, resp.StatusCode, body(resp))
			}
		}

		// The default display name is the username.
		bob := h.register(t, "bob")
		if bob.User.DisplayName != "bob" {
			t.Fatalf("default display name = %q, want bob", bob.User.DisplayName)
		}
	})
}

func TestLoginFailuresLookTheSame(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		h.register(t, "carol")
		wrong, _ := h.login(t, "carol", "not the password", nil)
		unknown, _ := h.login(t, "nobody", password, nil)
		unknownEmail, _ := h.login(t, "nobody@example.com", password, nil)
		var got []problem
		for _, resp := range []*http.Response{wrong, unknown, unknownEmail} {
			p := wantProblem(t, resp, http.StatusUnauthorized, "invalid_credentials")
			got = append(got, problem{Status: p.Status, Code: p.Code, Detail: p.Detail})
		}
		if diff := cmp.Diff(got[0], got[1]); diff != "" {
			t.Errorf("wrong password and unknown user answer differently:\n%s", diff)
		}
		if diff := cmp.Diff(got[0], got[2]); diff != "" {
			t.Errorf("wrong password and unknown email answer differently:\n%s", diff)
		}
	})
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, store.SQLite, nil)
	h.register(t, "taken")
	long := strings.Repeat("x", 65)
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
		field  string
	}{
		{"short username", map[string]any{"username": "ab", "email": "a@b.c", "password": password}, 422, "validation_failed", "body.username"},
		{"long username", map[string]any{"username": strings.Repeat("a", 33), "email": "a@b.c", "password": password}, 422, "validation_failed", "body.username"},
		{"username with dash", map[string]any{"username": "ana-silva", "email": "a@b.c", "password": password}, 422, "validation_failed", "body.username"},
		{"username with unicode", map[string]any{"username": "anä", "email": "a@b.c", "password": password}, 422, "validation_failed", "body.username"},
		{"email without at", map[string]any{"username": "ana", "email": "ana.example.com", "password": password}, 422, "validation_failed", "body.email"},
		{"email with display name", map[string]any{"username": "ana", "email": "Ana <ana@example.com>", "password": password}, 422, "validation_failed", "body.email"},
		{"email with empty domain label", map[string]any{"username": "ana", "email": "ana@example..com", "password": password}, 422, "validation_failed", "body.email"},
		{"short password", map[string]any{"username": "ana", "email": "a@b.c", "password": "1234567"}, 422, "validation_failed", "body.password"},
		{"long password", map[string]any{"username": "ana", "email": "a@b.c", "password": strings.Repeat("p", 129)}, 422, "validation_failed", "body.password"},
		{"long display name", map[string]any{"username": "ana", "email": "a@b.c", "password": password, "display_name": long}, 422, "validation_failed", "body.display_name"},
		{"blank display name", map[string]any{"username": "ana", "email": "a@b.c", "password": password, "display_name": "   "}, 422, "validation_failed", "body.display_name"},
		{"control character in display name", map[string]any{"username": "ana", "email": "a@b.c", "password": password, "display_name": "An\u0007a"}, 422, "validation_failed", "body.display_name"},
		{"bidi override in display name", map[string]any{"username": "ana", "email": "a@b.c", "password": password, "display_name": "An\u202ea"}, 422, "validation_failed", "body.display_name"},
		{"missing password", map[string]any{"username": "ana", "email": "a@b.c"}, 422, "validation_failed", "body"},
		{"username taken, other case", map[string]any{"username": "TAKEN", "email": "new@example.com", "password": password}, 409, "username_taken", ""},
		{"email taken, other case", map[string]any{"username": "fresh", "email": "Taken@Example.com", "password": password}, 409, "email_taken", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := h.Do(t, http.MethodPost, "/api/v1/auth/register", "", tt.body, nil)
			p := wantProblem(t, resp, tt.status, tt.code)
			if tt.field != "" && (len(p.Errors) == 0 || p.Errors[0].Location != tt.field) {
				t.Fatalf("errors = %+v, want one about %s", p.Errors, tt.field)
			}
		})
	}
	// Every offending field comes in one 422, whether the schema or the account rules refuse it:
	// fixing some never reveals others.
	t.Run("every field error at once", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name string
			body map[string]any
			want []string
		}{
			{"all five", map[string]any{"username": "a-", "email": "not an email", "password": "short",
				"display_name": "   ", "device_name": "Phone\u0007"}, []string{"body.device_name", "body.display_name", "body.email", "body.password", "body.username"}},
			{"email and password", map[string]any{"username": "ana", "email": "ana.example.com", "password": "short"},
				[]string{"body.email", "body.password"}},
			{"long display name and bad email", map[string]any{"username": "ana", "email": "Ana <ana@example.com>", "password": password,
				"display_name": long}, []string{"body.display_name", "body.email"}},
			{"empty email and bidi display name", map[string]any{"username": "ana", "email": "", "password": password,
				"display_name": "An\u202ea"}, []string{"body.display_name", "body.email"}},
		} {
			resp := h.Do(t, http.MethodPost, "/api/v1/auth/register", "", tt.body, nil)
			p := wantProblem(t, resp, http.StatusUnprocessableEntity, "validation_failed")
			seen := map[string]int{}
			for _, f := range p.Errors {
				seen[f.Location]++
			}
			var got []string
			for loc, n := range seen {
				got = append(got, loc)
				if n > 1 && loc != "body.username" { // the schema may refuse a username for its length and its characters
					t.Errorf("%s: %s reported %d times: %+v", tt.name, loc, n, p.Errors)
				}
			}
			sort.Strings(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s: field errors (-want +got):\n%s\n%+v", tt.name, diff, p.Errors)
			}
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest(http.MethodPost, h.URL+"/api/v1/auth/register", strings.NewReader(`{"username":`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("status = %d, want 400 or 422", resp.StatusCode)
		}
	})
}

func TestRefreshRotationAndReuseDetection(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		first := h.register(t, "dave")
		resp, second := h.refresh(t, first.RefreshToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d %s", resp.StatusCode, body(resp))
		}
		if second.RefreshToken == first.RefreshToken || second.AccessToken == "" || second.User.ID != first.User.ID || second.TokenType != "Bearer" {
			t.Fatalf("refreshed pair = %+v", second)
		}
		if s := h.status(t, http.MethodGet, "/api/v1/users/me", second.AccessToken, nil); s != http.StatusOK {
			t.Fatalf("new access token: %d", s)
		}
		resp, third := h.refresh(t, second.RefreshToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("second refresh: %d %s", resp.StatusCode, body(resp))
		}
		// The first token was rotated out two refreshes ago: presenting it is reuse.
		resp, _ = h.refresh(t, first.RefreshToken)
		wantProblem(t, resp, http.StatusUnauthorized, "refresh_token_reused")
		// The whole session is dead: its newest refresh token and its access tokens.
		resp, _ = h.refresh(t, third.RefreshToken)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
		resp = h.Do(t, http.MethodGet, "/api/v1/users/me", third.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate = %q", got)
		}

		for _, tok := range []string{"garbage", strings.Repeat("A", 43)} {
			resp, _ = h.refresh(t, tok)
			wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
		}
		resp, _ = h.refresh(t, "")
		wantProblem(t, resp, http.StatusUnprocessableEntity, "validation_failed")

		// A refresh token past its lifetime is refused.
		other := h.register(t, "erin")
		h.Clock.Advance(31 * 24 * time.Hour)
		resp, _ = h.refresh(t, other.RefreshToken)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
	})
}

func TestConcurrentRefreshHasExactlyOneWinner(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		pair := h.register(t, "frank")
		const n = 20
		var wg sync.WaitGroup
		statuses := make([]int, n)
		codes := make([]string, n)
		winners := make([]tokenPair, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var raw json.RawMessage
				resp := h.Do(t, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": pair.RefreshToken}, &raw)
				statuses[i] = resp.StatusCode
				if resp.StatusCode == http.StatusOK {
					_ = json.Unmarshal(raw, &winners[i])
				} else {
					var p problem
					_ = json.Unmarshal(raw, &p)
					codes[i] = p.Code
				}
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, s := range statuses {
			switch s {
			case http.StatusOK:
				ok++
			case http.StatusUnauthorized:
				if codes[i] != "refresh_token_reused" && codes[i] != "invalid_token" {
					t.Errorf("loser %d: code %q", i, codes[i])
				}
			default:
				t.Errorf("refresh %d: status %d", i, s)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent refreshes with one token succeeded, want exactly 1 (statuses %v)", ok, n, statuses)
		}
		// The losers presented a token that had been rotated: reuse, so the session is revoked
		// and the winner's new refresh token is dead too.
		for _, w := range winners {
			if w.RefreshToken != "" {
				resp, _ := h.refresh(t, w.RefreshToken)
				wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
			}
		}
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		pair := h.register(t, "gina")
		_, other := h.login(t, "gina", password, nil)
		if s := h.status(t, http.MethodPost, "/api/v1/auth/logout", "", map[string]string{"refresh_token": pair.RefreshToken}); s != http.StatusNoContent {
			t.Fatalf("logout: %d", s)
		}
		resp, _ := h.refresh(t, pair.RefreshToken)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
		resp = h.Do(t, http.MethodGet, "/api/v1/users/me", pair.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
		// The other session is untouched.
		if s := h.status(t, http.MethodGet, "/api/v1/users/me", other.AccessToken, nil); s != http.StatusOK {
			t.Fatalf("other session after logout: %d", s)
		}
		// Logging out again, or with a token nobody knows, is still 204.
		for _, tok := range []string{pair.RefreshToken, "never-issued"} {
			if s := h.status(t, http.MethodPost, "/api/v1/auth/logout", "", map[string]string{"refresh_token": tok}); s != http.StatusNoContent {
				t.Fatalf("logout %q: %d", tok, s)
			}
		}
		resp = h.Do(t, http.MethodPost, "/api/v1/auth/logout", "", map[string]string{}, nil)
		wantProblem(t, resp, http.StatusUnprocessableEntity, "validation_failed")

		// Logging out with a rotated-out token also kills its session.
		_, third := h.login(t, "gina", password, nil)
		_, rotated := h.refresh(t, third.RefreshToken)
		if s := h.status(t, http.MethodPost, "/api/v1/auth/logout", "", map[string]string{"refresh_token": third.RefreshToken}); s != http.StatusNoContent {
			t.Fatalf("logout with old token: %d", s)
		}
		resp, _ = h.refresh(t, rotated.RefreshToken)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
	})
}

type sessionJSON struct {
	ID         string    `json:"id"`
	DeviceName string    `json:"device_name"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	Current    bool      `json:"current"`
}

type sessionPage struct {
	Items      []sessionJSON `json:"items"`
	NextCursor string        `json:"next_cursor"`
}

func TestSessions(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		first := h.register(t, "hana")
		_, named := h.login(t, "hana", password, map[string]any{"device_name": "  Hana's phone "})
		req, _ := http.NewRequest(http.MethodPost, h.URL+"/api/v1/auth/login", strings.NewReader(`{"login":"hana","password":"`+password+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
		resp, err := h.Client().Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("login with a browser: %v %v", err, resp)
		}
		resp.Body.Close()

		var page sessionPage
		if resp := h.Do(t, http.MethodGet, "/api/v1/auth/sessions", named.AccessToken, nil, &page); resp.StatusCode != http.StatusOK {
			t.Fatalf("sessions: %d %s", resp.StatusCode, body(resp))
		}
		if len(page.Items) != 3 || page.NextCursor != "" {
			t.Fatalf("sessions = %+v", page)
		}
		devices := map[string]bool{}
		current := 0
		for _, s := range page.Items {
			devices[s.DeviceName] = true
			if s.Current {
				current++
				if s.DeviceName != "Hana's phone" {
					t.Errorf("current session is %q, want Hana's phone", s.DeviceName)
				}
			}
			if s.IP != "127.0.0.1" || s.CreatedAt.IsZero() || s.LastUsedAt.IsZero() {
				t.Errorf("session = %+v", s)
			}
		}
		if current != 1 || !devices["Firefox on Linux"] || !devices["Hana's phone"] || !devices["Go-http-client"] {
			t.Errorf("devices %v, %d current", devices, current)
		}

		// Pages of one, newest first, cover the same sessions.
		var ids []string
		cursor := ""
		for range 5 {
			var p sessionPage
			h.Do(t, http.MethodGet, "/api/v1/auth/sessions?limit=1&cursor="+cursor, named.AccessToken, nil, &p)
			for _, s := range p.Items {
				ids = append(ids, s.ID)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		want := []string{page.Items[0].ID, page.Items[1].ID, page.Items[2].ID}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("paged sessions differ:\n%s", diff)
		}
		resp = h.Do(t, http.MethodGet, "/api/v1/auth/sessions?cursor=!!", named.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusUnprocessableEntity, "validation_failed")

		// A stranger sees only their own session and cannot revoke Hana's.
		stranger := h.register(t, "stranger")
		var theirs sessionPage
		h.Do(t, http.MethodGet, "/api/v1/auth/sessions", stranger.AccessToken, nil, &theirs)
		if len(theirs.Items) != 1 || !theirs.Items[0].Current {
			t.Fatalf("stranger's sessions = %+v", theirs)
		}
		firstID := sessionOf(t, h, first.AccessToken)
		resp = h.Do(t, http.MethodDelete, "/api/v1/auth/sessions/"+firstID, stranger.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusNotFound, "not_found")
		if s := h.status(t, http.MethodGet, "/api/v1/users/me", first.AccessToken, nil); s != http.StatusOK {
			t.Fatalf("session survived a stranger's revoke? me: %d", s)
		}
		resp = h.Do(t, http.MethodDelete, "/api/v1/auth/sessions/"+theirs.Items[0].ID, named.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusNotFound, "not_found")

		// Hana revokes her first session from her phone.
		if s := h.status(t, http.MethodDelete, "/api/v1/auth/sessions/"+firstID, named.AccessToken, nil); s != http.StatusNoContent {
			t.Fatalf("revoke: %d", s)
		}
		resp = h.Do(t, http.MethodGet, "/api/v1/users/me", first.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
		resp, _ = h.refresh(t, first.RefreshToken)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
		resp = h.Do(t, http.MethodDelete, "/api/v1/auth/sessions/"+firstID, named.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusNotFound, "not_found")
		resp = h.Do(t, http.MethodDelete, "/api/v1/auth/sessions/0190a0a0-0000-7000-8000-000000000001", named.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusNotFound, "not_found")
		h.Do(t, http.MethodGet, "/api/v1/auth/sessions", named.AccessToken, nil, &page)
		if len(page.Items) != 2 {
			t.Fatalf("sessions after revoke = %d, want 2", len(page.Items))
		}

		// Anonymous callers get 401.
		resp = h.Do(t, http.MethodGet, "/api/v1/auth/sessions", "", nil, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "unauthenticated")
	})
}

// sessionOf returns the id of the session that token belongs to.
func sessionOf(t *testing.T, h *harness, token string) string {
	t.Helper()
	var page sessionPage
	h.Do(t, http.MethodGet, "/api/v1/auth/sessions", token, nil, &page)
	for _, s := range page.Items {
		if s.Current {
			return s.ID
		}
	}
	t.Fatal("no current session")
	return ""
}

func TestChangePasswordRevokesOtherSessions(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		mine := h.register(t, "ivan")
		_, other := h.login(t, "ivan", password, nil)
		const next = "a much better passphrase"

		resp := h.Do(t, http.MethodPut, "/api/v1/users/me/password", mine.AccessToken,
			map[string]string{"current_password": "wrong password", "new_password": next}, nil)
		wantProblem(t, resp, http.StatusForbidden, "invalid_credentials")
		resp = h.Do(t, http.MethodPut, "/api/v1/users/me/password", mine.AccessToken,
			map[string]string{"current_password": password, "new_password": "short"}, nil)
		wantProblem(t, resp, http.StatusUnprocessableEntity, "validation_failed")
		resp = h.Do(t, http.MethodPut, "/api/v1/users/me/password", "",
			map[string]string{"current_password": password, "new_password": next}, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "unauthenticated")

		if s := h.status(t, http.MethodPut, "/api/v1/users/me/password", mine.AccessToken,
			map[string]string{"current_password": password, "new_password": next}); s != http.StatusNoContent {
			t.Fatalf("change password: %d", s)
		}
		// This session lives on; the other is revoked.
		if s := h.status(t, http.MethodGet, "/api/v1/users/me", mine.AccessToken, nil); s != http.StatusOK {
			t.Fatalf("own session after password change: %d", s)
		}
		if resp, _ := h.refresh(t, mine.RefreshToken); resp.StatusCode != http.StatusOK {
			t.Fatalf("own refresh after password change: %d", resp.StatusCode)
		}
		resp = h.Do(t, http.MethodGet, "/api/v1/users/me", other.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
		resp, _ = h.refresh(t, other.RefreshToken)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")

		resp, _ = h.login(t, "ivan", password, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "invalid_credentials")
		if resp, _ := h.login(t, "ivan", next, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("login with the new password: %d", resp.StatusCode)
		}
	})
}

func TestProfilesNeverLeakEmails(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		me := h.register(t, "judy")
		other := h.register(t, "karl")

		var updated profile
		resp := h.Do(t, http.MethodPatch, "/api/v1/users/me", me.AccessToken,
			map[string]any{"display_name": " Judy Jones ", "bio": "Line one\nline two"}, &updated)
		if resp.StatusCode != http.StatusOK || updated.DisplayName != "Judy Jones" || updated.Bio != "Line one\nline two" || updated.Email == nil {
			t.Fatalf("patch: %d %+v", resp.StatusCode, updated)
		}
		// Fields left out stay as they are; an empty bio clears it.
		h.Do(t, http.MethodPatch, "/api/v1/users/me", me.AccessToken, map[string]any{"bio": ""}, &updated)
		if updated.DisplayName != "Judy Jones" || updated.Bio != "" {
			t.Fatalf("second patch: %+v", updated)
		}
		for name, patch := range map[string]map[string]any{
			"blank display name": {"display_name": " "},
			"long bio":           {"bio": strings.Repeat("b", 501)},
			"control in bio":     {"bio": "bell\u0007"},
			"long display name":  {"display_name": strings.Repeat("d", 65)},
		} {
			resp := h.Do(t, http.MethodPatch, "/api/v1/users/me", me.AccessToken, patch, nil)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("%s: status %d, want 422", name, resp.StatusCode)
			}
		}

		// Another user's profile: public fields only, no email key at all.
		resp = h.Do(t, http.MethodGet, "/api/v1/users/"+me.User.ID, other.AccessToken, nil, nil)
		raw := body(resp)
		if resp.StatusCode != http.StatusOK || strings.Contains(raw, "email") || strings.Contains(raw, "@example.com") {
			t.Fatalf("GET /users/{id}: %d %s", resp.StatusCode, raw)
		}
		var pub profile
		_ = json.Unmarshal([]byte(raw), &pub)
		if pub.Username != "judy" || pub.DisplayName != "Judy Jones" {
			t.Fatalf("public profile = %+v", pub)
		}
		resp = h.Do(t, http.MethodGet, "/api/v1/users/0190a0a0-0000-7000-8000-000000000001", other.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusNotFound, "not_found")
		resp = h.Do(t, http.MethodGet, "/api/v1/users/"+me.User.ID, "", nil, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "unauthenticated")
	})
}

type userPage struct {
	Items      []profile `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

func TestSearchUsers(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		caller := h.register(t, "searcher")
		for _, u := range []string{"ann", "anna", "annette", "bob", "a_b", "axb", "zed"} {
			h.register(t, u)
		}
		var zed profile
		h.Do(t, http.MethodPatch, "/api/v1/users/me", h.mustLogin(t, "zed"), map[string]any{"display_name": "Ännie Zed"}, &zed)

		search := func(q string, extra string) (userPage, string) {
			var p userPage
			resp := h.Do(t, http.MethodGet, "/api/v1/users?q="+q+extra, caller.AccessToken, nil, nil)
			raw := body(resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("search %q: %d %s", q, resp.StatusCode, raw)
			}
			_ = json.Unmarshal([]byte(raw), &p)
			return p, raw
		}
		names := func(p userPage) []string {
			out := []string{}
			for _, u := range p.Items {
				out = append(out, u.Username)
			}
			return out
		}
		for _, tt := range []struct {
			q    string
			want []string
		}{
			{"ann", []string{"ann", "anna", "annette"}},
			{"ANN", []string{"ann", "anna", "annette"}},
			{"a_", []string{"a_b"}},         // '_' is literal, not a wildcard
			{"a%25", []string{}},            // neither is '%'
			{"%C3%A4nn", []string{"zed"}},   // display name, Unicode lower-cased
			{"%C3%84NNIE", []string{"zed"}}, // the same, upper case
			{"q", []string{}},
		} {
			p, raw := search(tt.q, "")
			if diff := cmp.Diff(tt.want, names(p)); diff != "" {
				t.Errorf("search %q (-want +got):\n%s", tt.q, diff)
			}
			if strings.Contains(raw, "email") || strings.Contains(raw, "@") {
				t.Errorf("search %q leaks emails: %s", tt.q, raw)
			}
		}

		// Pagination walks every match once, in order.
		var got []string
		cursor := ""
		for range 10 {
			p, _ := search("a", "&limit=2&cursor="+cursor)
			got = append(got, names(p)...)
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if diff := cmp.Diff([]string{"a_b", "ann", "anna", "annette", "axb"}, got); diff != "" {
			t.Errorf("paged search (-want +got):\n%s", diff)
		}

		for _, bad := range []string{"", "?q=", "?q=a&limit=0", "?q=a&limit=201", "?q=a&cursor=%21%21", "?q=" + strings.Repeat("a", 65)} {
			resp := h.Do(t, http.MethodGet, "/api/v1/users"+bad, caller.AccessToken, nil, nil)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("search %q: status %d, want 422: %s", bad, resp.StatusCode, body(resp))
			}
		}
	})
}

// mustLogin signs in and returns an access token.
func (h *harness) mustLogin(t testing.TB, username string) string {
	t.Helper()
	resp, pair := h.login(t, username, password, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d", username, resp.StatusCode)
	}
	return pair.AccessToken
}

type adminUser struct {
	profile
	Role string `json:"role"`
}

func TestAdminEndpoint(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, nil)
		boss := h.register(t, "boss")
		user := h.register(t, "worker")

		resp := h.Do(t, http.MethodGet, "/api/v1/admin/users", user.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusForbidden, "forbidden")
		resp = h.Do(t, http.MethodGet, "/api/v1/admin/users", "", nil, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "unauthenticated")

		h.setAdmin(t, "boss", true)
		// Running sessions pick up the role within the session cache TTL.
		h.Clock.Advance(6 * time.Second)
		var page struct {
			Items      []adminUser `json:"items"`
			NextCursor string      `json:"next_cursor"`
		}
		if resp := h.Do(t, http.MethodGet, "/api/v1/admin/users", boss.AccessToken, nil, &page); resp.StatusCode != http.StatusOK {
			t.Fatalf("admin list: %d %s", resp.StatusCode, body(resp))
		}
		if len(page.Items) != 2 || page.Items[0].Username != "boss" || page.Items[0].Role != "admin" || page.Items[1].Role != "user" ||
			page.Items[1].Email == nil || *page.Items[1].Email != "worker@example.com" {
			t.Fatalf("admin list = %+v", page)
		}
		var one struct {
			Items      []adminUser `json:"items"`
			NextCursor string      `json:"next_cursor"`
		}
		h.Do(t, http.MethodGet, "/api/v1/admin/users?limit=1", boss.AccessToken, nil, &one)
		if len(one.Items) != 1 || one.NextCursor == "" {
			t.Fatalf("first page = %+v", one)
		}
		h.Do(t, http.MethodGet, "/api/v1/admin/users?limit=1&cursor="+one.NextCursor, boss.AccessToken, nil, &one)
		if len(one.Items) != 1 || one.Items[0].Username != "worker" || one.NextCursor != "" {
			t.Fatalf("second page = %+v", one)
		}

		h.setAdmin(t, "boss", false)
		h.Clock.Advance(6 * time.Second)
		resp = h.Do(t, http.MethodGet, "/api/v1/admin/users", boss.AccessToken, nil, nil)
		wantProblem(t, resp, http.StatusForbidden, "forbidden")
	})
}

func TestAccessTokenExpiry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, store.SQLite, nil)
	pair := h.register(t, "lena")
	h.Clock.Advance(15*time.Minute + 10*time.Second)
	resp := h.Do(t, http.MethodGet, "/api/v1/users/me", pair.AccessToken, nil, nil)
	wantProblem(t, resp, http.StatusUnauthorized, "token_expired")
	resp, fresh := h.refresh(t, pair.RefreshToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh after expiry: %d", resp.StatusCode)
	}
	if s := h.status(t, http.MethodGet, "/api/v1/users/me", fresh.AccessToken, nil); s != http.StatusOK {
		t.Fatalf("fresh token: %d", s)
	}
	resp = h.Do(t, http.MethodGet, "/api/v1/users/me", "not.a.jwt", nil, nil)
	wantProblem(t, resp, http.StatusUnauthorized, "invalid_token")
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, store.SQLite, withLimits(10, 1000, 1000))
		for i := range 10 {
			resp, _ := h.login(t, fmt.Sprintf("user%d", i), password, nil)
			wantProblem(t, resp, http.StatusUnauthorized, "invalid_credentials")
		}
		resp, _ := h.login(t, "someone.else", password, nil)
		wantProblem(t, resp, http.StatusTooManyRequests, "rate_limited")
		if got := resp.Header.Get("Retry-After"); got != "6" {
			t.Fatalf("Retry-After = %q, want 6", got)
		}
		// Registration has its own budget; it runs out the same way.
		for i := range 10 {
			h.register(t, fmt.Sprintf("new%d", i))
		}
		resp = h.Do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]any{"username": "late", "email": "late@example.com", "password": password}, nil)
		wantProblem(t, resp, http.StatusTooManyRequests, "rate_limited")
		h.Clock.Advance(6 * time.Second)
		if resp, _ := h.login(t, "new1", password, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("login after waiting: %d", resp.StatusCode)
		}
	})
	t.Run("per account and address", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, store.SQLite, withLimits(1000, 10, 1000))
		target := h.register(t, "target")
		h.register(t, "bystander")
		for range 5 {
			h.login(t, "target", "wrong password", nil)
			h.login(t, "target@example.com", "wrong password", nil) // the email counts for the same account
		}
		resp, _ := h.login(t, "target", password, nil)
		wantProblem(t, resp, http.StatusTooManyRequests, "rate_limited")
		if resp.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		// Changing the password counts against the account and address too.
		resp = h.Do(t, http.MethodPut, "/api/v1/users/me/password", target.AccessToken,
			map[string]string{"current_password": password, "new_password": "another password"}, nil)
		wantProblem(t, resp, http.StatusTooManyRequests, "rate_limited")
		if resp, _ := h.login(t, "bystander", password, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("other account: %d", resp.StatusCode)
		}
		// Unknown names are limited like accounts, so their answers stay alike.
		for range 10 {
			h.login(t, "ghost", password, nil)
		}
		resp, _ = h.login(t, "ghost", password, nil)
		wantProblem(t, resp, http.StatusTooManyRequests, "rate_limited")
	})
}

// lockedBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	h := newLoggedHarness(t, store.SQLite, nil, &logs)
	pair := h.register(t, "quiet")
	h.login(t, "quiet", "wrong password 1", nil)
	_, second := h.login(t, "quiet@example.com", password, nil)
	_, rotated := h.refresh(t, second.RefreshToken)
	h.refresh(t, second.RefreshToken) // reuse: logged as a warning
	h.Do(t, http.MethodPut, "/api/v1/users/me/password", pair.AccessToken,
		map[string]string{"current_password": password, "new_password": "new secret words"}, nil)
	h.Do(t, http.MethodPost, "/api/v1/auth/logout", "", map[string]string{"refresh_token": pair.RefreshToken}, nil)

	out := logs.String()
	if !strings.Contains(out, "refresh token reuse") {
		t.Fatalf("the reuse warning is missing; is the log captured? %q", out)
	}
	for name, secret := range map[string]string{
		"password": password, "wrong password": "wrong password 1", "new password": "new secret words",
		"access token": pair.AccessToken, "refresh token": pair.RefreshToken, "rotated refresh token": rotated.RefreshToken,
		"reused refresh token": second.RefreshToken, "refresh token hash": sha256Hex(second.RefreshToken),
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains the %s", name)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
