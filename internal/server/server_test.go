package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// configFor returns a test configuration on engine d; PostgreSQL gets an isolated schema.
func configFor(t *testing.T, d store.Dialect) config.Config {
	t.Helper()
	cfg := servertest.Config(t)
	if d == store.Postgres {
		cfg.DatabaseURL = storetest.PostgresURL(t)
	}
	return cfg
}

func newServer(t *testing.T, cfg config.Config, log *slog.Logger) *server.Server {
	t.Helper()
	srv, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return srv
}

func storedSecret(t *testing.T, db *store.DB) (string, bool) {
	t.Helper()
	var v string
	err := db.R.QueryRowContext(context.Background(), `SELECT value FROM server_settings WHERE name = 'jwt_signing_secret'`).Scan(&v)
	if err != nil {
		return "", false
	}
	return v, true
}

func TestEmbeddedDefaults(t *testing.T) {
	t.Parallel()
	cfg := servertest.Config(t)
	cfg.DataDir = filepath.Join(t.TempDir(), "nested", "data") // created on first start
	srv := newServer(t, cfg, quiet())
	if srv.DB.Dialect != store.SQLite {
		t.Errorf("dialect %s, want sqlite without NERUTALK_DATABASE_URL", srv.DB.Dialect)
	}
	for _, p := range []string{"nerutalk.db", "media"} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, p)); err != nil {
			t.Errorf("data folder lacks %s: %v", p, err)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(cfg.DataDir, ".write-check-*"))
	if len(leftovers) > 0 {
		t.Errorf("the writability check left %v behind", leftovers)
	}
	secret, ok := storedSecret(t, srv.DB)
	if b, err := hex.DecodeString(secret); !ok || err != nil || len(b) != 32 {
		t.Errorf("stored signing secret %q (found %v): want 32 random bytes in hex", secret, ok)
	}
}

// The signing secret is generated on first start and kept in the database, so a restart (or a
// second node on the same database) signs with the same key.
func TestSigningSecretSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			cfg := configFor(t, d)
			first := newServer(t, cfg, quiet())
			s1, ok := storedSecret(t, first.DB)
			if !ok {
				t.Fatal("no signing secret after the first start")
			}
			if err := first.Close(context.Background()); err != nil {
				t.Fatalf("close: %v", err)
			}
			second := newServer(t, cfg, quiet())
			if s2, _ := storedSecret(t, second.DB); s2 != s1 {
				t.Fatalf("secret changed across a restart: %q then %q", s1, s2)
			}
			// Another node on the same database agrees too.
			if d == store.Postgres {
				third := newServer(t, cfg, quiet())
				if s3, _ := storedSecret(t, third.DB); s3 != s1 {
					t.Fatalf("a second node got another secret: %q, want %q", s3, s1)
				}
			}
		})
	}
}

func TestConfiguredSecretIsNotStored(t *testing.T) {
	t.Parallel()
	cfg := servertest.Config(t)
	cfg.JWTSecret = strings.Repeat("k", 32)
	srv := newServer(t, cfg, quiet())
	if v, ok := storedSecret(t, srv.DB); ok {
		t.Errorf("a signing secret %q was generated although NERUTALK_JWT_SECRET is set", v)
	}
}

func TestStartupErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   []string
	}{
		{"data folder under a file", func(c *config.Config) { c.DataDir = filepath.Join(file, "data") },
			[]string{"NERUTALK_DATA_DIR", "not a directory"}},
		{"data folder is a file", func(c *config.Config) { c.DataDir = file },
			[]string{"NERUTALK_DATA_DIR", file}},
		{"postgres that does not answer", func(c *config.Config) {
			c.DatabaseURL = "postgres://postgres@127.0.0.1:1/nerutalk?sslmode=disable&connect_timeout=2"
		}, []string{"NERUTALK_DATABASE_URL", "connect"}},
		{"redis that does not answer", func(c *config.Config) { c.RedisURL = "redis://127.0.0.1:1/0" },
			[]string{"NERUTALK_REDIS_URL", "does not answer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := servertest.Config(t)
			tt.mutate(&cfg)
			srv, err := server.New(context.Background(), cfg, quiet())
			if err == nil {
				srv.Close(context.Background())
				t.Fatal("server.New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOpenStoreForMigrate(t *testing.T) {
	t.Parallel()
	cfg := servertest.Config(t)
	db, err := server.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "media")); err != nil {
		t.Errorf("media folder: %v", err)
	}
}

// run starts srv.Run on a free loopback port and returns its address and the channel that gets
// Run's result.
func run(t *testing.T, srv *server.Server, ctx context.Context) (string, <-chan error) {
	t.Helper()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a net.Addr) { addrc <- a.String() }) }()
	select {
	case a := <-addrc:
		return a, done
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start listening")
	}
	return "", nil
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
		return nil
	}
}

