package auth

import (
	"context"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
)

// Failed sign-ins are limited so that guessing is slow without letting anyone lock a victim out:
//
//  1. Per address (IPLimiter): attempts of any kind, across accounts — one client cannot spray.
//  2. Per account and address (PairLimiter, PairFailures): failures only. Over it, that address
//     gets 429 for that account, before its password is checked: it is its own failures.
//  3. Per account (AccountLimiter, AccountFailures, ten times higher): failures from every
//     address, the limit against distributed guessing. Over it, an address that has signed into
//     the account before (a session of the account was started from it, IPv6 per /64) still gets
//     its password checked; any other address gets 429 before the check.
//
// So a correct password is refused only for its own address's failures, or while the account is
// under a distributed guessing attack and the address never signed into it: someone else's
// failures alone never refuse it. Failures are recorded after the check (a success costs nothing);
// an unknown login is counted like an account ("name:" + login), so its answers stay alike.
//
// The limiters count against keys in Redis when the nodes share one (ratelimit.Redis); a limiter
// that fails is ignored (fail open: signing in matters more than the limit), and logged.

// pairKey is the key of one account's failures from one address.
func pairKey(accountKey, ip string) string { return "login:pair:" + accountKey + "|" + ipKey(ip) }

// accountFailuresKey is the key of one account's failures from every address.
func accountFailuresKey(accountKey string) string { return "login:failures:" + accountKey }

// checkFailures refuses a sign-in attempt before its password is checked: when this address
// failed too often for the account, or when the account is over its failure limit and the address
// is not one the account signed in from. a is nil for an unknown login.
func (s *Service) checkFailures(ctx context.Context, accountKey string, a *account, ip string) error {
	if err := s.checkPairFailures(ctx, accountKey, ip); err != nil {
		return err
	}
	_, retry, err := s.acctLim.Peek(ctx, accountFailuresKey(accountKey))
	if err != nil {
		httpapi.Logger(ctx).WarnContext(ctx, "rate limiter failed; allowing", "err", err)
		return nil
	}
	if retry <= 0 {
		return nil
	}
	userID := "" // an unknown login has no sessions, but costs the same query
	if a != nil {
		userID = a.ID
	}
	known, err := s.sessions.signedInFrom(ctx, userID, ip)
	if err != nil {
		return err
	}
	if known {
		return nil
	}
	return apperr.RateLimited(retry)
}

// checkPairFailures refuses an attempt from an address that failed too often for the account.
func (s *Service) checkPairFailures(ctx context.Context, accountKey, ip string) error {
	_, retry, err := s.pairLim.Peek(ctx, pairKey(accountKey, ip))
	if err != nil {
		httpapi.Logger(ctx).WarnContext(ctx, "rate limiter failed; allowing", "err", err)
		return nil
	}
	if retry > 0 {
		return apperr.RateLimited(retry)
	}
	return nil
}

// recordFailure counts a wrong password against the account and address, and the account.
func (s *Service) recordFailure(ctx context.Context, accountKey, ip string) {
	for _, c := range []struct {
		l   ratelimit.Counter
		key string
	}{{s.pairLim, pairKey(accountKey, ip)}, {s.acctLim, accountFailuresKey(accountKey)}} {
		if _, _, err := c.l.Allow(ctx, c.key); err != nil {
			httpapi.Logger(ctx).WarnContext(ctx, "rate limiter failed; failure not counted", "err", err)
		}
	}
}
