package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/identity"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestService(t testing.TB, db *store.DB, clk *testClock, mutate func(*Options)) *Service {
	t.Helper()
	o := Options{
		SigningKey: testKey, AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: 30 * 24 * time.Hour,
		Argon2: cheap, AvatarMaxBytes: 1 << 20, Now: clk.Now,
	}
	if mutate != nil {
		mutate(&o)
	}
	s, err := New(db, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRegister(t testing.TB, s *Service, username string) *TokenPair {
	t.Helper()
	p, err := s.register(context.Background(), registerRequest{Username: username, Email: username + "@example.com", Password: "password1"}, client{ip: "192.0.2.1"})
	if err != nil {
		t.Fatalf("register %s: %v", username, err)
	}
	return p
}

func code(err error) string {
	if ae, ok := apperr.As(err); ok {
		return ae.Code
	}
	return fmt.Sprint(err)
}

// TestRevocationReachesOtherNodesWithinTheCacheTTL runs two services (two nodes) on one database:
// a session revoked on node B keeps passing node A's Authenticator only while A's cached state is
// younger than SessionCacheTTL.
func TestRevocationReachesOtherNodesWithinTheCacheTTL(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		clk := &testClock{t: time.Now()}
		a := newTestService(t, db, clk, nil)
		b := newTestService(t, db, clk, nil)
		pair := mustRegister(t, a, "nodeuser")

		p, err := a.Authenticate(ctx, pair.AccessToken)
		if err != nil {
			t.Fatalf("authenticate on A: %v", err)
		}
		want := identity.Principal{UserID: pair.User.ID, SessionID: p.SessionID, ExpiresAt: clk.Now().Truncate(time.Second).Add(15 * time.Minute)}
		if p != want {
			t.Fatalf("principal = %+v, want %+v", p, want)
		}
		if _, err := b.Authenticate(ctx, pair.AccessToken); err != nil {
			t.Fatalf("authenticate on B: %v", err)
		}
		if err := b.revokeSession(ctx, p, p.SessionID); err != nil {
			t.Fatalf("revoke on B: %v", err)
		}
		// B knows at once.
		if _, err := b.Authenticate(ctx, pair.AccessToken); code(err) != "invalid_token" {
			t.Fatalf("B after its own revoke: %v", err)
		}
		// A trusts its cache until the TTL has passed...
		clk.Advance(DefaultSessionCacheTTL - time.Millisecond)
		if _, err := a.Authenticate(ctx, pair.AccessToken); err != nil {
			t.Fatalf("A within the cache TTL: %v (the cache is not being used)", err)
		}
		// ...and no longer.
		clk.Advance(time.Millisecond)
		if _, err := a.Authenticate(ctx, pair.AccessToken); code(err) != "invalid_token" {
			t.Fatalf("A after the cache TTL: %v, want invalid_token", err)
		}
	})
}

func TestSessionCacheCanBeDisabled(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	clk := &testClock{t: time.Now()}
	a := newTestService(t, db, clk, func(o *Options) { o.SessionCacheTTL = -1 })
	b := newTestService(t, db, clk, nil)
	pair := mustRegister(t, a, "nocache")
	p, err := a.Authenticate(ctx, pair.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.revokeSession(ctx, p, p.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, pair.AccessToken); code(err) != "invalid_token" {
		t.Fatalf("uncached A after revoke elsewhere: %v", err)
	}
}

func TestSessionCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := newSessionCache(time.Second, 100)
	now := time.Now()
	for i := range 1000 {
		c.put(fmt.Sprint("s", i), sessionState{live: true}, now)
	}
	if n := len(c.entries); n > 100 {
		t.Fatalf("cache holds %d entries, max 100", n)
	}
	if _, ok := c.get("s999", now); !ok {
		t.Fatal("the newest entry is missing")
	}
	if _, ok := c.get("s999", now.Add(time.Second)); ok {
		t.Fatal("an entry outlived the TTL")
	}
	if _, ok := c.get("s999", now.Add(-time.Second)); ok {
		t.Fatal("an entry from the future (clock stepped back) was trusted")
	}
	c.kill(now, "s999")
	if st, ok := c.get("s999", now); !ok || st.live {
		t.Fatalf("killed entry = %+v, %v", st, ok)
	}
	// A read that raced with the revocation cannot bring the session back to life...
	c.kill(now, "fresh")
	c.put("fresh", sessionState{live: true}, now)
	if st, ok := c.get("fresh", now); !ok || st.live {
		t.Fatalf("a stale put overwrote a kill: %+v, %v", st, ok)
	}
	// ...but once the TTL has passed, state read from the database counts again.
	later := now.Add(time.Second)
	c.put("fresh", sessionState{live: false, userID: "u"}, later)
	if st, ok := c.get("fresh", later); !ok || st.userID != "u" {
		t.Fatalf("entry after the TTL = %+v, %v", st, ok)
	}
}

