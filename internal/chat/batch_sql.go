package chat

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// The SQL of the group commit. Each function is one statement (or one per row, prepared, where
// that is cheaper on SQLite); where the engines differ, the PostgreSQL form passes arrays to
// unnest and the SQLite form passes one JSON array to json_each (see btx).

// planEachExecution has every later statement of a PostgreSQL batch transaction planned for its
// own parameters (SET LOCAL plan_cache_mode): pgx prepares each statement once per connection, and
// after five executions PostgreSQL may keep a generic plan until the table is next analyzed. Made
// while messages was small (a new database), the generic plan of the idempotency lookup
// (findByClientIDs) scans the whole table, and kept doing so at every commit while the table grew,
// until autovacuum's next ANALYZE (at most once a minute, then only after 10 % growth). Planning
// the batch's few statements costs PostgreSQL less than that scan (docs/BENCHMARKS.md); the rest of
// the application keeps PostgreSQL's default, where planning each execution would cost more (GET
// /chats took twice as long).
func planEachExecution(ctx context.Context, tx *btx) error {
	if !tx.pg {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
		return fmt.Errorf("plan cache mode: %w", err)
	}
	return nil
}

// lockChats locks, on PostgreSQL, the chats rows of every op in id order before the batch touches
// any chat_members row, the order every transaction that changes a chat follows, so that
// transactions never wait on each other in a cycle. SQLite serializes writers instead.
func lockChats(ctx context.Context, tx *btx, ops []*op) error {
	if !tx.pg {
		return nil
	}
	chats := map[string]bool{}
	for _, o := range ops {
		if o.send != nil {
			chats[o.send.msg.ChatID] = true
		} else {
			chats[o.mark.chatID] = true
		}
	}
	if _, err := tx.ExecContext(ctx, `SELECT id FROM chats WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`, sortedKeys(chats)); err != nil {
		return fmt.Errorf("lock chats: %w", err)
	}
	return nil
}

// storeSendsPG is reserveSeqs, insertMessages and raiseSenderMarks in one PostgreSQL statement:
// the messages of byChat (each chat's in order) get the seqs after the chat's last_seq, and each
// sender's marks move up to their last new message. It returns each chat's new last_seq (a chat
// deleted meanwhile is missing, and its messages are not inserted) and how many memberships the
// marks moved.
func storeSendsPG(ctx context.Context, tx *btx, ops []*op, byChat map[string][]int, now int64) (map[string]reserved, int, error) {
	var ids, chats, senders, clients, kinds, texts, replies []string
	var ords []int64
	for _, chatID := range sortedKeys(byChat) {
		for n, i := range byChat[chatID] {
			m := ops[i].send.msg
			reply := ""
			if m.ReplyTo != nil {
				reply = *m.ReplyTo
			}
			ids, chats, senders, clients = append(ids, m.ID), append(chats, m.ChatID), append(senders, m.SenderID), append(clients, m.ClientID)
			kinds, texts, replies, ords = append(kinds, string(m.Kind)), append(texts, m.Text), append(replies, reply), append(ords, int64(n+1))
		}
	}
	rows, err := tx.QueryContext(ctx, `WITH u AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
				AS u (id, chat_id, sender_id, client_id, kind, text, reply_to, ord)
		), n AS (
			SELECT chat_id, count(*) AS n FROM u GROUP BY chat_id
		), r AS (
			UPDATE chats AS c SET last_seq = c.last_seq + n.n, last_message_at = $9
			FROM n WHERE c.id = n.chat_id RETURNING c.id, c.last_seq, c.members_version
		), ins AS (
			INSERT INTO messages (id, chat_id, seq, sender_id, client_id, kind, text, reply_to, created_at)
			SELECT u.id, u.chat_id, r.last_seq - n.n + u.ord, u.sender_id, u.client_id, u.kind, u.text, NULLIF(u.reply_to, ''), $9
			FROM u JOIN r ON r.id = u.chat_id JOIN n ON n.chat_id = u.chat_id
			RETURNING chat_id, sender_id, seq
		), marks AS (
			UPDATE chat_members AS m SET read_seq = t.seq, delivered_seq = GREATEST(m.delivered_seq, t.seq)
			FROM (SELECT chat_id, sender_id, max(seq) AS seq FROM ins GROUP BY chat_id, sender_id) AS t
			WHERE m.chat_id = t.chat_id AND m.user_id = t.sender_id AND m.read_seq < t.seq
			RETURNING 1
		)
		SELECT r.id, r.last_seq, r.members_version, (SELECT count(*) FROM marks) FROM r`,
		ids, chats, senders, clients, kinds, texts, replies, ords, now)
	if err != nil {
		return nil, 0, fmt.Errorf("store messages: %w", err)
	}
	defer rows.Close()
	tops := make(map[string]reserved, len(byChat))
	raised := 0
	for rows.Next() {
		var id string
		var top reserved
		var moved int64
		if err := rows.Scan(&id, &top.lastSeq, &top.membersVersion, &moved); err != nil {
			return nil, 0, fmt.Errorf("store messages: %w", err)
		}
		tops[id], raised = top, int(moved)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store messages: %w", err)
	}
	return tops, raised, nil
}

