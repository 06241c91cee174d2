package chat

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/realtime"
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

	done     chan struct{}
	res      opResult
	answered *realtime.Later // optional: made Done by the event pipeline after the batch's events
}

// opResult is what a committed (or refused) op answers.
type opResult struct {
	msg      Message // send: the stored message
	members  int64   // send: the chat's members_version when the message was stored
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
//
// Membership is checked against the database, optimistically: the senders' read marks are raised
// in the same transaction (a sender has read what they wrote), and that UPDATE tells which
// senders are members. Senders were checked against the roster cache before their op was queued,
// so a non-member here is a member removed meanwhile, which is rare; then the transaction is
// rolled back and the batch runs again with an explicit membership check first.
func (s *Service) commitOps(ctx context.Context, ops []*op, now int64) ([]opResult, []event, error) {
	res, evs, err := s.commitOpsOnce(ctx, ops, now, false)
	if errors.Is(err, errSenderNotMember) {
		return s.commitOpsOnce(ctx, ops, now, true)
	}
	return res, evs, err
}

// errSenderNotMember rolls back an optimistic batch that has a sender who is not a member.
var errSenderNotMember = errors.New("chat: a sender of the batch is not a member")

func (s *Service) commitOpsOnce(ctx context.Context, ops []*op, now int64, checkMembers bool) ([]opResult, []event, error) {
	res := make([]opResult, len(ops))
	var evs []event
	err := s.db.Tx(ctx, func(sqltx *sql.Tx) error {
		tx := s.newBtx(sqltx)
		evs = evs[:0]
		for i := range res {
			res[i] = opResult{}
		}
		if err := lockChats(ctx, tx, ops); err != nil {
			return err
		}
		sends, err := s.prepareSends(ctx, tx, ops, res, checkMembers)
		if err != nil {
			return err
		}
		if sends, err = s.attachSends(ctx, tx, ops, res, sends); err != nil {
			return err
		}
		if err := s.insertSends(ctx, tx, ops, res, sends, now); err != nil {
			return err
		}
		stored := sends[:0:0]
		for _, i := range sends {
			if res[i].err == nil {
				stored = append(stored, i)
				evs = append(evs, event{chatID: res[i].msg.ChatID, typ: EventMessageNew, data: res[i].msg, members: res[i].members})
			}
		}
		if err := s.runSendHooks(ctx, tx, res, stored); err != nil {
			return err
		}
		return s.applyMarks(ctx, tx, ops, res, &evs)
	})
	if err != nil {
		return nil, nil, err
	}
	return res, evs, nil
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

// prepareSends settles which send ops are new messages: it answers retries (the same sender and
// client_id) with the stored original, refuses senders who are not members when checkMembers is
// set (else insertSends finds them out), and returns the indexes of the ops that need a seq.
func (s *Service) prepareSends(ctx context.Context, tx *btx, ops []*op, res []opResult, checkMembers bool) ([]int, error) {
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
	if len(stored) > 0 { // retries answer the original with its attachments
		keys := sortedPairs(stored)
		msgs := make([]Message, len(keys))
		for n, k := range keys {
			msgs[n] = stored[k]
		}
		if err := loadPageAttachments(ctx, tx, msgs); err != nil {
			return nil, err
		}
		for n, k := range keys {
			stored[k] = msgs[n]
		}
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
	if !checkMembers {
		return fresh, nil
	}

	// Membership against the database: a member removed by a transaction that committed first
	// cannot send, whatever this node's cache says.
	var memberPairs []pairKey
	for _, i := range fresh {
		m := ops[i].send.msg
		memberPairs = append(memberPairs, pairKey{m.ChatID, m.SenderID})
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

// insertSends reserves the seqs of the new messages chat by chat, inserts them and moves each
// sender's own marks up to their message (a sender has read what they wrote): one statement for
// the three on PostgreSQL, one each on SQLite. It returns errSenderNotMember when the marks show a
// sender who is not a member.
func (s *Service) insertSends(ctx context.Context, tx *btx, ops []*op, res []opResult, sends []int, now int64) error {
	if len(sends) > 0 {
		byChat := map[string][]int{}
		for _, i := range sends {
			c := ops[i].send.msg.ChatID
			byChat[c] = append(byChat[c], i)
		}
		// PostgreSQL reserves the seqs, inserts the messages and raises the senders' marks in one
		// statement (one round trip instead of three); SQLite runs them one by one (no round trips,
		// and its prepared statements are cheaper than one big one).
		var tops map[string]reserved
		var raised int
		var err error
		if tx.pg {
			tops, raised, err = storeSendsPG(ctx, tx, ops, byChat, now)
		} else {
			tops, err = reserveSeqs(ctx, tx, byChat, now)
		}
		if err != nil {
			return err
		}
		created := store.Time(now)
		var inserted []int
		senderTop := map[pairKey]int64{}
		for _, chatID := range sortedKeys(byChat) {
			idx := byChat[chatID]
			top, ok := tops[chatID]
			if !ok { // deleted meanwhile
				for _, i := range idx {
					res[i].err = apperr.NotFound("chat")
				}
				continue
			}
			seq := top.lastSeq - int64(len(idx))
			for _, i := range idx {
				seq++
				m := ops[i].send.msg
				m.Seq, m.CreatedAt = seq, created
				res[i].msg, res[i].members = m, top.members
				inserted = append(inserted, i)
				senderTop[pairKey{chatID, m.SenderID}] = seq
			}
		}
		if !tx.pg {
			if err := insertMessages(ctx, tx, res, inserted, now); err != nil {
				return err
			}
			if raised, err = raiseSenderMarks(ctx, tx, senderTop); err != nil {
				return err
			}
		}
		if err := insertAttachments(ctx, tx, res, inserted); err != nil {
			return err
		}
		if raised < len(senderTop) { // a sender is not a member (see commitOps)
			return errSenderNotMember
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

// reserved is what reserving seqs tells of a chat: its new last_seq (the batch's messages end
// there) and its members_version (who the members were when they were stored).
type reserved struct{ lastSeq, members int64 }

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
		if err := rows.Scan(&id, &top.lastSeq, &top.members, &moved); err != nil {
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
		if err := rows.Scan(&id, &top.lastSeq, &top.members); err != nil {
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
func raiseSenderMarks(ctx context.Context, tx *btx, tops map[pairKey]int64) (int, error) {
	keys := sortedPairs(tops)
	list := make([][3]any, len(keys))
	for i, k := range keys {
		list[i] = [3]any{k.a, k.b, tops[k]}
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

// applyMarks raises read and delivered marks. Marks of one member in one batch collapse into the
// highest that lies within the chat; the lower ones share its answer.
func (s *Service) applyMarks(ctx context.Context, tx *btx, ops []*op, res []opResult, evs *[]event) error {
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
func applyMark(ctx context.Context, tx *btx, m *markOp, r *opResult, evs *[]event) error {
	// The chat's members_version comes back with the mark, for the event (see event.members).
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
		*evs = append(*evs, event{chatID: m.chatID, typ: typ, data: ReceiptEvent{ChatID: m.chatID, UserID: m.userID, Seq: m.seq}, members: version})
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

func splitPairs(pairs []pairKey) (as, bs []string) {
	as, bs = make([]string, len(pairs)), make([]string, len(pairs))
	for i, p := range pairs {
		as[i], bs[i] = p.a, p.b
	}
	return as, bs
}

// findByClientIDs returns the stored messages with the given (sender_id, client_id) pairs.
func findByClientIDs(ctx context.Context, b *btx, pairs []pairKey) (map[pairKey]Message, error) {
	out := map[pairKey]Message{}
	if b.pg {
		senders, clients := splitPairs(pairs)
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
			out[pairKey{m.SenderID, m.ClientID}] = m
		}
		return out, nil
	}
	// SQLite indexes the pairs by store.ClientKey: rows with one of the keys, then the pairs
	// themselves (distinct pairs may share a key).
	keys := make([]int64, len(pairs))
	want := make(map[pairKey]bool, len(pairs))
	for i, p := range pairs {
		keys[i] = store.ClientKey(p.a, p.b)
		want[p] = true
	}
	data, _ := json.Marshal(keys) // integers: cannot fail
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
		if k := (pairKey{m.SenderID, m.ClientID}); want[k] {
			out[k] = m
		}
	}
	return out, nil
}

// pairsJSON encodes pairs as [["a","b"],...] for json_each (SQLite).
func pairsJSON(pairs []pairKey) string {
	rows := make([][2]string, len(pairs))
	for i, p := range pairs {
		rows[i] = [2]string{p.a, p.b}
	}
	b, _ := json.Marshal(rows) // strings only: cannot fail
	return string(b)
}

// existingMembers returns which (chat_id, user_id) pairs are memberships.
func existingMembers(ctx context.Context, b *btx, pairs []pairKey) (map[pairKey]bool, error) {
	var rows *sql.Rows
	var err error
	if b.pg {
		chats, users := splitPairs(pairs)
		rows, err = b.QueryContext(ctx, `SELECT chat_id, user_id FROM chat_members
			WHERE (chat_id, user_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, chats, users)
	} else {
		rows, err = b.queryRepeated(ctx, `SELECT chat_id, user_id FROM chat_members
			WHERE (chat_id, user_id) IN (SELECT value->>0, value->>1 FROM json_each($1))`, pairsJSON(pairs))
	}
	if err != nil {
		return nil, fmt.Errorf("check members: %w", err)
	}
	defer rows.Close()
	out := map[pairKey]bool{}
	for rows.Next() {
		var k pairKey
		if err := rows.Scan(&k.a, &k.b); err != nil {
			return nil, fmt.Errorf("check members: %w", err)
		}
		out[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check members: %w", err)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
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
