package storetest_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func TestEachRunsEveryEngineOnAFreshDatabase(t *testing.T) {
	t.Parallel()
	var ran []string
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ran = append(ran, string(db.Dialect))
		var n int
		if err := db.R.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM server_settings`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("fresh database: %d settings (err %v), want an empty migrated database", n, err)
		}
		if _, err := db.W.ExecContext(context.Background(), `INSERT INTO server_settings (name, value) VALUES ('mark', 'x')`); err != nil {
			t.Fatal(err)
		}
	})
	if len(ran) == 0 || ran[0] != string(store.SQLite) {
		t.Errorf("engines run: %v, want sqlite first", ran)
	}
}

// Each PostgreSQL test gets its own schema, dropped when the test ends.
func TestPostgresURLIsolatesAndCleansUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schemaOf := func(t *testing.T, url string) string {
		t.Helper()
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var s string
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&s); err != nil {
			t.Fatalf("current_schema: %v", err)
		}
		return s
	}
	var schemas []string
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			schemas = append(schemas, schemaOf(t, storetest.PostgresURL(t)))
		})
	}
	if t.Skipped() || len(schemas) != 2 {
		return
	}
	if schemas[0] == schemas[1] || !strings.HasPrefix(schemas[0], "t_") {
		t.Fatalf("schemas %v: want two distinct test schemas", schemas)
	}
	// The subtests are over: their schemas are gone.
	admin, err := sql.Open("pgx", os.Getenv("NERUTALK_TEST_POSTGRES_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name IN ($1, $2)`,
		schemas[0], schemas[1]).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d test schemas left behind (err %v)", n, err)
	}
}

// Without PostgreSQL the tests are skipped with a message, except under CI=true where they fail.
// The cases run this test binary again with a controlled environment.
func TestPostgresURLWithoutServer(t *testing.T) {
	if os.Getenv("STORETEST_CHILD") == "1" {
		storetest.PostgresURL(t)
		t.Log("CHILD GOT A URL")
		return
	}
	t.Parallel()
	tests := []struct {
		name     string
		env      []string
		wantFail bool
		want     string
	}{
		{"unset: skipped with a message", nil, false, "PostgreSQL tests skipped: set NERUTALK_TEST_POSTGRES_URL"},
		{"unset under CI: fails", []string{"CI=true"}, true, "NERUTALK_TEST_POSTGRES_URL is not set; CI must run"},
		{"unreachable: fails", []string{"NERUTALK_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:1/x?connect_timeout=2"}, true, "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestPostgresURLWithoutServer$", "-test.v", "-test.count=1")
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "NERUTALK_TEST_POSTGRES_URL=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, append([]string{"STORETEST_CHILD=1"}, tt.env...)...)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tt.wantFail {
				t.Fatalf("child failed = %v (%v), want %v:\n%s", failed, err, tt.wantFail, out)
			}
			if !strings.Contains(string(out), tt.want) || strings.Contains(string(out), "CHILD GOT A URL") {
				t.Errorf("child output lacks %q or went on:\n%s", tt.want, out)
			}
			if !tt.wantFail && !strings.Contains(string(out), "--- SKIP") {
				t.Errorf("child was not skipped:\n%s", out)
			}
		})
	}
}
