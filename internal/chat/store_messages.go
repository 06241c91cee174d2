package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/nerutalk/nerutalk/internal/store"
)

const msgCols = `id, chat_id, seq, sender_id, client_id, kind, text, reply_to, created_at, edited_at, deleted_at`

func messageFromColumns(id, chatID string, seq int64, sender, clientID, kind, text string, replyTo sql.NullString,
	created int64, edited, deleted sql.NullInt64) Message {
	m := Message{
		ID: id, ChatID: chatID, Seq: seq, SenderID: sender, ClientID: clientID, Kind: Kind(kind), Text: text,
		Attachments: []Attachment{}, CreatedAt: store.Time(created), Deleted: deleted.Valid,
	}
	if replyTo.Valid {
		r := replyTo.String
		m.ReplyTo = &r
	}
	if edited.Valid {
		t := store.Time(edited.Int64)
		m.EditedAt = &t
	}
	return m
}

func scanMessage(sc interface{ Scan(...any) error }) (Message, error) {
	var (
		m                                  Message
		kind                               string
		replyTo                            sql.NullString
		created                            int64
		edited, deleted                    sql.NullInt64
		id, chatID, sender, clientID, text string
		seq                                int64
	)
	if err := sc.Scan(&id, &chatID, &seq, &sender, &clientID, &kind, &text, &replyTo, &created, &edited, &deleted); err != nil {
		return m, err
	}
	return messageFromColumns(id, chatID, seq, sender, clientID, kind, text, replyTo, created, edited, deleted), nil
}

func scanMessages(rows *sql.Rows) ([]Message, error) {
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// getMessage reads one message of a chat.
func getMessage(ctx context.Context, q querier, chatID, id string) (Message, error) {
	m, err := scanMessage(q.QueryRowContext(ctx, `SELECT `+msgCols+` FROM messages WHERE id = $1 AND chat_id = $2`, id, chatID))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("message %s: %w", id, store.ErrNotFound)
	}
	return m, err
}

// historyQuery selects a page of a chat's history. Exactly one direction applies: after > -1 reads
// forward from after (ascending), otherwise it reads backward from before (or from the end when
// before is 0). It reads limit+1 rows so the caller can tell whether more exist.
func history(ctx context.Context, q querier, chatID string, after, before int64, limit int) ([]Message, bool, error) {
	var (
		rows *sql.Rows
		err  error
	)
	lim := strconv.Itoa(limit + 1)
	switch {
	case after >= 0 && before > 0:
		rows, err = q.QueryContext(ctx, `SELECT `+msgCols+` FROM messages WHERE chat_id = $1 AND seq > $2 AND seq < $3
			ORDER BY seq LIMIT `+lim, chatID, after, before)
	case after >= 0:
		rows, err = q.QueryContext(ctx, `SELECT `+msgCols+` FROM messages WHERE chat_id = $1 AND seq > $2
			ORDER BY seq LIMIT `+lim, chatID, after)
	case before > 0:
		rows, err = q.QueryContext(ctx, `SELECT `+msgCols+` FROM messages WHERE chat_id = $1 AND seq < $2
			ORDER BY seq DESC LIMIT `+lim, chatID, before)
	default:
		rows, err = q.QueryContext(ctx, `SELECT `+msgCols+` FROM messages WHERE chat_id = $1
			ORDER BY seq DESC LIMIT `+lim, chatID)
	}
	if err != nil {
		return nil, false, err
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, false, err
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[:limit]
	}
	if after < 0 { // read backward: put the page in ascending order
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
	}
	return msgs, more, nil
}

// editMessage replaces the text of a message that is not deleted.
func editMessage(ctx context.Context, tx *sql.Tx, chatID, id, text string, now int64) (Message, error) {
	m, err := scanMessage(tx.QueryRowContext(ctx, `UPDATE messages SET text = $3, edited_at = $4
		WHERE id = $1 AND chat_id = $2 AND deleted_at IS NULL RETURNING `+msgCols, id, chatID, text, now))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("message %s: %w", id, store.ErrNotFound)
	}
	return m, err
}

// tombstone deletes a message for everyone: its text goes, the row (and so its seq) stays.
func tombstone(ctx context.Context, tx *sql.Tx, chatID, id string, now int64) (Message, error) {
	m, err := scanMessage(tx.QueryRowContext(ctx, `UPDATE messages SET text = '', deleted_at = $3
		WHERE id = $1 AND chat_id = $2 AND deleted_at IS NULL RETURNING `+msgCols, id, chatID, now))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("message %s: %w", id, store.ErrNotFound)
	}
	return m, err
}

func lastSeq(ctx context.Context, q querier, chatID string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT last_seq FROM chats WHERE id = $1`, chatID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("chat %s: %w", chatID, store.ErrNotFound)
	}
	return n, err
}
