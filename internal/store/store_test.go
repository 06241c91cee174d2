package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

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
