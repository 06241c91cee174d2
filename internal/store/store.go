// Package store opens NeruTalk's database — embedded SQLite (pure Go) or PostgreSQL (pgx) — and
// applies the embedded migrations. Feature packages own their SQL; they write one query text for
// both engines ($1-style placeholders work on both) and ask the DB for the few differences.
//
// Concurrency: on SQLite every write goes through one connection (W) so writers queue in Go instead
// of failing with SQLITE_BUSY, while reads use a pool (R) thanks to WAL. On PostgreSQL W and R are
// the same pool.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/nerutalk/nerutalk/internal/store/migrations"
)

// Dialect names the database engine.
type Dialect string

// The supported engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned (wrapped) when a row does not exist.
var ErrNotFound = errors.New("not found")

// DB is an open database.
type DB struct {
	W       *sql.DB // writes (and reads that must see them)
	R       *sql.DB // reads
	Dialect Dialect

	stopCheckpoints func() // SQLite: stops the background checkpointer and waits for it
}

// SQLite checkpoints: a background goroutine copies the write-ahead log into the database file
// every checkpointInterval (PASSIVE: it never waits for, nor blocks, the writer or readers), so the
// writer's commits do not pay for it. The writer still checkpoints by itself past
// writerCheckpointPages pages, a backstop should the background checkpoints fall behind.
const (
	checkpointInterval    = 200 * time.Millisecond
	writerCheckpointPages = 16384 // 64 MiB of 4 KiB pages
)

// DefaultSQLiteWriteCacheMiB is the page cache of SQLite's write connection unless an Option
// says otherwise. At every commit SQLite scans the whole cache (it truncates it to the database's
// size), so a bigger cache is not free: over 1.2 M messages 32 MiB gave 13 % more throughput than
// 64 MiB (docs/BENCHMARKS.md).
const DefaultSQLiteWriteCacheMiB = 32

// Option adjusts Open.
type Option func(*options)

type options struct {
	sqliteWriteCacheMiB int
}

// WithSQLiteWriteCache sets the page cache of SQLite's write connection, in MiB (0 keeps the
// default; ignored on PostgreSQL).
func WithSQLiteWriteCache(mib int) Option {
	return func(o *options) {
		if mib > 0 {
			o.sqliteWriteCacheMiB = mib
		}
	}
}

// Open connects to databaseURL, or to the SQLite file nerutalk.db in dataDir when databaseURL is
// empty, and checks the connection.
func Open(ctx context.Context, databaseURL, dataDir string, opts ...Option) (*DB, error) {
	o := options{sqliteWriteCacheMiB: DefaultSQLiteWriteCacheMiB}
	for _, opt := range opts {
		opt(&o)
	}
	if databaseURL == "" {
		return openSQLite(ctx, filepath.Join(dataDir, "nerutalk.db"), o)
	}
	return openPostgres(ctx, databaseURL)
}

func openSQLite(ctx context.Context, path string, o options) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: data folder: %w", err)
	}
	// temp_store(MEMORY) keeps statement journals (which a multi-row INSERT ... SELECT needs inside
	// a transaction) in memory instead of temporary files.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)" +
		"&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn+fmt.Sprintf("&_pragma=cache_size(%d)&_pragma=wal_autocheckpoint(%d)",
		-o.sqliteWriteCacheMiB*1024, writerCheckpointPages))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	// Readers lose their cache whenever a commit changed the database, which under write load is
	// all the time; 64 MiB is a ceiling, not an allocation.
	dsn += "&_pragma=cache_size(-65536)"
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	ck, err := sql.Open("sqlite", dsn+"&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	ck.SetMaxOpenConns(1)
	return &DB{W: w, R: r, Dialect: SQLite, stopCheckpoints: startCheckpoints(ck)}, nil
}

// startCheckpoints runs PASSIVE checkpoints on their own connection every checkpointInterval
// until the returned function is called; that function runs a last checkpoint and closes the
// connection.
func startCheckpoints(ck *sql.DB) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(checkpointInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				// A failed checkpoint is retried at the next tick; the writer's own backstop
				// bounds the log meanwhile.
				_, _ = ck.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			case <-stop:
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		_, _ = ck.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		ck.Close()
	}
}

// A canceled context does not cost a connection. pgx's default closes the connection the moment
// the context of its query is canceled, and a client that goes away cancels the request's (or
// the WebSocket's) context mid-query all the time: a flood of short-lived connections closed
// half a pool a second in the bystander benchmark, and every replacement cost a PostgreSQL backend
// start and a cold catalog cache, which stalled every other user's queries for 100 ms and more
// (docs/BENCHMARKS.md). Instead a query whose context is canceled may finish for cancelGrace; one
// still running then is canceled by PostgreSQL (a cancel request, the connection stays usable),
// and only a server that does not answer that within cancelDeadline loses the connection.
const (
	cancelGrace    = 500 * time.Millisecond
	cancelDeadline = 5 * time.Second
)

