package chat

import (
	"context"
	"database/sql"
	"sync"

	"github.com/nerutalk/nerutalk/internal/store"
)

// btx is a write transaction of the group commit. Rows of a batch travel in one statement: as
// arrays with unnest on PostgreSQL, as one JSON array with json_each on SQLite (where parsing a
// statement with hundreds of $n parameters is quadratic). On SQLite the statements are prepared
// once on the write connection (stmtCache); on PostgreSQL pgx caches them by their text.
type btx struct {
	*sql.Tx
	pg    bool
	cache *stmtCache
}

func (s *Service) newBtx(tx *sql.Tx) *btx {
	return &btx{Tx: tx, pg: s.db.Dialect == store.Postgres, cache: s.stmts}
}

// prepared returns q prepared for the transaction (SQLite): the cached statement when there is
// one, else a statement of this transaction only, and q is prepared for the next ones.
func (b *btx) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := b.cache.lookup(q); st != nil {
		return b.StmtContext(ctx, st), nil
	}
	return b.PrepareContext(ctx, q)
}

// execRepeated runs q (prepared on SQLite) once.
func (b *btx) execRepeated(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if b.pg {
		return b.ExecContext(ctx, q, args...)
	}
	st, err := b.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// queryRepeated runs q (prepared on SQLite).
func (b *btx) queryRepeated(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if b.pg {
		return b.QueryContext(ctx, q, args...)
	}
	st, err := b.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// scanRepeated runs the one-row query q (prepared on SQLite) and scans its row.
func (b *btx) scanRepeated(ctx context.Context, q string, args []any, dest ...any) error {
	if b.pg {
		return b.QueryRowContext(ctx, q, args...).Scan(dest...)
	}
	st, err := b.prepared(ctx, q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

// stmtCache keeps the statements of the group commit prepared on SQLite's single write
// connection, so that a batch parses nothing (Tx.StmtContext reuses a statement prepared on the
// transaction's connection). A statement can only be prepared on the connection while no
// transaction holds it: lookup notes what is missing and flush, called before a transaction
// begins, prepares it.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	missing map[string]bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}, missing: map[string]bool{}}
}

func (c *stmtCache) lookup(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.stmts[q]
	if !ok {
		c.missing[q] = true
	}
	return st
}

// flush prepares the statements that were missing; the caller holds no connection of db. A
// statement that fails to prepare is left to the transactions (which report the error).
func (c *stmtCache) flush(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q := range c.missing {
		if st, err := c.db.PrepareContext(ctx, q); err == nil {
			c.stmts[q] = st
		}
		delete(c.missing, q)
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
}
