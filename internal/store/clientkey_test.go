package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nerutalk/nerutalk/internal/store"
)

// Migration 6 rebuilds SQLite's messages table around client_key: every row, its rowid and its
// attachments survive, the keys are filled in, the old UNIQUE (sender_id, client_id) is gone, and
// foreign keys are enforced again afterwards.
func TestClientKeyMigrationKeepsMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data")
	db, err := store.Open(ctx, "", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	seed := []string{
		`INSERT INTO users (id, username, email, password_hash, display_name, username_key, display_key, created_at, updated_at) VALUES ('u1', 'alice', 'a@example.com', 'x', 'Alice', 'alice', 'alice', 1, 1)`,
		`INSERT INTO chats (id, type, title, created_by, created_at, updated_at, last_seq, last_message_at) VALUES ('c1', 'group', 'g', 'u1', 1, 1, 3, 1)`,
		`INSERT INTO chat_members (chat_id, user_id, role, joined_at) VALUES ('c1', 'u1', 'owner', 1)`,
		`INSERT INTO messages (id, chat_id, seq, sender_id, client_id, kind, text, created_at) VALUES ('m1', 'c1', 1, 'u1', 'k1', 'text', 'one', 1)`,
		`INSERT INTO messages (id, chat_id, seq, sender_id, client_id, kind, text, created_at, deleted_at) VALUES ('m2', 'c1', 2, 'u1', 'k2', 'text', '', 2, 5)`,
		`INSERT INTO messages (id, chat_id, seq, sender_id, client_id, kind, text, reply_to, created_at, edited_at) VALUES ('m3', 'c1', 3, 'u1', 'k3', 'file', 'three', 'm1', 3, 4)`,
		`INSERT INTO message_attachments (message_id, file_id, position) VALUES ('m3', 'f1', 0)`,
	}
	for _, q := range seed {
		if _, err := db.W.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	rows, err := db.R.QueryContext(ctx, `SELECT id, seq, client_id, client_key, text, coalesce(reply_to, ''), coalesce(edited_at, 0), coalesce(deleted_at, 0) FROM messages ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id              string
		seq             int64
		client          string
		key             int64
		text, reply     string
		edited, deleted int64
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.seq, &r.client, &r.key, &r.text, &r.reply, &r.edited, &r.deleted); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	rows.Close()
	want := []row{
		{"m1", 1, "k1", store.ClientKey("u1", "k1"), "one", "", 0, 0},
		{"m2", 2, "k2", store.ClientKey("u1", "k2"), "", "", 0, 5},
		{"m3", 3, "k3", store.ClientKey("u1", "k3"), "three", "m1", 4, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("rows %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	var atts int
	if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM message_attachments WHERE message_id = 'm3'`).Scan(&atts); err != nil || atts != 1 {
		t.Errorf("attachments of m3: %d (%v), want 1", atts, err)
	}
	var idx int
	if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM pragma_index_list('messages') WHERE name = 'messages_client_key'`).Scan(&idx); err != nil || idx != 1 {
		t.Errorf("messages_client_key index: %d (%v)", idx, err)
	}
	// The pair is no longer a constraint of its own (the writer checks it by key) ...
	if _, err := db.W.ExecContext(ctx, `INSERT INTO messages (id, chat_id, seq, sender_id, client_id, client_key, kind, created_at) VALUES ('m4', 'c1', 4, 'u1', 'k1', 0, 'text', 5)`); err != nil {
		t.Errorf("insert with a used pair: %v", err)
	}
	// ... while (chat_id, seq) still is, and foreign keys are enforced on the write connection again.
	if _, err := db.W.ExecContext(ctx, `INSERT INTO messages (id, chat_id, seq, sender_id, client_id, client_key, kind, created_at) VALUES ('m5', 'c1', 4, 'u1', 'k5', 0, 'text', 5)`); !store.IsUniqueViolation(err) {
		t.Errorf("duplicate seq: %v, want a unique violation", err)
	}
	if _, err := db.W.ExecContext(ctx, `INSERT INTO message_attachments (message_id, file_id, position) VALUES ('nope', 'f2', 0)`); !store.IsForeignKeyViolation(err) {
		t.Errorf("attachment of a missing message: %v, want a foreign key violation", err)
	}
	if _, err := db.W.ExecContext(ctx, `DELETE FROM chats WHERE id = 'c1'`); err != nil {
		t.Fatal(err)
	}
	if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM message_attachments`).Scan(&atts); err != nil || atts != 0 {
		t.Errorf("attachments after the chat was deleted: %d (%v), want 0 (cascade)", atts, err)
	}
	if err := db.Migrate(ctx); err != nil { // nothing left to do
		t.Fatalf("migrate again: %v", err)
	}
}

// clientKeyGolden is FNV-1a 64 of the pair in TestClientKeyIsStable, computed apart.
const clientKeyGolden = 8195527500100220406

func TestClientKeyIsStable(t *testing.T) {
	t.Parallel()
	// Stored keys must keep matching: this value may never change.
	if got := store.ClientKey("0193c4a2-0000-7000-8000-000000000001", "6f9619ff-8b86-d011-b42d-00c04fc964ff"); got != clientKeyGolden {
		t.Errorf("ClientKey = %d, want %d", got, clientKeyGolden)
	}
	if store.ClientKey("a", "bc") == store.ClientKey("ab", "c") {
		t.Error("the separator does not separate")
	}
}