type slowInput struct {
	Release chan struct{} `json:"-"`
}

func TestRunDrainsInFlightRequestsOnShutdown(t *testing.T) {
	t.Parallel()
	logs := &servertest.LogBuffer{}
	cfg := servertest.Config(t)
	cfg.Addr = "127.0.0.1:0"
	srv := newServer(t, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	started, release := make(chan struct{}), make(chan struct{})
	huma.Register(srv.API.Public, huma.Operation{
		OperationID: "test-slow", Method: http.MethodGet, Path: "/test/slow", Summary: "Waits for the test",
	}, func(ctx context.Context, _ *struct{}) (*struct{ Body string }, error) {
		close(started)
		<-release
		return &struct{ Body string }{Body: "finished"}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := run(t, srv, ctx)
	base := "http://" + addr

	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if want := "docs=http://" + addr + "/docs"; !strings.Contains(logs.String(), want) {
		t.Errorf("the start-up log does not give the docs URL (%s):\n%s", want, logs.String())
	}

	type result struct {
		status int
		body   string
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/api/v1/test/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-started
	cancel() // SIGTERM, as far as Run knows
	// New connections are refused once shutdown has begun.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-slow
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, "finished") {
		t.Errorf("in-flight request: status %d body %q err %v, want it to finish", r.status, r.body, r.err)
	}
	if err := wait(t, done); err != nil {
		t.Errorf("Run returned %v, want nil after a graceful shutdown", err)
	}
	if err := srv.DB.Ping(context.Background()); err == nil {
		t.Error("the database is still open after Run returned")
	}
	for _, want := range []string{"shutting down", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestRunGivesUpOnStuckRequests(t *testing.T) {
	t.Parallel()
	cfg := servertest.Config(t)
	cfg.Addr = "127.0.0.1:0"
	cfg.ShutdownTimeout = 100 * time.Millisecond
	srv := newServer(t, cfg, quiet())
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	huma.Register(srv.API.Public, huma.Operation{
		OperationID: "test-stuck", Method: http.MethodGet, Path: "/test/stuck", Summary: "Never finishes",
	}, func(ctx context.Context, _ *struct{}) (*struct{}, error) {
		close(started)
		<-release
		return nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := run(t, srv, ctx)
	go func() {
		if resp, err := http.Get("http://" + addr + "/api/v1/test/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	_ = wait(t, done) // returns although the request never finishes
}

func TestRunPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := servertest.Config(t)
	cfg.Addr = ln.Addr().String()
	srv := newServer(t, cfg, quiet())
	err = srv.Run(context.Background(), nil)
	if err == nil {
		t.Fatal("Run succeeded on a port in use")
	}
	for _, want := range []string{"NERUTALK_ADDR", ln.Addr().String(), "address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if err := srv.DB.Ping(context.Background()); err == nil {
		t.Error("the database is still open after Run failed")
	}
}

func TestReadyzChecksTheDatabase(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, nil)
			var out struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			resp := n.Do(t, http.MethodGet, "/readyz", "", nil, &out)
			if resp.StatusCode != http.StatusOK || out.Checks["database"] != "ok" {
				t.Fatalf("/readyz: %d %+v, want 200 with the database ok", resp.StatusCode, out)
			}
			n.Srv.DB.Close()
			var p struct {
				Code   string `json:"code"`
				Detail string `json:"detail"`
			}
			resp = n.Do(t, http.MethodGet, "/readyz", "", nil, &p)
			if resp.StatusCode != http.StatusServiceUnavailable || p.Code != "not_ready" || !strings.Contains(p.Detail, "database") {
				t.Fatalf("/readyz with the database closed: %d %+v, want 503 not_ready naming the database", resp.StatusCode, p)
			}
			if resp := n.Do(t, http.MethodGet, "/healthz", "", nil, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("/healthz: %d, want 200 (liveness does not depend on the database)", resp.StatusCode)
			}
		})
	}
}

// The whole node's OpenAPI document — every feature's operations — is valid OpenAPI 3.1 with an
// operationId, a summary and responses on every operation, and the docs page shows it without
// anything from the internet.
func TestNodeDocuments(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	resp := n.Do(t, http.MethodGet, "/openapi.json", "", nil, nil)
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/openapi.json: %d", resp.StatusCode)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Summary     string                     `json:"summary"`
			Tags        []string                   `json:"tags"`
			Responses   map[string]json.RawMessage `json:"responses"`
			Security    []map[string][]string      `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse /openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf(`"openapi" = %q, want "3.1.0"`, doc.OpenAPI)
	}
	ids := map[string]string{}
	for path, item := range doc.Paths {
		for method, op := range item {
			where := strings.ToUpper(method) + " " + path
			if op.OperationID == "" || op.Summary == "" || len(op.Responses) == 0 || len(op.Tags) == 0 {
				t.Errorf("%s: operationId %q, summary %q, tags %v, %d responses: want all",
					where, op.OperationID, op.Summary, op.Tags, len(op.Responses))
			}
			if other, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %q is used by %s and %s", op.OperationID, other, where)
			}
			ids[op.OperationID] = where
			needsToken := false // an empty requirement object ({}) documents an anonymous operation
			for _, req := range op.Security {
				needsToken = needsToken || len(req) > 0
			}
			if _, ok := op.Responses["401"]; needsToken && !ok {
				t.Errorf("%s needs a token but documents no 401", where)
			}
		}
	}
	for _, want := range []string{"healthz", "readyz"} {
		if _, ok := ids[want]; !ok {
			t.Errorf("operation %s is missing", want)
		}
	}

	resp = n.Do(t, http.MethodGet, "/docs", "", nil, nil)
	html, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/docs: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("/docs Content-Security-Policy = %q", csp)
	}
	// Every URL of the page is relative, and each asset it loads is served by the node itself
	// through the whole middleware chain.
	assets := 0
	for _, m := range regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']?([^"'\s>]*)`).FindAllStringSubmatch(string(html), -1) {
		u := m[1]
		if strings.Contains(strings.ToLower(u), "http") || strings.HasPrefix(u, "/") {
			t.Errorf("/docs refers to %q: want a relative URL on this node", u)
			continue
		}
		if !strings.HasPrefix(u, "docs/assets/") {
			continue
		}
		assets++
		resp := n.Do(t, http.MethodGet, "/"+u, "", nil, nil)
		body, _ := io.ReadAll(resp.Body)
		ct := resp.Header.Get("Content-Type")
		if resp.StatusCode != http.StatusOK || len(body) == 0 || !(strings.HasPrefix(ct, "text/css") || strings.HasPrefix(ct, "text/javascript")) {
			t.Errorf("/docs asset %s: %d, %q, %d bytes", u, resp.StatusCode, ct, len(body))
		}
	}
	if assets < 3 {
		t.Errorf("/docs loads %d assets from docs/assets/, want Swagger UI's script and stylesheet and docs.js", assets)
	}
	resp = n.Do(t, http.MethodGet, "/docs/websocket.md", "", nil, nil)
	guide, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(guide, []byte("# ")) {
		t.Errorf("/docs/websocket.md: %d, %.40q", resp.StatusCode, guide)
	}

	n.Do(t, http.MethodGet, "/api/v1/no-such-thing", "", nil, nil)
	resp = n.Do(t, http.MethodGet, "/metrics", "", nil, nil)
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`nerutalk_http_requests_total{method="GET",route="/openapi.json",status="200"} 1`,
		`nerutalk_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		"process_resident_memory_bytes",
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestStoreOutageDuringAuthentication: when the database cannot be asked about a session, every
// authenticated path (REST, the WebSocket upgrade, file downloads with ?token=) answers a 503
// problem, never the 401 that would send every client back to the sign-in screen.
func TestStoreOutageDuringAuthentication(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, func(c *config.Config) { c.SessionCacheTTL = 0 })
			alice := n.Register(t, "alice")
			if err := n.Srv.DB.Close(); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name, path, header string
			}{
				{"REST", "/api/v1/users/me", "Bearer " + alice.AccessToken},
				{"WebSocket upgrade", "/api/v1/ws", "Bearer " + alice.AccessToken},
				{"WebSocket upgrade with ?token=", "/api/v1/ws?token=" + alice.AccessToken, ""},
				{"file download with ?token=", "/api/v1/files/0192f5a0-0000-7000-8000-000000000000?token=" + alice.AccessToken, ""},
			} {
				req, _ := http.NewRequest(http.MethodGet, n.URL+c.path, nil)
				if c.header != "" {
					req.Header.Set("Authorization", c.header)
				}
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				var p struct{ Code string }
				err = json.NewDecoder(resp.Body).Decode(&p)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || err != nil || p.Code != "unavailable" ||
					resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("%s: %d %s code %q (%v), want 503 unavailable problem", c.name, resp.StatusCode, resp.Header.Get("Content-Type"), p.Code, err)
				}
			}
		})
	}
}
