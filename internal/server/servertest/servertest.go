// Package servertest starts a whole NeruTalk node for end-to-end tests: the real router over
// httptest, on SQLite in a temporary folder or on an isolated PostgreSQL schema.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// Node is a running test server.
type Node struct {
	*httptest.Server
	Srv    *server.Server
	Config config.Config
}

// Config returns the defaults tuned for tests: a temporary data folder, the cheapest argon2
// parameters and quiet logs.
func Config(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Argon2MemoryKiB = 8
	cfg.Argon2Time = 1
	cfg.LogLevel = slog.LevelError
	// Tests create groups freely; the limit's own tests set it back.
	cfg.GroupsPerMinute = 100_000
	cfg.CallsPerMinute = 100_000
	// Tests refresh and reconnect freely too; the limits' own tests set them back.
	cfg.RefreshesPerMinute = 100_000
	cfg.WSConnectsPerMinute = 100_000
	cfg.RequestsPerSecond = 100_000
	return cfg
}

// New starts a node on the given engine; mutate, if not nil, adjusts the configuration first.
func New(t testing.TB, d store.Dialect, mutate func(*config.Config)) *Node {
	t.Helper()
	cfg := Config(t)
	if d == store.Postgres {
		cfg.DatabaseURL = storetest.PostgresURL(t)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	srv, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	var h http.Handler = srv.Handler()
	if _, bench := t.(*testing.B); !bench { // benchmarks measure the server, not the checker
		doc, err := json.Marshal(srv.API.Root.OpenAPI())
		if err != nil {
			t.Fatalf("OpenAPI document: %v", err)
		}
		h = checkContract(t, doc).Wrap(h) // its report runs after the node is closed (cleanups run in reverse)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		srv.Shutdown(context.Background())
		ts.Close()
		srv.Close(context.Background())
	})
	return &Node{Server: ts, Srv: srv, Config: cfg}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Do sends a JSON request (body may be nil) with an optional bearer token and decodes the JSON
// answer into out (when out is not nil). It returns the response with its body read.
func (n *Node) Do(t testing.TB, method, path, token string, body, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.URL+path, rd)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := n.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp
}

// User is an account created through the API.
type User struct {
	ID, Username, AccessToken, RefreshToken string
}

// Register creates an account through POST /api/v1/auth/register and fails the test otherwise.
func (n *Node) Register(t testing.TB, username string) User {
	t.Helper()
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	resp := n.Do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]string{
		"username": username, "email": username + "@example.com", "password": "correct horse battery",
	}, &out)
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("register %s: status %d: %s", username, resp.StatusCode, b)
	}
	return User{ID: out.User.ID, Username: username, AccessToken: out.AccessToken, RefreshToken: out.RefreshToken}
}

// LogBuffer is a log destination (a logger's, or a process's stderr) that a test reads while the
// server writes.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Deployment is a way to run NeruTalk that a test repeats itself on.
type Deployment struct {
	Name string
	// Start starts its nodes, each with the test defaults adjusted by mutate (if not nil).
	Start func(t *testing.T, mutate func(*config.Config)) []*Node
}

// Deployments are one SQLite node, one PostgreSQL node, and two PostgreSQL nodes sharing the
// database, the data folder and Redis (under a prefix of their own): what a per-user limit shared
// by the nodes must hold on.
func Deployments() []Deployment {
	return []Deployment{
		{"sqlite", func(t *testing.T, m func(*config.Config)) []*Node { return []*Node{New(t, store.SQLite, m)} }},
		{"postgres", func(t *testing.T, m func(*config.Config)) []*Node { return []*Node{New(t, store.Postgres, m)} }},
		{"two nodes sharing redis", func(t *testing.T, m func(*config.Config)) []*Node {
			redisURL := storetest.RedisURL(t)
			_, prefix := storetest.Redis(t)
			a := New(t, store.Postgres, func(c *config.Config) {
				if m != nil {
					m(c)
				}
				c.RedisURL, c.RedisPrefix = redisURL, prefix
			})
			b := New(t, store.Postgres, func(c *config.Config) {
				if m != nil {
					m(c)
				}
				c.RedisURL, c.RedisPrefix, c.DatabaseURL, c.DataDir = redisURL, prefix, a.Config.DatabaseURL, a.Config.DataDir
			})
			return []*Node{a, b}
		}},
	}
}

// ExpectRateLimited calls act(0), act(1), ... until an answer is 429 (at most 50 × burst calls),
// failing the test on any other answer of 300 or more. It checks that at least burst calls passed
// before the refusal, at most maxAllowed when that is not 0 (the burst with room for what refills
// while the test runs), and that the refusal carries a Retry-After of 1 to 60 seconds.
func ExpectRateLimited(t testing.TB, burst, maxAllowed int, act func(i int) *http.Response) {
	t.Helper()
	allowed := 0
	for i := 0; i < 50*burst; i++ {
		resp := act(i)
		switch {
		case resp.StatusCode < 300:
			allowed++
			continue
		case resp.StatusCode != http.StatusTooManyRequests:
			t.Fatalf("action %d: status %d", i, resp.StatusCode)
		}
		if allowed < burst {
			t.Errorf("refused after %d actions, want at least the burst %d", allowed, burst)
		}
		if maxAllowed > 0 && allowed > maxAllowed {
			t.Errorf("refused after %d actions, want at most %d", allowed, maxAllowed)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Errorf("Retry-After %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
		}
		return
	}
	t.Fatalf("%d actions allowed, never 429", allowed)
}
