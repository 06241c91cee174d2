package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nerutalk/nerutalk/internal/store"
)

// querier is what the SQL helpers need: a transaction, or a connection pool for plain reads.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// chatRow is a row of chats.
type chatRow struct {
	ID            string
	Type          Type
	Title         string
	CreatedAt     int64
	LastSeq       int64
	LastMessageAt int64
	// MembersVersion counts the changes of members, roles and title (see event.membersVersion).
	MembersVersion int64
}

// memberRow is a row of chat_members.
type memberRow struct {
	UserID       string
	Role         Role
	JoinedAt     int64
	ReadSeq      int64
	DeliveredSeq int64
}

// placeholders returns "$from, $from+1, ..., $from+n-1".
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

const chatCols = `id, type, title, created_at, last_seq, last_message_at, members_version`

func scanChat(sc interface{ Scan(...any) error }) (chatRow, error) {
	var c chatRow
	err := sc.Scan(&c.ID, &c.Type, &c.Title, &c.CreatedAt, &c.LastSeq, &c.LastMessageAt, &c.MembersVersion)
	return c, err
}

// getChat reads one chat.
func getChat(ctx context.Context, q querier, id string) (chatRow, error) {
	c, err := scanChat(q.QueryRowContext(ctx, `SELECT `+chatCols+` FROM chats WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("chat %s: %w", id, store.ErrNotFound)
	}
	return c, err
}

// lockChat locks the chat's row for the rest of the transaction (by writing updated_at) and
// returns it. Every transaction that changes a chat's members or messages takes this lock first,
// before any chat_members row, so that transactions on PostgreSQL never wait on each other in a
// cycle; on SQLite every write is serialized anyway.
func lockChat(ctx context.Context, tx *sql.Tx, id string, now int64) (chatRow, error) {
	c, err := scanChat(tx.QueryRowContext(ctx,
		`UPDATE chats SET updated_at = $2, members_version = members_version + 1 WHERE id = $1 RETURNING `+chatCols, id, now))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("chat %s: %w", id, store.ErrNotFound)
	}
	return c, err
}

const memberCols = `user_id, role, joined_at, read_seq, delivered_seq`

func scanMember(sc interface{ Scan(...any) error }) (memberRow, error) {
	var m memberRow
	err := sc.Scan(&m.UserID, &m.Role, &m.JoinedAt, &m.ReadSeq, &m.DeliveredSeq)
	return m, err
}

// getMember reads one membership.
func getMember(ctx context.Context, q querier, chatID, userID string) (memberRow, error) {
	m, err := scanMember(q.QueryRowContext(ctx,
		`SELECT `+memberCols+` FROM chat_members WHERE chat_id = $1 AND user_id = $2`, chatID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("member %s of %s: %w", userID, chatID, store.ErrNotFound)
	}
	return m, err
}

// listMembers reads a chat's members, oldest first.
func listMembers(ctx context.Context, q querier, chatID string) ([]memberRow, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT `+memberCols+` FROM chat_members WHERE chat_id = $1 ORDER BY joined_at, user_id`, chatID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []memberRow
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// insertChat creates the chat row; directKey is "" for a group.
func insertChat(ctx context.Context, tx *sql.Tx, c chatRow, directKey, createdBy string) error {
	var dk sql.NullString
	if directKey != "" {
		dk = sql.NullString{String: directKey, Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO chats (id, type, title, direct_key, created_by, created_at, updated_at, last_seq, last_message_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6, 0, $6)`, c.ID, c.Type, c.Title, dk, createdBy, c.CreatedAt)
	return err
}

// directChatID returns the id of the direct chat with the key, or ErrNotFound.
func directChatID(ctx context.Context, q querier, directKey string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM chats WHERE direct_key = $1`, directKey).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("direct chat: %w", store.ErrNotFound)
	}
	return id, err
}

// insertMembers adds users with role, skipping those who are members already, and returns the
// ones it added. New members start with read_seq = delivered_seq = readSeq (the chat's last_seq):
// the history before they joined does not count as unread.
func insertMembers(ctx context.Context, tx *sql.Tx, chatID string, users []string, role Role, joinedAt, readSeq int64) ([]string, error) {
	if len(users) == 0 {
		return nil, nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO chat_members (chat_id, user_id, role, joined_at, read_seq, delivered_seq) VALUES `)
	args := []any{chatID, role, joinedAt, readSeq}
	for i, u := range users {
		if i > 0 {
			b.WriteString(", ")
		}
		args = append(args, u)
		fmt.Fprintf(&b, "($1, $%d, $2, $3, $4, $4)", len(args))
	}
	b.WriteString(` ON CONFLICT (chat_id, user_id) DO NOTHING RETURNING user_id`)
	rows, err := tx.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var added []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		added = append(added, u)
	}
	return added, rows.Err()
}

func countMembers(ctx context.Context, q querier, chatID string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM chat_members WHERE chat_id = $1`, chatID).Scan(&n)
	return n, err
}

func deleteMember(ctx context.Context, tx *sql.Tx, chatID, userID string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2`, chatID, userID)
	return err
}

func setRole(ctx context.Context, tx *sql.Tx, chatID, userID string, role Role) error {
	_, err := tx.ExecContext(ctx, `UPDATE chat_members SET role = $3 WHERE chat_id = $1 AND user_id = $2`, chatID, userID, role)
	return err
}

// successor is the member who inherits ownership when the owner leaves: the longest-standing
// admin, else the longest-standing member. ErrNotFound when the leaver is the last member.
func successor(ctx context.Context, tx *sql.Tx, chatID, leaver string) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT user_id FROM chat_members WHERE chat_id = $1 AND user_id <> $2
		ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1`, chatID, leaver).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", store.ErrNotFound
	}
	return id, err
}

// deleteChat deletes a chat with its members and messages and returns the files its messages
// carried, to release once the transaction has committed.
func deleteChat(ctx context.Context, tx *sql.Tx, chatID string) ([]string, error) {
	// Children first: the schema cascades, but explicit deletes do not depend on SQLite's
	// foreign_keys pragma being on for the connection.
	released, err := detachMessages(ctx, tx, `chat_id = $1`, chatID)
	if err != nil {
		return nil, err
	}
	for _, q := range []string{
		`DELETE FROM messages WHERE chat_id = $1`,
		`DELETE FROM chat_members WHERE chat_id = $1`,
		`DELETE FROM chats WHERE id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, q, chatID); err != nil {
			return nil, err
		}
	}
	return released, nil
}

func setTitle(ctx context.Context, tx *sql.Tx, chatID, title string) error {
	_, err := tx.ExecContext(ctx, `UPDATE chats SET title = $2 WHERE id = $1`, chatID, title)
	return err
}

// viewRow is a chat with the caller's membership and the chat's last message.
type viewRow struct {
	chat      chatRow
	directKey string // "<user id>:<user id>" of a direct chat, "" for a group
	member    memberRow
	lastMsg   *Message
}

// viewSelect reads chats joined with the caller's membership ($1) and the last message.
const viewSelect = `SELECT c.id, c.type, c.title, c.created_at, c.last_seq, c.last_message_at, COALESCE(c.direct_key, ''),
	m.user_id, m.role, m.joined_at, m.read_seq, m.delivered_seq,
	l.id, l.chat_id, l.seq, l.sender_id, l.client_id, l.kind, l.text, l.reply_to, l.created_at, l.edited_at, l.deleted_at
	FROM chat_members m
	JOIN chats c ON c.id = m.chat_id
	LEFT JOIN messages l ON l.chat_id = c.id AND l.seq = c.last_seq
	WHERE m.user_id = $1`

func scanView(sc interface{ Scan(...any) error }) (viewRow, error) {
	var v viewRow
	var (
		id, chatID, sender, clientID, kind, text sql.NullString
		seq, created                             sql.NullInt64
		replyTo                                  sql.NullString
		edited, deleted                          sql.NullInt64
	)
	err := sc.Scan(&v.chat.ID, &v.chat.Type, &v.chat.Title, &v.chat.CreatedAt, &v.chat.LastSeq, &v.chat.LastMessageAt, &v.directKey,
		&v.member.UserID, &v.member.Role, &v.member.JoinedAt, &v.member.ReadSeq, &v.member.DeliveredSeq,
		&id, &chatID, &seq, &sender, &clientID, &kind, &text, &replyTo, &created, &edited, &deleted)
	if err != nil {
		return v, err
	}
	if id.Valid {
		m := messageFromColumns(id.String, chatID.String, seq.Int64, sender.String, clientID.String, kind.String,
			text.String, replyTo, created.Int64, edited, deleted)
		v.lastMsg = &m
	}
	return v, nil
}

// getView reads one chat as userID sees it; ErrNotFound when the chat does not exist or the user
// is not a member.
func getView(ctx context.Context, q querier, chatID, userID string) (viewRow, error) {
	v, err := scanView(q.QueryRowContext(ctx, viewSelect+` AND m.chat_id = $2`, userID, chatID))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("chat %s: %w", chatID, store.ErrNotFound)
	}
	return v, err
}

// listViews reads the user's chats, most recent activity first, after the cursor position.
func listViews(ctx context.Context, q querier, userID string, after *chatCursor, limit int) ([]viewRow, error) {
	query := viewSelect
	args := []any{userID}
	if after != nil {
		query += ` AND (c.last_message_at < $2 OR (c.last_message_at = $2 AND c.id < $3))`
		args = append(args, after.At, after.ID)
	}
	query += ` ORDER BY c.last_message_at DESC, c.id DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []viewRow
	for rows.Next() {
		v, err := scanView(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// contacts returns the distinct users who share at least one chat with userID.
func contacts(ctx context.Context, q querier, userID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT o.user_id FROM chat_members m
		JOIN chat_members o ON o.chat_id = m.chat_id
		WHERE m.user_id = $1 AND o.user_id <> $1 ORDER BY o.user_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// receipts returns every member's high-water marks.
func receipts(ctx context.Context, q querier, chatID string) ([]Receipt, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id, read_seq, delivered_seq FROM chat_members
		WHERE chat_id = $1 ORDER BY joined_at, user_id`, chatID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Receipt{}
	for rows.Next() {
		var r Receipt
		if err := rows.Scan(&r.UserID, &r.ReadSeq, &r.DeliveredSeq); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
