package ratelimit

import (
	"context"
	"log/slog"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/identity"
)

// Enforce counts one event of key against l (nil: unlimited) for an action a user asked for:
// over the limit it is apperr.RateLimited with the wait (429 rate_limited with Retry-After). A
// limiter that fails (Redis down) is logged on log and lets the event through: the action matters
// more than the limit, and the limits that must fail closed (sign-in) do not use it.
func Enforce(ctx context.Context, l Limiter, key string, log *slog.Logger) error {
	if l == nil {
		return nil
	}
	ok, retry, err := l.Allow(ctx, key)
	if err != nil {
		log.WarnContext(ctx, "rate limiter failed; allowing", "key", key, "err", err)
		return nil
	}
	if !ok {
		return apperr.RateLimited(retry)
	}
	return nil
}

// PerUser returns handler h (the shape of a huma operation's handler) with Enforce before it,
// under the key prefix + the caller's user id.
func PerUser[I, O any](l Limiter, prefix string, log *slog.Logger, h func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	return func(ctx context.Context, in *I) (*O, error) {
		if err := Enforce(ctx, l, prefix+identity.UserID(ctx), log); err != nil {
			return nil, err
		}
		return h(ctx, in)
	}
}
