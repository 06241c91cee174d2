package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
)

// Caller is the one authentication path: the header first, ?token= only where the caller passes
// it, one error mapping.
func TestCaller(t *testing.T) {
	t.Parallel()
	expiredPrincipal := func(context.Context, string) (identity.Principal, error) {
		return identity.Principal{UserID: "u1", ExpiresAt: time.Now().Add(-time.Second)}, nil
	}
	noUser := func(context.Context, string) (identity.Principal, error) { return identity.Principal{}, nil }
	tests := []struct {
		name          string
		auth          httpapi.Authenticator
		header, query string
		user          string // on success
		status        int    // of the error's problem
		code          string
		challenge     string // WWW-Authenticate; "" = none
	}{
		{"header", fakeAuth, "Bearer user", "", "u1", 0, "", ""},
		{"query where allowed", fakeAuth, "", "user", "u1", 0, "", ""},
		{"the header wins", fakeAuth, "Bearer admin", "user", "a1", 0, "", ""},
		{"nothing", fakeAuth, "", "", "", 401, "unauthenticated", `Bearer realm="nerutalk"`},
		{"no authenticator", nil, "Bearer user", "", "", 401, "unauthenticated", `Bearer realm="nerutalk"`},
		{"refused", fakeAuth, "", "forged", "", 401, "invalid_token", `Bearer realm="nerutalk", error="invalid_token"`},
		{"expired principal", expiredPrincipal, "Bearer x", "", "", 401, "unauthenticated", `Bearer realm="nerutalk", error="invalid_token"`},
		{"principal without user", noUser, "Bearer x", "", "", 401, "unauthenticated", `Bearer realm="nerutalk", error="invalid_token"`},
		{"store failure", fakeAuth, "Bearer broken", "", "", 500, "internal", ""},
		{"classified failure keeps its status", func(context.Context, string) (identity.Principal, error) {
			return identity.Principal{}, apperr.New(apperr.KindUnavailable, "unavailable", "try later")
		}, "Bearer x", "", "", 503, "unavailable", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := tt.auth.Caller(context.Background(), tt.header, tt.query)
			if tt.status == 0 {
				if err != nil || p.UserID != tt.user {
					t.Fatalf("Caller = %+v, %v; want %s", p, err, tt.user)
				}
				return
			}
			var ae *httpapi.AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *AuthError", err)
			}
			prob := httpapi.ProblemFor(context.Background(), http.StatusInternalServerError, "internal error", err)
			if prob.Status != tt.status || prob.Code != tt.code {
				t.Errorf("problem %d %q, want %d %q", prob.Status, prob.Code, tt.status, tt.code)
			}
			if got := ae.GetHeaders().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
		})
	}
}

// pprof authenticates like every other route (its failures are in TestAuthentication); an admin
// gets the profiles.
func TestPprofForAdmins(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, func(o *httpapi.Options) { o.Pprof = true })
	resp, raw := a.do(t, request{path: "/debug/pprof/cmdline", header: map[string]string{"Authorization": "Bearer admin"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, raw)
	}
}