// reserveSeqs raises each chat's last_seq by its count of new messages (byChat: the ops of each
// chat), in one statement (UPDATE chats SET last_seq = last_seq + n ... RETURNING last_seq, with
// each chat's own n), and returns the new last_seq (and members_version) of each chat; the range (last_seq - n,
// last_seq] is the batch's. A chat that no longer exists is missing from the answer. SQLite
// (storeSendsPG does it on PostgreSQL).
func reserveSeqs(ctx context.Context, tx *btx, byChat map[string][]int, now int64) (map[string]reserved, error) {
	ids := sortedKeys(byChat)
	list := make([][2]any, len(ids))
	for i, id := range ids {
		list[i] = [2]any{id, len(byChat[id])}
	}
	data, _ := json.Marshal(list) // strings and integers: cannot fail
	rows, err := tx.queryRepeated(ctx, `UPDATE chats SET last_seq = last_seq + u.n, last_message_at = $2
		FROM (SELECT value->>0 AS id, value->>1 AS n FROM json_each($1)) AS u
		WHERE chats.id = u.id RETURNING id, last_seq, members_version`, string(data), now)
	if err != nil {
		return nil, fmt.Errorf("reserve seqs: %w", err)
	}
	defer rows.Close()
	tops := make(map[string]reserved, len(ids))
	for rows.Next() {
		var id string
		var top reserved
		if err := rows.Scan(&id, &top.lastSeq, &top.membersVersion); err != nil {
			return nil, fmt.Errorf("reserve seqs: %w", err)
		}
		tops[id] = top
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reserve seqs: %w", err)
	}
	return tops, nil
}

// raiseSenderMarks moves each sender's read and delivered marks up to their last new message, in
// one statement (a sender has read what they wrote), and returns how many memberships it moved:
// every member's, since a new message's seq is above any mark. SQLite (storeSendsPG does it on
// PostgreSQL).
func raiseSenderMarks(ctx context.Context, tx *btx, tops map[memberKey]int64) (int, error) {
	keys := sortedPairs(tops)
	list := make([][3]any, len(keys))
	for i, k := range keys {
		list[i] = [3]any{k.chatID, k.userID, tops[k]}
	}
	data, _ := json.Marshal(list) // strings and integers: cannot fail
	res, err := tx.execRepeated(ctx, `UPDATE chat_members SET read_seq = u.seq, delivered_seq = max(delivered_seq, u.seq)
		FROM (SELECT value->>0 AS chat_id, value->>1 AS user_id, value->>2 AS seq FROM json_each($1)) AS u
		WHERE chat_members.chat_id = u.chat_id AND chat_members.user_id = u.user_id AND chat_members.read_seq < u.seq`, string(data))
	if err != nil {
		return 0, fmt.Errorf("sender marks: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sender marks: %w", err)
	}
	return int(n), nil
}

// insertMessages writes the messages of res[idx] with one prepared single-row INSERT each: cheaper
// on SQLite than one statement that unpacks a JSON array (json_each parses every row's value once
// per column). SQLite (storeSendsPG does it on PostgreSQL).
func insertMessages(ctx context.Context, b *btx, res []opResult, idx []int, now int64) error {
	if len(idx) == 0 {
		return nil
	}
	st, err := b.prepared(ctx, `INSERT INTO messages (id, chat_id, seq, sender_id, client_id, client_key, kind, text, reply_to, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`)
	if err != nil {
		return fmt.Errorf("insert messages: %w", err)
	}
	defer st.Close()
	for _, i := range idx {
		m := res[i].msg
		var reply any
		if m.ReplyTo != nil {
			reply = *m.ReplyTo
		}
		if _, err := st.ExecContext(ctx, m.ID, m.ChatID, m.Seq, m.SenderID, m.ClientID, store.ClientKey(m.SenderID, m.ClientID),
			string(m.Kind), m.Text, reply, now); err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
	}
	return nil
}

// applyMark raises one mark and records its answer (and event, when it moved) in r.
func applyMark(ctx context.Context, tx *btx, m *markOp, r *opResult, evs *[]event) error {
	// The chat's members_version comes back with the mark, for the event (see event.membersVersion).
	q := `UPDATE chat_members SET delivered_seq = $3 WHERE chat_id = $1 AND user_id = $2 AND delivered_seq < $3
		AND $3 <= (SELECT last_seq FROM chats WHERE id = $1) RETURNING (SELECT members_version FROM chats WHERE id = $1)`
	typ := EventMessageDelivered
	if m.read {
		q = `UPDATE chat_members SET read_seq = $3, delivered_seq = CASE WHEN delivered_seq < $3 THEN $3 ELSE delivered_seq END
			WHERE chat_id = $1 AND user_id = $2 AND read_seq < $3
			AND $3 <= (SELECT last_seq FROM chats WHERE id = $1) RETURNING (SELECT members_version FROM chats WHERE id = $1)`
		typ = EventMessageRead
	}
	var version int64
	err := tx.scanRepeated(ctx, q, []any{m.chatID, m.userID, m.seq}, &version)
	if err == nil {
		r.advanced = true
		*evs = append(*evs, event{chatID: m.chatID, typ: typ, data: ReceiptEvent{ChatID: m.chatID, UserID: m.userID, Seq: m.seq}, membersVersion: version})
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("mark: %w", err)
	}
	// Not moved: already there, beyond the last message, or not a member.
	var last int64
	var member bool
	err = tx.QueryRowContext(ctx, `SELECT c.last_seq, EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = c.id AND m.user_id = $2)
		FROM chats c WHERE c.id = $1`, m.chatID, m.userID).Scan(&last, &member)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && !member):
		r.err = apperr.NotFound("chat")
	case err != nil:
		return fmt.Errorf("mark: %w", err)
	case m.seq > last:
		r.err = errSeqAhead
	}
	return nil
}

