package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// TestLoginLimitsNeverLockOutTheOwner: failures are limited per (account, address) first; the
// per-account limit, ten times higher, stops distributed guessing only for addresses the account
// never signed in from; a correct password is never refused because of someone else's failures
// alone. On both databases (the known-address lookup), with the in-memory limiters and with Redis.
func TestLoginLimitsNeverLockOutTheOwner(t *testing.T) {
	t.Parallel()
	pair := ratelimit.Rate{Events: 10, Per: 15 * time.Minute}
	acct := ratelimit.Rate{Events: 30, Per: 15 * time.Minute}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		t.Run("memory", func(t *testing.T) {
			t.Parallel()
			clk := &testClock{t: time.Now()}
			s := newTestService(t, db, clk, func(o *Options) {
				o.PairLimiter = ratelimit.NewMemory(pair, ratelimit.WithClock(clk.Now))
				o.AccountLimiter = ratelimit.NewMemory(acct, ratelimit.WithClock(clk.Now))
			})
			lockoutScenario(t, s, "mem", clk)
		})
		t.Run("redis", func(t *testing.T) {
			t.Parallel()
			rdb, prefix := storetest.Redis(t)
			clk := &testClock{t: time.Now()}
			s := newTestService(t, db, clk, func(o *Options) {
				o.PairLimiter = ratelimit.NewRedis(rdb, prefix+":pair:", pair)
				o.AccountLimiter = ratelimit.NewRedis(rdb, prefix+":account:", acct)
			})
			lockoutScenario(t, s, "redis", nil) // Redis keeps its own clock: no waiting it out
		})
	})
}

func lockoutScenario(t *testing.T, s *Service, name string, clk *testClock) {
	ctx := context.Background()
	victim := "victim_" + name
	if _, err := s.register(ctx, registerRequest{Username: victim, Email: victim + "@example.com", Password: "password1"}, client{ip: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	login := func(login, pw, ip string) string {
		t.Helper()
		_, err := s.login(ctx, loginRequest{Login: login, Password: pw}, client{ip: ip})
		if err == nil {
			return "ok"
		}
		return code(err)
	}
	const attacker = "198.51.100.7"
	for i := range 10 {
		if got := login(victim, "wrong password", attacker); got != "invalid_credentials" {
			t.Fatalf("wrong password %d: %s, want invalid_credentials", i+1, got)
		}
	}
	if got := login(victim, "wrong password", attacker); got != "rate_limited" {
		t.Fatalf("11th wrong password from the same address: %s, want rate_limited", got)
	}
	if got := login(victim, "password1", attacker); got != "rate_limited" {
		t.Fatalf("right password from the failing address: %s, want rate_limited (its own failures)", got)
	}
	// The lockout: the owner, from an address never used before, still signs in.
	if got := login(victim, "password1", "203.0.113.5"); got != "ok" {
		t.Fatalf("right password from another address: %s, want ok", got)
	}
	if got := login(victim+"@example.com", "password1", "203.0.113.6"); got != "ok" {
		t.Fatalf("right password by email from another address: %s, want ok", got)
	}
	// Distributed guessing: 20 more addresses, one wrong password each, reach the account's 30.
	for i := range 20 {
		if got := login(victim, "wrong password", fmt.Sprintf("198.51.100.%d", 100+i)); got != "invalid_credentials" {
			t.Fatalf("distributed guess %d: %s", i, got)
		}
	}
	// Now guesses from new addresses stop before the password is checked...
	if got := login(victim, "wrong password", "198.51.100.200"); got != "rate_limited" {
		t.Fatalf("guess from a new address during the attack: %s, want rate_limited", got)
	}
	if got := login(victim, "password1", "198.51.100.201"); got != "rate_limited" {
		t.Fatalf("right password from a never-used address during the attack: %s, want rate_limited", got)
	}
	// ...but the addresses the account signed in from are not locked out: the owner gets in.
	for _, ip := range []string{"192.0.2.1", "203.0.113.5", "203.0.113.6"} {
		if got := login(victim, "password1", ip); got != "ok" {
			t.Fatalf("right password from the known address %s during the attack: %s, want ok", ip, got)
		}
	}
	// An unknown login is limited like an account, so the answers stay alike.
	for range 10 {
		login("ghost_"+name, "password1", attacker)
	}
	if got := login("ghost_"+name, "password1", attacker); got != "rate_limited" {
		t.Fatalf("unknown login after 10 failures: %s, want rate_limited", got)
	}
	if got := login("ghost_"+name, "password1", "203.0.113.9"); got != "invalid_credentials" {
		t.Fatalf("unknown login from another address: %s, want invalid_credentials", got)
	}
	if clk != nil {
		clk.Advance(15 * time.Minute)
		if got := login(victim, "password1", "198.51.100.201"); got != "ok" {
			t.Fatalf("after the window: %s, want ok", got)
		}
		if got := login(victim, "password1", attacker); got != "ok" {
			t.Fatalf("the failing address after the window: %s, want ok", got)
		}
	}
}