func TestAuthenticateRecordsUse(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		clk := &testClock{t: time.Now()}
		s := newTestService(t, db, clk, nil)
		pair := mustRegister(t, s, "toucher")
		start := clk.Now()
		clk.Advance(2 * time.Minute)
		p, err := s.Authenticate(ctx, pair.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.sessions.list(ctx, p.UserID, "", 10, clk.Now())
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %v %v", list, err)
		}
		if got := list[0].LastUsedAt; !got.After(start) {
			t.Fatalf("last_used_at = %v, want after %v", got, start)
		}
	})
}

func TestLoginUpgradesOldHashes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		clk := &testClock{t: time.Now()}
		old := newTestService(t, db, clk, nil)
		pair := mustRegister(t, old, "upgrader")
		raised := Argon2Params{MemoryKiB: 16, Time: 2, Threads: 1}
		s := newTestService(t, db, clk, func(o *Options) { o.Argon2 = raised })

		if _, err := s.login(ctx, loginRequest{Login: "upgrader", Password: "wrong password"}, client{}); code(err) != "invalid_credentials" {
			t.Fatalf("wrong password: %v", err)
		}
		a, _ := s.users.byIDFresh(ctx, pair.User.ID)
		if !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$m=8,t=1,p=1$") {
			t.Fatalf("a failed login changed the hash: %s", a.PasswordHash)
		}
		if _, err := s.login(ctx, loginRequest{Login: "upgrader", Password: "password1"}, client{}); err != nil {
			t.Fatalf("login: %v", err)
		}
		a, _ = s.users.byIDFresh(ctx, pair.User.ID)
		if !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$m=16,t=2,p=1$") {
			t.Fatalf("hash not upgraded: %s", a.PasswordHash)
		}
		if _, err := s.login(ctx, loginRequest{Login: "upgrader@example.com", Password: "password1"}, client{}); err != nil {
			t.Fatalf("login with the upgraded hash: %v", err)
		}
	})
}

func TestSetRole(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		clk := &testClock{t: time.Now()}
		s := newTestService(t, db, clk, nil)
		pair := mustRegister(t, s, "promoted")
		for _, admin := range []bool{true, false, true} {
			if err := SetRole(ctx, db, "Promoted", admin); err != nil {
				t.Fatal(err)
			}
			clk.Advance(DefaultSessionCacheTTL)
			p, err := s.Authenticate(ctx, pair.AccessToken)
			if err != nil || p.Admin != admin {
				t.Fatalf("after SetRole(%v): admin=%v err=%v", admin, p.Admin, err)
			}
		}
		if err := SetRole(ctx, db, "nobody", true); err == nil || !strings.Contains(err.Error(), "no user") {
			t.Fatalf("SetRole(nobody) = %v", err)
		}
		if err := SetRole(ctx, db, "x!", true); err == nil {
			t.Fatal("SetRole with an invalid name succeeded")
		}
	})
}

