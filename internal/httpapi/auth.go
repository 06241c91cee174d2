package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/identity"
)

// Authenticator checks an access token and returns the caller. The accounts package supplies it;
// it returns an *apperr.Error for a token it refuses, any other error when it cannot decide (its
// store failed).
type Authenticator func(ctx context.Context, token string) (identity.Principal, error)

var (
	// ErrNoToken answers a request that carries no access token.
	ErrNoToken  = apperr.New(apperr.KindUnauthenticated, "unauthenticated", "missing access token (Authorization: Bearer header)")
	errBadToken = apperr.New(apperr.KindUnauthenticated, "unauthenticated", "invalid or expired access token")
)

// Caller is the one way a request is authenticated, by every route that needs it (the Authed and
// Admin groups, pprof, the WebSocket upgrade, file uploads and downloads). The access token is
// the Authorization bearer token or, failing that, queryToken: pass the request's ?token= only
// where a header cannot be sent (the WebSocket from browsers, downloads from img and video
// tags), "" elsewhere.
//
// The error is an *AuthError, which WriteError and huma both answer the same way: a missing,
// refused or expired token is a 401 problem with its Bearer challenge; a classified error of the
// authenticator keeps its status (auth answers a failing session store with 503 unavailable);
// any other error is a logged 500 — never a 401 that would send clients back to sign in.
func (a Authenticator) Caller(ctx context.Context, authorization, queryToken string) (identity.Principal, error) {
	token := BearerToken(authorization)
	if token == "" {
		token = queryToken
	}
	if token == "" || a == nil {
		return identity.Principal{}, authError(ErrNoToken, false)
	}
	p, err := a(ctx, token)
	switch {
	case err != nil:
		return identity.Principal{}, authError(err, true)
	case p.UserID == "" || (!p.ExpiresAt.IsZero() && !time.Now().Before(p.ExpiresAt)):
		return identity.Principal{}, authError(errBadToken, true)
	}
	return p, nil
}

// AuthError is a failed authentication (see Authenticator.Caller): Err, plus the WWW-Authenticate
// challenge when Err is a 401. It satisfies huma.HeadersError.
type AuthError struct {
	Err     error
	headers http.Header
}

func authError(err error, tokenSent bool) *AuthError {
	e := &AuthError{Err: err, headers: http.Header{}}
	if apperr.KindOf(err) == apperr.KindUnauthenticated {
		e.headers.Set("WWW-Authenticate", BearerChallenge(tokenSent))
	}
	return e
}

func (e *AuthError) Error() string { return "authenticate: " + e.Err.Error() }

func (e *AuthError) Unwrap() error { return e.Err }

// GetHeaders implements huma.HeadersError.
func (e *AuthError) GetHeaders() http.Header { return e.headers }

var _ huma.HeadersError = (*AuthError)(nil)

// BearerToken extracts the token of an "Authorization: Bearer ..." header.
func BearerToken(h string) string {
	const prefix = "bearer "
	if len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) {
		return strings.TrimSpace(h[len(prefix):])
	}
	return ""
}

// BearerChallenge is the WWW-Authenticate value of a 401: RFC 6750 section 3.1 adds
// error="invalid_token" when a token was sent but is not acceptable.
func BearerChallenge(tokenSent bool) string {
	if tokenSent {
		return `Bearer realm="nerutalk", error="invalid_token"`
	}
	return `Bearer realm="nerutalk"`
}

var errAdminsOnly = apperr.Forbidden("admins only")

// requireAuth is the middleware of the Authed and Admin groups.
func requireAuth(api huma.API, authenticate Authenticator, admin bool) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		p, err := authenticate.Caller(ctx.Context(), ctx.Header("Authorization"), "")
		if err == nil && admin && !p.Admin {
			err = errAdminsOnly
		}
		if err != nil {
			writeHumaErr(api, ctx, err)
			return
		}
		next(huma.WithContext(ctx, identity.With(ctx.Context(), p)))
	}
}

// writeHumaErr answers err from a huma middleware as WriteError would.
func writeHumaErr(api huma.API, ctx huma.Context, err error) {
	for k, vs := range errorHeaders(err) {
		for _, v := range vs {
			ctx.AppendHeader(k, v)
		}
	}
	_ = huma.WriteErr(api, ctx, http.StatusInternalServerError, "internal error", err)
}

// errorHeaders returns the headers an error carries (huma.HeadersError), or nil.
func errorHeaders(err error) http.Header {
	var he huma.HeadersError
	if errors.As(err, &he) {
		return he.GetHeaders()
	}
	return nil
}

// requireAuthHTTP is requireAuth for plain net/http routes (pprof).
func requireAuthHTTP(authenticate Authenticator, admin bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := authenticate.Caller(r.Context(), r.Header.Get("Authorization"), "")
			if err == nil && admin && !p.Admin {
				err = errAdminsOnly
			}
			if err != nil {
				WriteError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(identity.With(r.Context(), p)))
		})
	}
}
