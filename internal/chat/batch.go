package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// sendOp is one message waiting for the writer. msg is complete except Seq and CreatedAt.
type sendOp struct {
	msg Message
}

// markOp raises one member's read or delivered mark.
type markOp struct {
	chatID, userID string
	seq            int64
	read           bool // read_seq (which raises delivered_seq too); else delivered_seq
}

// op is one unit of work for the writer: exactly one of send and mark is set. The writer fills
// the result fields and then closes done.
type op struct {
	send *sendOp
	mark *markOp

	done chan struct{}
	res  opResult
}

// opResult is what a committed (or refused) op answers.
type opResult struct {
	msg      Message // send: the stored message
	existed  bool    // send: the client_id was used before; msg is the original
	advanced bool    // mark: the mark moved
	err      error
}

var (
	errClientIDReused = apperr.New(apperr.KindConflict, "client_id_reused",
		"this client_id was already used for a message in another chat")
	errSeqAhead = apperr.New(apperr.KindInvalid, "seq_out_of_range", "seq is beyond the chat's last message")
)

type pairKey struct{ a, b string }

// commitOps runs ops in one transaction and returns their results and the events they cause, in
// commit order (each chat's messages by ascending seq). A refusal that concerns one op alone (not
// a member, client_id reused, mark beyond last_seq) is its result and does not fail the others;
// an error from the database fails the transaction and is returned.
//
// Seqs: the messages of one chat are counted, and one UPDATE chats SET last_seq = last_seq + n
// RETURNING last_seq reserves the range that they fill in order; the reservation and the inserts
// commit together, so seqs have no gaps and no duplicates whatever the concurrency.
func (s *Service) commitOps(ctx context.Context, ops []*op, now int64) ([]opResult, []event, error) {
	res := make([]opResult, len(ops))
	var evs []event
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		evs = evs[:0]
		for i := range res {
			res[i] = opResult{}
		}
		sends, err := s.prepareSends(ctx, tx, ops, res)
		if err != nil {
			return err
		}
		if err := s.insertSends(ctx, tx, ops, res, sends, now); err != nil {
			return err
		}
		for _, i := range sends {
			if res[i].err == nil {
				evs = append(evs, event{chatID: res[i].msg.ChatID, typ: EventMessageNew, data: res[i].msg})
			}
		}
		return s.applyMarks(ctx, tx, ops, res, &evs)
	})
	if err != nil {
		return nil, nil, err
	}
	return res, evs, nil
}

