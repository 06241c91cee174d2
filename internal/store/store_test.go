package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func TestMigrateIsIdempotentAndErrorsAreClassified(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		insert := func() error {
			_, err := db.W.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, $2)`, "k", "v")
			return err
		}
		if err := insert(); err != nil {
			t.Fatalf("insert: %v", err)
		}
		err := insert()
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert: got %v, want a unique violation", err)
		}
		// A failing transaction leaves nothing behind.
		boom := errors.New("boom")
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, $2)`, "k2", "v"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("tx: got %v, want boom", err)
		}
		var n int
		if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM server_settings WHERE name = $1`, "k2").Scan(&n); err != nil || n != 0 {
			t.Fatalf("rolled back row: n=%d err=%v", n, err)
		}
	})
}

func TestLikeEscapes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"a_b": `a\_b`, "100%": `100\%`, `c:\x`: `c:\\x`, "plain": "plain"} {
		if got := store.Like(in); got != want {
			t.Errorf("Like(%q) = %q, want %q", in, got, want)
		}
	}
}

// reopenable returns a way to open the same (fresh, unmigrated) database several times.
func reopenable(t *testing.T, d store.Dialect) func() *store.DB {
	t.Helper()
	var url, dir string
	if d == store.Postgres {
		url = storetest.PostgresURL(t)
	} else {
		dir = t.TempDir()
	}
	return func() *store.DB {
		t.Helper()
		db, err := store.Open(context.Background(), url, dir)
		if err != nil {
			t.Fatalf("open %s: %v", d, err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate %s: %v", d, err)
		}
		return db
	}
}

func TestSettingIsGeneratedOnceAndKept(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			open := reopenable(t, d)
			db := open()
			calls := 0
			gen := func(v string) func() (string, error) {
				return func() (string, error) { calls++; return v, nil }
			}
			first, err := db.Setting(ctx, "secret", gen("one"))
			if err != nil || first != "one" {
				t.Fatalf("first Setting = %q, %v; want one", first, err)
			}
			again, err := db.Setting(ctx, "secret", gen("two"))
			if err != nil || again != "one" || calls != 1 {
				t.Fatalf("second Setting = %q, %v after %d generations; want one, generated once", again, err, calls)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			// A restart (a new connection to the same database) reads the kept value.
			kept, err := open().Setting(ctx, "secret", gen("three"))
			if err != nil || kept != "one" || calls != 1 {
				t.Fatalf("after reopening: Setting = %q, %v; want one, not regenerated", kept, err)
			}
		})
	}
}

func TestSettingConcurrentFirstUseAgrees(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		const n = 8
		var wg sync.WaitGroup
		got := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				got[i], errs[i] = db.Setting(context.Background(), "node_key", func() (string, error) {
					return fmt.Sprintf("candidate-%d", i), nil
				})
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if got[i] != got[0] {
				t.Fatalf("callers disagree: %q and %q", got[0], got[i])
			}
		}
	})
}

func TestSettingGenerateError(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		boom := errors.New("no entropy")
		_, err := db.Setting(context.Background(), "x", func() (string, error) { return "", boom })
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want the generator's error wrapped", err)
		}
		var n int
		if err := db.R.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM server_settings WHERE name = $1`, "x").Scan(&n); err != nil || n != 0 {
			t.Fatalf("a failed generation stored a row: n=%d err=%v", n, err)
		}
	})
}

func TestForeignKeysAreEnforced(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		for _, q := range []string{
			`CREATE TABLE fk_parent (id TEXT PRIMARY KEY)`,
			`CREATE TABLE fk_child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES fk_parent (id))`,
		} {
			if _, err := db.W.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		_, err := db.W.ExecContext(ctx, `INSERT INTO fk_child (id, parent_id) VALUES ($1, $2)`, "c1", "nobody")
		if !store.IsForeignKeyViolation(err) {
			t.Fatalf("orphan insert: got %v, want a foreign-key violation", err)
		}
		if store.IsUniqueViolation(err) {
			t.Error("a foreign-key violation is reported as a unique violation")
		}
	})
}

