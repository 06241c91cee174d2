package chat

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// The group commit's algorithm: which ops of a batch become messages, in what order their seqs
// are reserved, how retries and refusals are answered. The statements it runs are in
// batch_sql.go, the transaction and its prepared statements in batch_tx.go.

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
	// answered, when set, is called by the event pipeline once the events of the op's batch are
	// published (a WebSocket send's deferred ack; see cmdSend).
	answered func(ctx context.Context)
}

// errUnstorable refuses an op with a value the database would fail on: the callers validate
// their input first, so it is only the last line of defence (see op.check).
var errUnstorable = apperr.Invalid("body", "a value cannot be stored (malformed id, or control characters in text)")

// check refuses an op whose values could fail its whole batch in the database (PostgreSQL fails
// a statement on a NUL byte): such an op never joins a batch, so it cannot make the writer retry
// the batch op by op and slow everyone else's messages down.
func (o *op) check() error {
	switch {
	case o.send != nil:
		m := &o.send.msg
		if !validID(m.ID) || !validID(m.ChatID) || !validID(m.SenderID) || (m.ReplyTo != nil && !validID(*m.ReplyTo)) ||
			!storable(m.ClientID) || !storable(m.Text) {
			return errUnstorable
		}
	case o.mark != nil:
		if !validID(o.mark.chatID) || !validID(o.mark.userID) {
			return errUnstorable
		}
	}
	return nil
}

// storable reports whether both engines store s as given: PostgreSQL refuses invalid UTF-8 and
// NUL bytes in text. Cheaper than usertext.Text.Check, which the callers have already applied.
func storable(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// opResult is what a committed (or refused) op answers.
type opResult struct {
	msg            Message // send: the stored message
	membersVersion int64   // send: the chat's members_version when the message was stored
	existed        bool    // send: the client_id was used before; msg is the original
	advanced       bool    // mark: the mark moved
	err            error
}

var (
	errClientIDReused = apperr.New(apperr.KindConflict, "client_id_reused",
		"this client_id was already used for a message in another chat")
	errSeqAhead = apperr.New(apperr.KindInvalid, "seq_out_of_range", "seq is beyond the chat's last message")
)

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
	first := firstSends(ops)
	res, evs, err := s.commitOpsOnce(ctx, ops, first, now, false)
	if errors.Is(err, errSenderNotMember) {
		return s.commitOpsOnce(ctx, ops, first, now, true)
	}
	return res, evs, err
}

// firstSends maps each (sender, client_id) of the batch's sends to the index of its first op:
// the one that may store a message, the others being retries answered with its result.
func firstSends(ops []*op) map[clientKey]int {
	first := map[clientKey]int{}
	for i, o := range ops {
		if o.send == nil {
			continue
		}
		k := o.send.key()
		if _, ok := first[k]; !ok {
			first[k] = i
		}
	}
	return first
}

func (o *sendOp) key() clientKey { return clientKey{o.msg.SenderID, o.msg.ClientID} }

// errSenderNotMember rolls back an optimistic batch that has a sender who is not a member.
var errSenderNotMember = errors.New("chat: a sender of the batch is not a member")

func (s *Service) commitOpsOnce(ctx context.Context, ops []*op, first map[clientKey]int, now int64, checkMembers bool) ([]opResult, []event, error) {
	res := make([]opResult, len(ops))
	var evs []event
	err := s.db.Tx(ctx, func(sqltx *sql.Tx) error {
		tx := s.newBtx(sqltx)
		evs = evs[:0]
		for i := range res {
			res[i] = opResult{}
		}
		if err := planEachExecution(ctx, tx); err != nil {
			return err
		}
		if err := lockChats(ctx, tx, ops); err != nil {
			return err
		}
		sends, err := s.prepareSends(ctx, tx, ops, res, first, checkMembers)
		if err != nil {
			return err
		}
		if sends, err = s.attachSends(ctx, tx, ops, res, sends); err != nil {
			return err
		}
		stored, err := s.insertSends(ctx, tx, ops, res, sends, now)
		if err != nil {
			return err
		}
		if err := s.runSendHooks(ctx, tx, res, stored); err != nil {
			return err
		}
		for _, i := range stored {
			evs = append(evs, event{chatID: res[i].msg.ChatID, typ: EventMessageNew, data: res[i].msg, membersVersion: res[i].membersVersion})
		}
		answerRepeats(ops, res, first)
		return s.applyMarks(ctx, tx, ops, res, &evs)
	})
	if err != nil {
		return nil, nil, err
	}
	return res, evs, nil
}