// prepareSends settles which send ops are new messages: it answers retries (the same sender and
// client_id) with the stored original, refuses senders who are not members, and returns the
// indexes of the ops that need a seq.
func (s *Service) prepareSends(ctx context.Context, tx *sql.Tx, ops []*op, res []opResult) ([]int, error) {
	first := map[pairKey]int{}
	var candidates []int
	var pairs []pairKey
	for i, o := range ops {
		if o.send == nil {
			continue
		}
		k := pairKey{o.send.msg.SenderID, o.send.msg.ClientID}
		if _, ok := first[k]; !ok {
			first[k] = i
			pairs = append(pairs, k)
		}
		candidates = append(candidates, i)
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	stored, err := findByClientIDs(ctx, tx, pairs)
	if err != nil {
		return nil, err
	}
	var fresh []int
	for _, i := range candidates {
		m := ops[i].send.msg
		k := pairKey{m.SenderID, m.ClientID}
		if orig, ok := stored[k]; ok {
			res[i] = answerRetry(orig, m.ChatID)
			continue
		}
		if first[k] != i { // a retry within this batch: answered with the first one's result below
			continue
		}
		fresh = append(fresh, i)
	}

	// Lock the chats (PostgreSQL; SQLite serializes writers) in id order, then check membership:
	// a member removed by a transaction that committed first cannot send.
	chats := map[string]bool{}
	var memberPairs []pairKey
	for _, i := range fresh {
		m := ops[i].send.msg
		chats[m.ChatID] = true
		memberPairs = append(memberPairs, pairKey{m.ChatID, m.SenderID})
	}
	if s.db.Dialect == store.Postgres && len(chats) > 0 {
		ids := sortedKeys(chats)
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		if _, err := tx.ExecContext(ctx, `SELECT id FROM chats WHERE id IN (`+placeholders(1, len(ids))+`) ORDER BY id FOR UPDATE`, args...); err != nil {
			return nil, fmt.Errorf("lock chats: %w", err)
		}
	}
	members, err := existingMembers(ctx, tx, memberPairs)
	if err != nil {
		return nil, err
	}
	sends := fresh[:0]
	for _, i := range fresh {
		m := ops[i].send.msg
		if !members[pairKey{m.ChatID, m.SenderID}] {
			res[i].err = apperr.NotFound("chat")
			continue
		}
		sends = append(sends, i)
	}
	return sends, nil
}

// answerRetry is the answer to a send whose client_id was used before.
func answerRetry(orig Message, chatID string) opResult {
	if orig.ChatID != chatID {
		return opResult{err: errClientIDReused}
	}
	return opResult{msg: orig, existed: true}
}

// insertSends reserves the seqs of the new messages chat by chat and inserts them in one
// statement, then moves each sender's own marks up to their message: a sender has read what
// they wrote.
func (s *Service) insertSends(ctx context.Context, tx *sql.Tx, ops []*op, res []opResult, sends []int, now int64) error {
	if len(sends) > 0 {
		byChat := map[string][]int{}
		for _, i := range sends {
			c := ops[i].send.msg.ChatID
			byChat[c] = append(byChat[c], i)
		}
		ids := make([]string, 0, len(byChat))
		for id := range byChat {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		created := store.Time(now)
		var inserted []int
		senderTop := map[pairKey]int64{}
		for _, chatID := range ids {
			idx := byChat[chatID]
			var top int64
			err := tx.QueryRowContext(ctx, `UPDATE chats SET last_seq = last_seq + $2, last_message_at = $3
				WHERE id = $1 RETURNING last_seq`, chatID, int64(len(idx)), now).Scan(&top)
			if errors.Is(err, sql.ErrNoRows) {
				for _, i := range idx {
					res[i].err = apperr.NotFound("chat")
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("reserve seqs: %w", err)
			}
			seq := top - int64(len(idx))
			for _, i := range idx {
				seq++
				m := ops[i].send.msg
				m.Seq, m.CreatedAt = seq, created
				res[i].msg = m
				inserted = append(inserted, i)
				senderTop[pairKey{chatID, m.SenderID}] = seq
			}
		}
		if err := insertMessages(ctx, tx, res, inserted, now); err != nil {
			return err
		}
		for _, k := range sortedPairs(senderTop) {
			if _, err := tx.ExecContext(ctx, `UPDATE chat_members SET read_seq = $3,
				delivered_seq = CASE WHEN delivered_seq < $3 THEN $3 ELSE delivered_seq END
				WHERE chat_id = $1 AND user_id = $2 AND read_seq < $3`, k.a, k.b, senderTop[k]); err != nil {
				return fmt.Errorf("sender marks: %w", err)
			}
		}
	}
	// Retries inside the batch get the first one's answer.
	first := map[pairKey]int{}
	for i, o := range ops {
		if o.send == nil {
			continue
		}
		k := pairKey{o.send.msg.SenderID, o.send.msg.ClientID}
		j, ok := first[k]
		if !ok {
			first[k] = i
			continue
		}
		if r := res[j]; r.err != nil {
			res[i] = opResult{err: r.err}
		} else {
			res[i] = answerRetry(r.msg, o.send.msg.ChatID)
		}
	}
	return nil
}

// insertMessages writes the messages of res[idx] with one multi-row INSERT per chunk.
func insertMessages(ctx context.Context, tx *sql.Tx, res []opResult, idx []int, now int64) error {
	const cols = 9
	const chunk = 500 // 4,500 parameters: below the limits of both engines
	for start := 0; start < len(idx); start += chunk {
		part := idx[start:min(start+chunk, len(idx))]
		var b strings.Builder
		b.WriteString(`INSERT INTO messages (id, chat_id, seq, sender_id, client_id, kind, text, reply_to, created_at) VALUES `)
		args := make([]any, 0, len(part)*cols)
		for n, i := range part {
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(" + placeholders(len(args)+1, cols) + ")")
			m := res[i].msg
			var reply sql.NullString
			if m.ReplyTo != nil {
				reply = sql.NullString{String: *m.ReplyTo, Valid: true}
			}
			args = append(args, m.ID, m.ChatID, m.Seq, m.SenderID, m.ClientID, string(m.Kind), m.Text, reply, now)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
	}
	return nil
}

// applyMarks raises read and delivered marks. Marks of one member in one batch collapse into the
// highest that lies within the chat; the lower ones share its answer.
func (s *Service) applyMarks(ctx context.Context, tx *sql.Tx, ops []*op, res []opResult, evs *[]event) error {
	type markKey struct {
		chat, user string
		read       bool
	}
	groups := map[markKey][]int{}
	var keys []markKey
	for i, o := range ops {
		if o.mark == nil {
			continue
		}
		k := markKey{o.mark.chatID, o.mark.userID, o.mark.read}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].chat != keys[b].chat {
			return keys[a].chat < keys[b].chat
		}
		return keys[a].user < keys[b].user
	})
	for _, k := range keys {
		idx := groups[k]
		sort.SliceStable(idx, func(a, b int) bool { return ops[idx[a]].mark.seq > ops[idx[b]].mark.seq })
		for n, i := range idx {
			if err := applyMark(ctx, tx, ops[i].mark, &res[i], evs); err != nil {
				return err
			}
			if res[i].err == errSeqAhead {
				continue // try the next lower mark
			}
			for _, j := range idx[n+1:] {
				res[j].err = res[i].err
			}
			break
		}
	}
	return nil
}

// applyMark raises one mark and records its answer (and event, when it moved) in r.
func applyMark(ctx context.Context, tx *sql.Tx, m *markOp, r *opResult, evs *[]event) error {
	q := `UPDATE chat_members SET delivered_seq = $3 WHERE chat_id = $1 AND user_id = $2 AND delivered_seq < $3
		AND $3 <= (SELECT last_seq FROM chats WHERE id = $1) RETURNING user_id`
	typ := EventMessageDelivered
	if m.read {
		q = `UPDATE chat_members SET read_seq = $3, delivered_seq = CASE WHEN delivered_seq < $3 THEN $3 ELSE delivered_seq END
			WHERE chat_id = $1 AND user_id = $2 AND read_seq < $3
			AND $3 <= (SELECT last_seq FROM chats WHERE id = $1) RETURNING user_id`
		typ = EventMessageRead
	}
	var u string
	err := tx.QueryRowContext(ctx, q, m.chatID, m.userID, m.seq).Scan(&u)
	if err == nil {
		r.advanced = true
		*evs = append(*evs, event{chatID: m.chatID, typ: typ, data: ReceiptEvent{ChatID: m.chatID, UserID: m.userID, Seq: m.seq}})
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

// findByClientIDs returns the stored messages with the given (sender_id, client_id) pairs.
func findByClientIDs(ctx context.Context, q querier, pairs []pairKey) (map[pairKey]Message, error) {
	out := map[pairKey]Message{}
	const chunk = 400
	for start := 0; start < len(pairs); start += chunk {
		part := pairs[start:min(start+chunk, len(pairs))]
		conds := make([]string, len(part))
		args := make([]any, 0, 2*len(part))
		for i, p := range part {
			conds[i] = fmt.Sprintf("(sender_id = $%d AND client_id = $%d)", len(args)+1, len(args)+2)
			args = append(args, p.a, p.b)
		}
		rows, err := q.QueryContext(ctx, `SELECT `+msgCols+` FROM messages WHERE `+strings.Join(conds, " OR "), args...)
		if err != nil {
			return nil, fmt.Errorf("find client ids: %w", err)
		}
		msgs, err := scanMessages(rows)
		if err != nil {
			return nil, fmt.Errorf("find client ids: %w", err)
		}
		for _, m := range msgs {
			out[pairKey{m.SenderID, m.ClientID}] = m
		}
	}
	return out, nil
}

// existingMembers returns which (chat_id, user_id) pairs are memberships.
func existingMembers(ctx context.Context, q querier, pairs []pairKey) (map[pairKey]bool, error) {
	out := map[pairKey]bool{}
	const chunk = 400
	for start := 0; start < len(pairs); start += chunk {
		part := pairs[start:min(start+chunk, len(pairs))]
		conds := make([]string, len(part))
		args := make([]any, 0, 2*len(part))
		for i, p := range part {
			conds[i] = fmt.Sprintf("(chat_id = $%d AND user_id = $%d)", len(args)+1, len(args)+2)
			args = append(args, p.a, p.b)
		}
		rows, err := q.QueryContext(ctx, `SELECT chat_id, user_id FROM chat_members WHERE `+strings.Join(conds, " OR "), args...)
		if err != nil {
			return nil, fmt.Errorf("check members: %w", err)
		}
		for rows.Next() {
			var k pairKey
			if err := rows.Scan(&k.a, &k.b); err != nil {
				rows.Close()
				return nil, fmt.Errorf("check members: %w", err)
			}
			out[k] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("check members: %w", err)
		}
	}
	return out, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedPairs[V any](m map[pairKey]V) []pairKey {
	out := make([]pairKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].a != out[j].a {
			return out[i].a < out[j].a
		}
		return out[i].b < out[j].b
	})
	return out
}