func TestClassifiersOnOtherErrors(t *testing.T) {
	t.Parallel()
	for _, err := range []error{nil, errors.New("x"), sql.ErrNoRows, fmt.Errorf("wrapped: %w", store.ErrNotFound)} {
		if store.IsUniqueViolation(err) || store.IsForeignKeyViolation(err) {
			t.Errorf("%v is classified as a constraint violation", err)
		}
	}
}

func TestSQLiteConnections(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	for name, conn := range map[string]*sql.DB{"W": db.W, "R": db.R} {
		for _, c := range []struct{ pragma, want string }{
			{"journal_mode", "wal"}, {"foreign_keys", "1"}, {"busy_timeout", "10000"}, {"synchronous", "1"},
			{"temp_store", "2"},
		} {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", name, c.pragma, err)
			}
			if got != c.want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", name, c.pragma, got, c.want)
			}
		}
	}
	if got := db.W.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("W has %d connections, want exactly 1 (the single writer)", got)
	}
	if got := db.R.Stats().MaxOpenConnections; got < 2 {
		t.Errorf("R has %d connections, want a pool", got)
	}
	if _, err := db.R.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ('r', 'r')`); err == nil {
		t.Error("a write through R succeeded; R must be read-only")
	}
}

// The background checkpointer copies committed pages from the write-ahead log into the database
// file without the writer's help (its own automatic checkpoints start only past 64 MiB of log).
func TestSQLiteBackgroundCheckpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages int
	if err := db.W.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&pages); err != nil || pages != 16384 {
		t.Fatalf("writer wal_autocheckpoint = %d, %v; want 16384", pages, err)
	}
	path := filepath.Join(dir, "nerutalk.db")
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	if _, err := db.W.ExecContext(ctx, `CREATE TABLE filler (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 64; i++ {
		if _, err := db.W.ExecContext(ctx, `INSERT INTO filler (b) VALUES (randomblob(4096))`); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for size() < before+64*4096 {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes (was %d): the log was not checkpointed", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Concurrent writers queue on the single write connection instead of failing with SQLITE_BUSY.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		const writers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					name := fmt.Sprintf("w%d-%d", w, i)
					var err error
					if i%2 == 0 {
						_, err = db.W.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, $2)`, name, "v")
					} else {
						err = db.Tx(ctx, func(tx *sql.Tx) error {
							_, err := tx.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, $2)`, name, "v")
							return err
						})
					}
					if err != nil {
						errs <- fmt.Errorf("%s: %w", name, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var n int
		if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM server_settings WHERE name LIKE 'w%'`).Scan(&n); err != nil || n != writers*each {
			t.Errorf("rows = %d (err %v), want %d", n, err, writers*each)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, dir, want string
	}{
		{"data folder under a file", "", filepath.Join(file, "data"), "store: data folder"},
		{"postgres that does not answer", "postgres://postgres@127.0.0.1:1/nerutalk?sslmode=disable&connect_timeout=2", "", "store: connect to postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, err := store.Open(context.Background(), tt.url, tt.dir)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestMillisRoundTrip(t *testing.T) {
	t.Parallel()
	in := time.Date(2026, 11, 25, 19, 23, 1, 987_654_321, time.FixedZone("x", 3600))
	got := store.Time(store.Millis(in))
	if want := in.Truncate(time.Millisecond).UTC(); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Time(Millis(%v)) = %v, want %v in UTC", in, got, want)
	}
}

// The LIKE escaping works in real queries on both engines.
func TestLikeInQueries(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		for _, name := range []string{"50%_off", "50xyoff", `back\slash`, "backxslash"} {
			if _, err := db.W.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, '')`, name); err != nil {
				t.Fatal(err)
			}
		}
		for prefix, want := range map[string]int{"50%_": 1, `back\`: 1, "50": 2} {
			var n int
			err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM server_settings WHERE name LIKE $1 ESCAPE '\'`, store.Like(prefix)+"%").Scan(&n)
			if err != nil || n != want {
				t.Errorf("LIKE %q: %d rows (err %v), want %d", prefix, n, err, want)
			}
		}
	})
}

func TestSQLiteWriteCacheSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		opts []store.Option
		want int64
	}{
		{nil, -store.DefaultSQLiteWriteCacheMiB * 1024},
		{[]store.Option{store.WithSQLiteWriteCache(8)}, -8 * 1024},
		{[]store.Option{store.WithSQLiteWriteCache(0)}, -store.DefaultSQLiteWriteCacheMiB * 1024},
	} {
		db, err := store.Open(ctx, "", t.TempDir(), tt.opts...)
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		if err := db.W.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&got); err != nil || got != tt.want {
			t.Errorf("write connection cache_size = %d (%v), want %d", got, err, tt.want)
		}
		db.Close()
	}
}

// A query whose context is canceled does not cost its connection on PostgreSQL: one that ends
// within the grace ends normally, a longer one is canceled by the server, and either way the
// connection goes on serving queries on the same backend (pgx's default closes the connection at
// once, and each replacement is a new backend with cold caches; see openPostgres). The context is
// canceled once the query is seen running, so the outcome does not depend on timing.
func TestCanceledQueryKeepsItsConnection(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	bg := context.Background()
	tests := []struct {
		name    string
		sleep   string // pg_sleep's seconds
		wantErr bool
	}{
		{"ends within the grace", "0.2", false},
		{"canceled by the server", "30", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := db.W.Conn(bg) // one connection: if it were closed, it would not come back
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var before, after int
			if err := conn.QueryRowContext(bg, `SELECT pg_backend_pid()`).Scan(&before); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			go func() { // cancel once the backend runs the query (seen from another connection)
				defer cancel()
				for ctx.Err() == nil {
					var running bool
					err := db.W.QueryRowContext(bg, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
						WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%')`, before).Scan(&running)
					if err != nil || running {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			var v int
			err = conn.QueryRowContext(ctx, `SELECT 7 FROM pg_sleep(`+tt.sleep+`)`).Scan(&v)
			if tt.wantErr && err == nil {
				t.Fatal("a 30 s query whose context was canceled succeeded")
			}
			// database/sql may still answer context.Canceled for a query that ended in time (it
			// closes the rows when the context ends): what matters is the connection.
			if !tt.wantErr && err != nil && !errors.Is(err, context.Canceled) || err == nil && v != 7 {
				t.Fatalf("query = %d, %v; want 7 or context.Canceled", v, err)
			}
			if err := conn.QueryRowContext(bg, `SELECT pg_backend_pid()`).Scan(&after); err != nil || after != before {
				t.Errorf("after the canceled query: backend %d, %v; want %d: the connection was closed", after, err, before)
			}
		})
	}
}

// A transaction whose context is canceled before it ends does not cost its connection either:
// database/sql rolls it back with that canceled context, which pgx cannot send and answers by
// closing the connection; DB.Tx keeps the cancellation for the statements only.
func TestCanceledTransactionKeepsItsConnection(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		db.W.SetMaxOpenConns(1)
		pid := func() string {
			t.Helper()
			if db.Dialect != store.Postgres {
				return "" // SQLite has no backend to tell apart
			}
			var p string
			if err := db.W.QueryRowContext(context.Background(), `SELECT pg_backend_pid()::text`).Scan(&p); err != nil {
				t.Fatalf("backend pid: %v", err)
			}
			return p
		}
		before := pid()
		ctx, cancel := context.WithCancel(context.Background())
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ('canceled', 'x')`); err != nil {
				return err
			}
			cancel()
			_, err := tx.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ('canceled2', 'x')`)
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Tx = %v, want context.Canceled from the statement after the cancel", err)
		}
		var n int
		if err := db.W.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM server_settings WHERE name LIKE 'canceled%'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("rows of the canceled transaction = %d (err %v), want 0: it was rolled back", n, err)
		}
		if after := pid(); after != before {
			t.Errorf("backend %s after the canceled transaction, %s before: the connection was closed", after, before)
		}
	})
}
