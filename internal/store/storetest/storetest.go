// Package storetest gives tests an isolated, migrated database on SQLite and on PostgreSQL, and
// the test Redis under a key prefix of their own.
//
// PostgreSQL tests read NERUTALK_TEST_POSTGRES_URL, Redis tests NERUTALK_TEST_REDIS_URL. Without
// them they are skipped with a message, except when CI=true, where a missing server fails the
// test. Each test gets its own schema (or key prefix), dropped at the end, so tests may run in
// parallel.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/nerutalk/nerutalk/internal/store"
)

// Dialects lists the engines every store test runs on.
var Dialects = []store.Dialect{store.SQLite, store.Postgres}

// Each runs fn as a subtest once per engine, each with a fresh database.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh migrated database of the given engine, closed when the test ends.
func Open(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	ctx := context.Background()
	var db *store.DB
	var err error
	switch d {
	case store.SQLite:
		db, err = store.Open(ctx, "", t.TempDir())
	case store.Postgres:
		db, err = store.Open(ctx, PostgresURL(t), "")
	}
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", d, err)
	}
	return db
}

// serverURL returns the test server's URL from the variable; without it the test is skipped
// with a message, or fails under CI=true, where every test must run.
func serverURL(t testing.TB, variable, what, example string) string {
	t.Helper()
	u := os.Getenv(variable)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI must run the %s tests", variable, what)
		}
		t.Skipf("%s tests skipped: set %s=%s to run them", what, variable, example)
	}
	return u
}

// PostgresURL creates an empty schema for the test and returns a URL whose search_path points at
// it; the schema is dropped when the test ends. It skips (or fails under CI) without PostgreSQL.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := serverURL(t, "NERUTALK_TEST_POSTGRES_URL", "PostgreSQL", "postgres://...")
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("postgres at NERUTALK_TEST_POSTGRES_URL unreachable: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("NERUTALK_TEST_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