// prepareSends settles which send ops are new messages: it answers retries (the same sender and
// client_id) with the stored original, refuses senders who are not members when checkMembers is
// set (else insertSends finds them out), and returns the indexes of the ops that need a seq.
func (s *Service) prepareSends(ctx context.Context, tx *btx, ops []*op, res []opResult, first map[clientKey]int, checkMembers bool) ([]int, error) {
	if len(first) == 0 {
		return nil, nil
	}
	stored, err := findByClientIDs(ctx, tx, sortedPairs(first))
	if err != nil {
		return nil, err
	}
	if len(stored) > 0 { // retries answer the original with its attachments
		keys := sortedPairs(stored)
		msgs := make([]Message, len(keys))
		for n, k := range keys {
			msgs[n] = stored[k]
		}
		if err := s.loadPageAttachments(ctx, tx, msgs); err != nil {
			return nil, err
		}
		for n, k := range keys {
			stored[k] = msgs[n]
		}
	}
	var fresh []int
	for i, o := range ops {
		if o.send == nil {
			continue
		}
		k := o.send.key()
		if orig, ok := stored[k]; ok {
			res[i] = answerRetry(orig, o.send.msg.ChatID)
			continue
		}
		if first[k] == i { // else a retry within this batch: see answerRepeats
			fresh = append(fresh, i)
		}
	}
	if !checkMembers {
		return fresh, nil
	}

	// Membership against the database: a member removed by a transaction that committed first
	// cannot send, whatever this node's cache says.
	senders := make([]memberKey, len(fresh))
	for n, i := range fresh {
		senders[n] = ops[i].send.sender()
	}
	isMember, err := existingMembers(ctx, tx, senders)
	if err != nil {
		return nil, err
	}
	sends := fresh[:0]
	for n, i := range fresh {
		if !isMember[senders[n]] {
			res[i].err = apperr.NotFound("chat")
			continue
		}
		sends = append(sends, i)
	}
	return sends, nil
}

// sender is the membership the send needs.
func (o *sendOp) sender() memberKey { return memberKey{o.msg.ChatID, o.msg.SenderID} }

// answerRetry is the answer to a send whose client_id was used before.
func answerRetry(orig Message, chatID string) opResult {
	if orig.ChatID != chatID {
		return opResult{err: errClientIDReused}
	}
	return opResult{msg: orig, existed: true}
}

// insertSends reserves the seqs of the new messages chat by chat, inserts them and moves each
// sender's own marks up to their message (a sender has read what they wrote): one statement for
// the three on PostgreSQL, one each on SQLite. It returns the indexes of the ops whose message it
// stored, or errSenderNotMember when the marks show a sender who is not a member.
func (s *Service) insertSends(ctx context.Context, tx *btx, ops []*op, res []opResult, sends []int, now int64) ([]int, error) {
	if len(sends) == 0 {
		return nil, nil
	}
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
		return nil, err
	}
	created := store.Time(now)
	var inserted []int
	senderTop := map[memberKey]int64{} // each sender's last new message in each chat
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
			res[i].msg, res[i].membersVersion = m, top.membersVersion
			inserted = append(inserted, i)
			senderTop[ops[i].send.sender()] = seq
		}
	}
	if !tx.pg {
		if err := insertMessages(ctx, tx, res, inserted, now); err != nil {
			return nil, err
		}
		if raised, err = raiseSenderMarks(ctx, tx, senderTop); err != nil {
			return nil, err
		}
	}
	if err := insertAttachments(ctx, tx, res, inserted); err != nil {
		return nil, err
	}
	if raised < len(senderTop) { // a sender is not a member (see commitOps)
		return nil, errSenderNotMember
	}
	return inserted, nil
}

// answerRepeats answers the sends that repeat an earlier op's (sender, client_id) in the same
// batch with that op's answer.
func answerRepeats(ops []*op, res []opResult, first map[clientKey]int) {
	for i, o := range ops {
		if o.send == nil {
			continue
		}
		j := first[o.send.key()]
		if j == i {
			continue
		}
		if r := res[j]; r.err != nil {
			res[i] = opResult{err: r.err}
		} else {
			res[i] = answerRetry(r.msg, o.send.msg.ChatID)
		}
	}
}

// reserved is what reserving seqs tells of a chat: its new last_seq (the batch's messages end
// there) and its members_version (who the members were when they were stored).
type reserved struct{ lastSeq, membersVersion int64 }

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
			if errors.Is(res[i].err, errSeqAhead) {
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
