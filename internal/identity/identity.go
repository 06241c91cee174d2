// Package identity carries the authenticated caller through a request's context. The auth package
// puts it there; every other feature reads it without depending on auth.
package identity

import (
	"context"
	"time"
)

// Principal is the authenticated caller.
type Principal struct {
	UserID    string
	SessionID string
	Admin     bool
	ExpiresAt time.Time // when the access token that proved it expires
}

type key struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, key{}, p)
}

// From returns the caller, and false for an anonymous request.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(key{}).(Principal)
	return p, ok && p.UserID != ""
}

// UserID returns the caller's user id, "" for an anonymous request.
func UserID(ctx context.Context) string {
	p, _ := From(ctx)
	return p.UserID
}