// TestRotateStore exercises the refresh-token SQL directly on both engines: rotation, reuse of
// an old hash, expiry and revocation.
func TestRotateStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		clk := &testClock{t: time.Now()}
		s := newTestService(t, db, clk, nil)
		pair := mustRegister(t, s, "rotator")
		ss := sessions{db}
		h0 := hashRefreshToken(pair.RefreshToken)
		r, err := ss.rotate(ctx, h0, "h1", clk.Now(), time.Hour)
		if err != nil || r.reused || r.userID != pair.User.ID {
			t.Fatalf("rotate h0: %+v %v", r, err)
		}
		if r2, err := ss.rotate(ctx, "h1", "h2", clk.Now(), time.Hour); err != nil || r2.reused || r2.sessionID != r.sessionID {
			t.Fatalf("rotate h1: %+v %v", r2, err)
		}
		if _, err := ss.rotate(ctx, "unknown", "hx", clk.Now(), time.Hour); !errors.Is(err, errRefreshInvalid) {
			t.Fatalf("rotate unknown: %v", err)
		}
		// The session's expiry moved with the rotation: one hour from now.
		clk.Advance(time.Hour + time.Second)
		if _, err := ss.rotate(ctx, "h2", "h3", clk.Now(), time.Hour); !errors.Is(err, errRefreshInvalid) {
			t.Fatalf("rotate after expiry: %v", err)
		}
		// Reusing h0 revokes the session even after expiry; nothing is rotated.
		r3, err := ss.rotate(ctx, h0, "h4", clk.Now(), time.Hour)
		if err != nil || !r3.reused || r3.sessionID != r.sessionID {
			t.Fatalf("reuse h0: %+v %v", r3, err)
		}
		var revoked int
		if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE id = $1 AND revoked_at IS NOT NULL`, r.sessionID).Scan(&revoked); err != nil || revoked != 1 {
			t.Fatalf("session revoked = %d, %v", revoked, err)
		}
		// A new login drops the user's expired sessions (and their history, by cascade).
		if _, err := s.login(ctx, loginRequest{Login: "rotator", Password: "password1"}, client{}); err != nil {
			t.Fatal(err)
		}
		var n, hist int
		db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE user_id = $1`, pair.User.ID).Scan(&n)
		db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM refresh_history`).Scan(&hist)
		if n != 1 || hist != 0 {
			t.Fatalf("after pruning: %d sessions, %d history rows; want 1, 0", n, hist)
		}
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	good := Options{SigningKey: testKey, AccessTokenTTL: time.Minute, RefreshTokenTTL: time.Hour, Argon2: cheap}
	for name, mutate := range map[string]func(*Options){
		"short key":        func(o *Options) { o.SigningKey = []byte("short") },
		"no access ttl":    func(o *Options) { o.AccessTokenTTL = 0 },
		"no refresh ttl":   func(o *Options) { o.RefreshTokenTTL = 0 },
		"no argon2 memory": func(o *Options) { o.Argon2.MemoryKiB = 0 },
		"no argon2 time":   func(o *Options) { o.Argon2.Time = 0 },
	} {
		o := good
		mutate(&o)
		if _, err := New(db, o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(db, good); err != nil {
		t.Fatalf("good options: %v", err)
	}
}

// BenchmarkAuthenticateCached is the per-request cost of the Authenticator when the session's
// state is cached: token verification plus a map lookup.
func BenchmarkAuthenticateCached(b *testing.B) {
	db := storetest.Open(b, store.SQLite)
	clk := &testClock{t: time.Now()}
	s := newTestService(b, db, clk, nil)
	pair := mustRegister(b, s, "bencher")
	ctx := context.Background()
	if _, err := s.Authenticate(ctx, pair.AccessToken); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, pair.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRefreshHistoryIsBounded: a session refreshed far more often than refreshHistoryKeep keeps
// that many rotated-out tokens, and reusing a recent one still revokes it.
func TestRefreshHistoryIsBounded(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		clk := &testClock{t: time.Now()}
		s := newTestService(t, db, clk, nil)
		pair := mustRegister(t, s, "looper")
		ss := sessions{db}
		cur := hashRefreshToken(pair.RefreshToken)
		var sid string
		var hashes []string
		for i := range 3 * refreshHistoryKeep {
			next := fmt.Sprintf("h%d", i)
			r, err := ss.rotate(ctx, cur, next, clk.Now(), time.Hour)
			if err != nil || r.reused {
				t.Fatalf("rotate %d: %+v %v", i, r, err)
			}
			sid = r.sessionID
			hashes = append(hashes, cur)
			cur = next
			if i%7 == 0 { // some rotations share a millisecond, some do not
				clk.Advance(time.Millisecond)
			}
		}
		var hist int
		if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM refresh_history WHERE session_id = $1`, sid).Scan(&hist); err != nil {
			t.Fatal(err)
		}
		if hist != refreshHistoryKeep {
			t.Fatalf("%d history rows after %d rotations, want %d", hist, 3*refreshHistoryKeep, refreshHistoryKeep)
		}
		// The oldest tokens are forgotten: merely invalid, the session lives on.
		if _, err := ss.rotate(ctx, hashes[0], "x", clk.Now(), time.Hour); !errors.Is(err, errRefreshInvalid) {
			t.Fatalf("rotate the first token: %v, want invalid", err)
		}
		// A recently rotated one is still reuse: the session is revoked.
		r, err := ss.rotate(ctx, hashes[len(hashes)-2], "y", clk.Now(), time.Hour)
		if err != nil || !r.reused || r.sessionID != sid {
			t.Fatalf("reuse a recent token: %+v %v", r, err)
		}
		if _, err := ss.rotate(ctx, cur, "z", clk.Now(), time.Hour); !errors.Is(err, errRefreshInvalid) {
			t.Fatalf("rotate after reuse: %v, want invalid (revoked)", err)
		}
	})
}

