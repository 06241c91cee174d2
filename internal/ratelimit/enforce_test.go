package ratelimit_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
)

// failing is a limiter whose store does not answer.
type failing struct{}

func (failing) Allow(context.Context, string) (bool, time.Duration, error) {
	return false, 0, errors.New("redis: connection refused")
}

func TestEnforce(t *testing.T) {
	t.Parallel()
	full := ratelimit.NewMemory(ratelimit.Rate{Events: 1, Per: time.Hour})
	if ok, _, _ := full.Allow(t.Context(), "k"); !ok {
		t.Fatal("first event refused")
	}
	for _, tc := range []struct {
		name    string
		l       ratelimit.Limiter
		refused bool
	}{
		{"no limiter", nil, false},
		{"limits off", ratelimit.Noop{}, false},
		{"within the limit", ratelimit.NewMemory(ratelimit.PerMinute(1)), false},
		{"over the limit", full, true},
		{"limiter down: fail open", failing{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ratelimit.Enforce(t.Context(), tc.l, "k", slog.New(slog.DiscardHandler))
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Kind != apperr.KindRateLimited || ae.RetryAfter <= 0 {
				t.Fatalf("got %v, want a rate_limited error with a wait", err)
			}
		})
	}
}
