package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// clock is a settable time source shared by a harness's service and limiters.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is the accounts capability mounted on the real router (httpapi.New) over httptest, on a
// fresh database, with an injected clock. servertest.Node gives it the JSON request helpers.
type harness struct {
	*servertest.Node
	Svc   *auth.Service
	DB    *store.DB
	Clock *clock
}

// testOptions are cheap Options for tests: the cheapest argon2 parameters, no rate limits, a
// fixed signing key.
func testOptions(clk *clock) auth.Options {
	return auth.Options{
		SigningKey:      []byte("0123456789abcdef0123456789abcdef"),
		AccessTokenTTL:  15 * time.Minute,
		RefreshTokenTTL: 30 * 24 * time.Hour,
		Argon2:          auth.Argon2Params{MemoryKiB: 8, Time: 1, Threads: 1},
		AvatarMaxBytes:  64 << 10,
		Now:             clk.Now,
	}
}

// newHarness builds a harness on engine d; mutate adjusts the options first.
func newHarness(t testing.TB, d store.Dialect, mutate func(*auth.Options)) *harness {
	t.Helper()
	return newLoggedHarness(t, d, mutate, io.Discard)
}

// newLoggedHarness is newHarness with the server's log (debug level) written to logs.
func newLoggedHarness(t testing.TB, d store.Dialect, mutate func(*auth.Options), logs io.Writer) *harness {
	t.Helper()
	db := storetest.Open(t, d)
	clk := &clock{t: time.Now()}
	o := testOptions(clk)
	if mutate != nil {
		mutate(&o)
	}
	svc, err := auth.New(db, o)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	api := httpapi.New(httpapi.Options{
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:      "test",
		MaxBodyBytes: 1 << 20,
		Authenticate: svc.Authenticate,
	})
	svc.Mount(api)
	ts := httptest.NewServer(api.Router)
	t.Cleanup(ts.Close)
	return &harness{Node: &servertest.Node{Server: ts}, Svc: svc, DB: db, Clock: clk}
}

// withLimits switches on the in-memory limiters with the given rates per minute (attempts per
// address; failures per account and address; failures per account), on the harness clock.
func withLimits(perIP, perPair, perAccount int) func(*auth.Options) {
	return func(o *auth.Options) {
		o.IPLimiter = ratelimit.NewMemory(ratelimit.PerMinute(perIP), ratelimit.WithClock(o.Now))
		o.PairLimiter = ratelimit.NewMemory(ratelimit.PerMinute(perPair), ratelimit.WithClock(o.Now))
		o.AccountLimiter = ratelimit.NewMemory(ratelimit.PerMinute(perAccount), ratelimit.WithClock(o.Now))
	}
}

// eachEngine runs fn once per database engine, in parallel subtests.
func eachEngine(t *testing.T, fn func(t *testing.T, d store.Dialect)) {
	t.Helper()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

type profile struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	Email       *string   `json:"email"`
	DisplayName string    `json:"display_name"`
	Bio         string    `json:"bio"`
	AvatarURL   string    `json:"avatar_url"`
	CreatedAt   time.Time `json:"created_at"`
}

type tokenPair struct {
	User         profile `json:"user"`
	AccessToken  string  `json:"access_token"`
	RefreshToken string  `json:"refresh_token"`
	TokenType    string  `json:"token_type"`
	ExpiresIn    int     `json:"expires_in"`
}

type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

const password = "correct horse battery"

// register creates an account and returns its token pair.
func (h *harness) register(t testing.TB, username string) tokenPair {
	t.Helper()
	var out tokenPair
	resp := h.Do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]any{
		"username": username, "email": username + "@example.com", "password": password,
	}, &out)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register %s: status %d: %s", username, resp.StatusCode, body(resp))
	}
	return out
}

func (h *harness) login(t testing.TB, login, pw string, extra map[string]any) (*http.Response, tokenPair) {
	t.Helper()
	req := map[string]any{"login": login, "password": pw}
	for k, v := range extra {
		req[k] = v
	}
	var out tokenPair
	resp := h.Do(t, http.MethodPost, "/api/v1/auth/login", "", req, &out)
	return resp, out
}

func (h *harness) refresh(t testing.TB, token string) (*http.Response, tokenPair) {
	t.Helper()
	var out tokenPair
	resp := h.Do(t, http.MethodPost, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": token}, &out)
	return resp, out
}

// status sends a request and returns the status code.
func (h *harness) status(t testing.TB, method, path, token string, reqBody any) int {
	t.Helper()
	return h.Do(t, method, path, token, reqBody, nil).StatusCode
}

func body(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}

func decodeProblem(t testing.TB, resp *http.Response) problem {
	t.Helper()
	var p problem
	raw := body(resp)
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatalf("not a problem document: %q", raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("problem Content-Type = %q", ct)
	}
	return p
}

// wantProblem checks the status and code of a problem answer.
func wantProblem(t testing.TB, resp *http.Response, status int, code string) problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d: %s", resp.StatusCode, status, body(resp))
	}
	p := decodeProblem(t, resp)
	if p.Code != code {
		t.Fatalf("code = %q, want %q (detail %q)", p.Code, code, p.Detail)
	}
	return p
}

// setAdmin grants or revokes the admin role the way `nerutalk admin` does.
func (h *harness) setAdmin(t testing.TB, username string, admin bool) {
	t.Helper()
	if err := auth.SetRole(context.Background(), h.DB, username, admin); err != nil {
		t.Fatalf("SetRole(%s, %v): %v", username, admin, err)
	}
}