func openPostgres(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: cancelGrace, DeadlineDelay: cancelDeadline}
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	return &DB{W: db, R: db, Dialect: Postgres}, nil
}

// Close closes the connections.
func (db *DB) Close() error {
	if db.stopCheckpoints != nil {
		db.stopCheckpoints()
		db.stopCheckpoints = nil
	}
	err := db.W.Close()
	if db.R != db.W {
		err = errors.Join(err, db.R.Close())
	}
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return db.R.PingContext(ctx)
}

// Migrate applies every embedded migration that has not been applied yet. It is idempotent and
// safe to run from several nodes at once on PostgreSQL (goose takes an advisory lock).
func (db *DB) Migrate(ctx context.Context) error { return db.migrateTo(ctx, 0) }

// migrateTo applies the migrations up to version (all of them when version is 0).
func (db *DB) migrateTo(ctx context.Context, version int64) error {
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if db.Dialect == Postgres {
		dialect = goose.DialectPostgres
		// Nodes that start together take turns; the lock is per schema so that isolated test
		// schemas do not wait for each other.
		var schema string
		if err := db.W.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("store: migrations: %w", err)
		}
		locker, err := lock.NewPostgresSessionLocker(
			lock.WithLockID(int64(crc64.Checksum([]byte("nerutalk:"+schema), crc64.MakeTable(crc64.ECMA))>>1)),
			lock.WithLockTimeout(1, 120))
		if err != nil {
			return fmt.Errorf("store: migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	sub, err := fs.Sub(migrations.FS, ".")
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	opts = append(opts, goose.WithGoMigrations(clientKeyMigration(db.Dialect)))
	if db.Dialect == SQLite {
		// goose holds a connection while it runs a Go migration on another one: the single
		// write connection gets a second for the duration.
		db.W.SetMaxOpenConns(2)
		defer db.W.SetMaxOpenConns(1)
	}
	p, err := goose.NewProvider(dialect, db.W, sub, opts...)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if version > 0 {
		_, err = p.UpTo(ctx, version)
	} else {
		_, err = p.Up(ctx)
	}
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// Tx runs fn in a write transaction, committing when it returns nil.
//
// ctx bounds the wait for a connection and the statements fn runs with it, not the transaction
// itself: database/sql rolls a transaction back with the context it began with, and pgx, handed an
// already canceled context for that ROLLBACK, closes the connection instead (see openPostgres for
// why a connection matters). So a caller that goes away mid-transaction makes its next statement
// fail, fn returns, and the rollback (or the commit, when fn had finished) runs to completion.
// A caller's deadline still bounds the transaction, cancelDeadline later (a database that hangs
// does not hold the connection, or a caller such as the group commit, for ever).
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	conn, err := db.W.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer conn.Close() // back to the pool, after the transaction ended
	txCtx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		txCtx, cancel = context.WithDeadline(txCtx, d.Add(cancelDeadline))
		defer cancel()
	}
	tx, err := conn.BeginTx(txCtx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique or primary-key constraint failure.
func IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsForeignKeyViolation reports whether err is a foreign-key constraint failure.
func IsForeignKeyViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// Like escapes s for use in a LIKE pattern with ESCAPE '\'.
func Like(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Millis converts t to Unix milliseconds, the way every time is stored.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// Time converts stored Unix milliseconds back to a UTC time.
func Time(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Setting returns the server setting name, creating it with generate() on first use. Several nodes
// starting at once agree on one value: the first insert wins and everyone reads it back.
func (db *DB) Setting(ctx context.Context, name string, generate func() (string, error)) (string, error) {
	var v string
	err := db.W.QueryRowContext(ctx, `SELECT value FROM server_settings WHERE name = $1`, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: setting %s: %w", name, err)
	}
	nv, err := generate()
	if err != nil {
		return "", fmt.Errorf("store: setting %s: %w", name, err)
	}
	if _, err := db.W.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, nv); err != nil {
		return "", fmt.Errorf("store: setting %s: %w", name, err)
	}
	if err := db.W.QueryRowContext(ctx, `SELECT value FROM server_settings WHERE name = $1`, name).Scan(&v); err != nil {
		return "", fmt.Errorf("store: setting %s: %w", name, err)
	}
	return v, nil
}