// TestSessionsPerUserCap: with the cap at 3, a fourth sign-in revokes the least recently used
// session (not the one that refreshed lately), and the user is never locked out.
func TestSessionsPerUserCap(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		clk := &testClock{t: time.Now()}
		var revoked []string
		s := newTestService(t, db, clk, func(o *Options) {
			o.MaxSessionsPerUser = 3
			o.OnSessionsRevoked = func(_ context.Context, _ string, ids []string) { revoked = append(revoked, ids...) }
		})
		login := func() *TokenPair {
			t.Helper()
			clk.Advance(2 * time.Minute) // last_used_at is precise to a minute
			p, err := s.login(ctx, loginRequest{Login: "many", Password: "password1"}, client{ip: "192.0.2.1"})
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			return p
		}
		first := mustRegister(t, s, "many")
		second, third := login(), login()
		// The first session refreshes: now the second is the least recently used.
		clk.Advance(2 * time.Minute)
		first, err := s.refresh(ctx, first.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		var secondID string // read from the table: Authenticate would count as a use
		if err := db.R.QueryRowContext(ctx, `SELECT id FROM sessions WHERE user_id = $1 ORDER BY created_at LIMIT 1 OFFSET 1`, second.User.ID).Scan(&secondID); err != nil {
			t.Fatal(err)
		}
		if len(revoked) != 0 {
			t.Fatalf("revoked %v before the cap was reached", revoked)
		}
		fourth := login()
		if len(revoked) != 1 || revoked[0] != secondID {
			t.Fatalf("revoked %v, want the least recently used session %s", revoked, secondID)
		}
		if _, err := s.refresh(ctx, second.RefreshToken); !errors.Is(err, errRefreshInvalid) {
			t.Errorf("refresh of the evicted session: %v, want invalid_token", err)
		}
		var live int
		if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL`, first.User.ID).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live != 3 {
			t.Errorf("%d live sessions, want 3", live)
		}
		for name, p := range map[string]*TokenPair{"first": first, "third": third, "fourth": fourth} {
			if _, err := s.refresh(ctx, p.RefreshToken); err != nil {
				t.Errorf("refresh %s: %v", name, err)
			}
		}
	})
}