// findByClientIDs returns the stored messages with the given (sender_id, client_id) keys.
func findByClientIDs(ctx context.Context, b *btx, keys []clientKey) (map[clientKey]Message, error) {
	out := map[clientKey]Message{}
	if b.pg {
		senders, clients := splitPairs(keys)
		rows, err := b.QueryContext(ctx, `SELECT `+msgCols+` FROM messages
			WHERE (sender_id, client_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, senders, clients)
		if err != nil {
			return nil, fmt.Errorf("find client ids: %w", err)
		}
		msgs, err := scanMessages(rows)
		if err != nil {
			return nil, fmt.Errorf("find client ids: %w", err)
		}
		for _, m := range msgs {
			out[clientKey{m.SenderID, m.ClientID}] = m
		}
		return out, nil
	}
	// SQLite indexes the keys by their hash store.ClientKey: rows with one of the hashes, then the
	// keys themselves (distinct keys may share a hash).
	hashes := make([]int64, len(keys))
	want := make(map[clientKey]bool, len(keys))
	for i, k := range keys {
		hashes[i] = store.ClientKey(k.senderID, k.clientID)
		want[k] = true
	}
	data, _ := json.Marshal(hashes) // integers: cannot fail
	rows, err := b.queryRepeated(ctx, `SELECT `+msgCols+` FROM messages
		WHERE client_key IN (SELECT value FROM json_each($1))`, string(data))
	if err != nil {
		return nil, fmt.Errorf("find client ids: %w", err)
	}
	msgs, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("find client ids: %w", err)
	}
	for _, m := range msgs {
		if k := (clientKey{m.SenderID, m.ClientID}); want[k] {
			out[k] = m
		}
	}
	return out, nil
}

// existingMembers returns which of keys are memberships.
func existingMembers(ctx context.Context, b *btx, keys []memberKey) (map[memberKey]bool, error) {
	var rows *sql.Rows
	var err error
	if b.pg {
		chats, users := splitPairs(keys)
		rows, err = b.QueryContext(ctx, `SELECT chat_id, user_id FROM chat_members
			WHERE (chat_id, user_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, chats, users)
	} else {
		rows, err = b.queryRepeated(ctx, `SELECT chat_id, user_id FROM chat_members
			WHERE (chat_id, user_id) IN (SELECT value->>0, value->>1 FROM json_each($1))`, pairsJSON(keys))
	}
	if err != nil {
		return nil, fmt.Errorf("check members: %w", err)
	}
	defer rows.Close()
	out := map[memberKey]bool{}
	for rows.Next() {
		var k memberKey
		if err := rows.Scan(&k.chatID, &k.userID); err != nil {
			return nil, fmt.Errorf("check members: %w", err)
		}
		out[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check members: %w", err)
	}
	return out, nil
}

// chatMembers is a chat's type, title and member ids, read inside a transaction.
type chatMembers struct {
	typ     Type
	title   string
	members []string // oldest first
}

// chatsWithMembers reads the type, title and members of the chats ids in one statement. The
// batch holds the chats' rows (PostgreSQL) or the only write connection (SQLite), so these are
// the members at commit time.
func chatsWithMembers(ctx context.Context, tx *btx, ids []string) (map[string]*chatMembers, error) {
	const cols = `SELECT c.id, c.type, c.title, m.user_id FROM chats c JOIN chat_members m ON m.chat_id = c.id WHERE `
	const order = ` ORDER BY c.id, m.joined_at, m.user_id`
	var rows *sql.Rows
	var err error
	if tx.pg {
		rows, err = tx.QueryContext(ctx, cols+`c.id = ANY($1::text[])`+order, ids)
	} else {
		data, _ := json.Marshal(ids) // strings: cannot fail
		rows, err = tx.queryRepeated(ctx, cols+`c.id IN (SELECT value FROM json_each($1))`+order, string(data))
	}
	if err != nil {
		return nil, fmt.Errorf("chat members: %w", err)
	}
	defer rows.Close()
	out := make(map[string]*chatMembers, len(ids))
	for rows.Next() {
		var id, user string
		var c chatMembers
		if err := rows.Scan(&id, &c.typ, &c.title, &user); err != nil {
			return nil, fmt.Errorf("chat members: %w", err)
		}
		if out[id] == nil {
			out[id] = &c
		}
		out[id].members = append(out[id].members, user)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chat members: %w", err)
	}
	return out, nil
}
