package store

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"

	"github.com/pressly/goose/v3"
)

// ClientKey is the 64-bit key under which SQLite indexes a message's idempotency pair (sender_id,
// client_id): FNV-1a of the two, fixed forever (stored keys must keep matching). Distinct pairs
// may share a key; readers compare the pair itself.
//
// Why: a UNIQUE (sender_id, client_id) index holds two 36-character strings per message, about
// 85 bytes, and apps send random (UUIDv4) client ids, so every new message lands on a random page
// of it. Past a million messages that index outgrows SQLite's page cache and each send pays a
// page read; an index of 8-byte keys is five times smaller and stays cached five times longer.
// PostgreSQL keeps its UNIQUE (sender_id, client_id) constraint, which also guards nodes that
// send at once.
func ClientKey(senderID, clientID string) int64 {
	h := fnv.New64a()
	h.Write([]byte(senderID))
	h.Write([]byte{0})
	h.Write([]byte(clientID))
	return int64(h.Sum64())
}

// clientKeyVersion is the Go migration that moves SQLite's idempotency index to ClientKey.
const clientKeyVersion = 6

// clientKeyMigration rebuilds SQLite's messages table without its UNIQUE (sender_id, client_id)
// constraint (SQLite cannot drop a table constraint) and with a client_key column and index; on
// PostgreSQL it does nothing. It is safe to run again after a crash: a table that has client_key
// already is left alone.
func clientKeyMigration(d Dialect) *goose.Migration {
	up := func(ctx context.Context, db *sql.DB) error {
		if d != SQLite {
			return nil
		}
		return rebuildMessagesWithClientKey(ctx, db)
	}
	down := func(context.Context, *sql.DB) error {
		return fmt.Errorf("store: migration %d cannot be undone", clientKeyVersion)
	}
	return goose.NewGoMigration(clientKeyVersion, &goose.GoFunc{RunDB: up}, &goose.GoFunc{RunDB: down})
}

// rebuildMessagesWithClientKey follows SQLite's procedure for a schema change that ALTER TABLE
// cannot make (https://www.sqlite.org/lang_altertable.html#otheralter): foreign keys off on the
// connection, a new table filled from the old one, the old one dropped, the new one renamed, the
// foreign keys checked, all in one transaction.
func rebuildMessagesWithClientKey(ctx context.Context, db *sql.DB) (err error) {
	conn, err := db.Conn(ctx) // PRAGMA foreign_keys is per connection: keep one for the whole change
	if err != nil {
		return err
	}
	defer conn.Close()
	var done int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'client_key'`).Scan(&done); err != nil {
		return fmt.Errorf("client_key: %w", err)
	}
	if done > 0 {
		return nil
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return fmt.Errorf("client_key: %w", err)
	}
	defer func() {
		if _, ferr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); ferr != nil && err == nil {
			err = fmt.Errorf("client_key: %w", ferr)
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("client_key: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	steps := []string{
		`CREATE TABLE messages_new (
			id         TEXT PRIMARY KEY,
			chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
			seq        BIGINT NOT NULL,
			sender_id  TEXT NOT NULL,
			client_id  TEXT NOT NULL,
			client_key BIGINT NOT NULL,
			kind       TEXT NOT NULL CHECK (kind IN ('text', 'image', 'video', 'audio', 'file', 'sticker', 'gif', 'location', 'system')),
			text       TEXT NOT NULL DEFAULT '',
			reply_to   TEXT,
			created_at BIGINT NOT NULL,
			edited_at  BIGINT,
			deleted_at BIGINT,
			UNIQUE (chat_id, seq)
		)`,
		`INSERT INTO messages_new (rowid, id, chat_id, seq, sender_id, client_id, client_key, kind, text, reply_to, created_at, edited_at, deleted_at)
			SELECT rowid, id, chat_id, seq, sender_id, client_id, 0, kind, text, reply_to, created_at, edited_at, deleted_at FROM messages`,
	}
	for _, q := range steps {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("client_key: %w", err)
		}
	}
	if err := fillClientKeys(ctx, tx); err != nil {
		return err
	}
	for _, q := range []string{
		`DROP TABLE messages`,
		`ALTER TABLE messages_new RENAME TO messages`,
		`CREATE INDEX messages_client_key ON messages (client_key)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("client_key: %w", err)
		}
	}
	var violations int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&violations); err != nil {
		return fmt.Errorf("client_key: foreign key check: %w", err)
	}
	if violations > 0 {
		return fmt.Errorf("client_key: %d foreign key violations after the rebuild", violations)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("client_key: %w", err)
	}
	return nil
}

// fillClientKeys computes client_key for every row of messages_new, a chunk of rows at a time
// (no cursor stays open across the updates, and memory does not grow with the table).
func fillClientKeys(ctx context.Context, tx *sql.Tx) error {
	sel, err := tx.PrepareContext(ctx, `SELECT rowid, sender_id, client_id FROM messages_new WHERE rowid > $1 ORDER BY rowid LIMIT 10000`)
	if err != nil {
		return fmt.Errorf("client_key: %w", err)
	}
	defer sel.Close()
	upd, err := tx.PrepareContext(ctx, `UPDATE messages_new SET client_key = $1 WHERE rowid = $2`)
	if err != nil {
		return fmt.Errorf("client_key: %w", err)
	}
	defer upd.Close()
	type row struct{ rowid, key int64 }
	var chunk []row
	for after := int64(-1 << 63); ; {
		chunk = chunk[:0]
		rows, err := sel.QueryContext(ctx, after)
		if err != nil {
			return fmt.Errorf("client_key: %w", err)
		}
		for rows.Next() {
			var r row
			var sender, client string
			if err := rows.Scan(&r.rowid, &sender, &client); err != nil {
				rows.Close()
				return fmt.Errorf("client_key: %w", err)
			}
			r.key = ClientKey(sender, client)
			chunk = append(chunk, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("client_key: %w", err)
		}
		if len(chunk) == 0 {
			return nil
		}
		for _, r := range chunk {
			if _, err := upd.ExecContext(ctx, r.key, r.rowid); err != nil {
				return fmt.Errorf("client_key: %w", err)
			}
		}
		after = chunk[len(chunk)-1].rowid
	}
}
