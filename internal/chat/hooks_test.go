package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// outboxHook writes one hook_outbox row per stored message in the batch's transaction (as push's
// outbox will) and records what it was told; a message whose text is failText fails its call.
type outboxHook struct {
	failText string
	mu       sync.Mutex
	calls    [][]StoredMessage
}

func (h *outboxHook) MessagesStored(ctx context.Context, tx *sql.Tx, msgs []StoredMessage) error {
	for _, m := range msgs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO hook_outbox (message_id, seq) VALUES ($1, $2)`, m.Message.ID, m.Message.Seq); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		if h.failText != "" && m.Message.Text == h.failText {
			return errors.New("hook refuses " + m.Message.Text)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, append([]StoredMessage(nil), msgs...))
	return nil
}

// seen returns every message the hook was told about (in calls that returned nil), by id.
func (h *outboxHook) seen() map[string]StoredMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]StoredMessage{}
	for _, c := range h.calls {
		for _, m := range c {
			out[m.Message.ID] = m
		}
	}
	return out
}

// newHookService is a service with h as its only SendHook, on a database with hook_outbox.
func newHookService(t *testing.T, db *store.DB, h SendHook) *Service {
	t.Helper()
	if _, err := db.W.ExecContext(context.Background(), `CREATE TABLE hook_outbox (message_id TEXT PRIMARY KEY, seq BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	s, _ := newTestService(t, db, func(o *Options) { o.SendHooks = []SendHook{h} })
	return s
}

// outboxRows returns the message ids in hook_outbox, sorted.
func outboxRows(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.R.QueryContext(context.Background(), `SELECT message_id FROM hook_outbox ORDER BY message_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// storedIDs returns the ids of every message of the chats, sorted.
func storedIDs(t *testing.T, s *Service, user string, chats ...string) []string {
	t.Helper()
	var ids []string
	for _, c := range chats {
		p, err := s.History(context.Background(), user, c, HistoryQuery{After: 0, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Items {
			ids = append(ids, m.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

func sendOps(msgs ...Message) []*op {
	batch := make([]*op, len(msgs))
	for i, m := range msgs {
		if m.ID == "" {
			m.ID = newID()
		}
		if m.Kind == "" {
			m.Kind = KindText
		}
		if m.Attachments == nil {
			m.Attachments = []Attachment{}
		}
		batch[i] = &op{send: &sendOp{msg: m}, done: make(chan struct{})}
	}
	return batch
}

// The hook is called inside the batch's transaction with exactly the messages it stored — not a
// retry of a stored client_id, not a repeat inside the batch — each with its chat's type, title
// and members at commit time, and its rows commit with them.
func TestSendHookSeesTheStoredMessages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := &outboxHook{}
		s := newHookService(t, db, h)
		u := addUsers(t, db, "alice", "bob", "carol")
		g := mustGroup(t, s, u[0], u[1], u[2])
		d, _, err := s.Create(context.Background(), u[0], CreateInput{Type: Direct, MemberIDs: []string{u[1]}})
		if err != nil {
			t.Fatal(err)
		}
		old := mustSend(t, s, u[0], g.ID, "old")
		h.mu.Lock()
		h.calls = nil
		h.mu.Unlock()

		batch := sendOps(
			Message{ChatID: g.ID, SenderID: u[1], ClientID: "b1", Text: "one"},
			Message{ChatID: d.ID, SenderID: u[0], ClientID: "a1", Text: "two"},
			Message{ChatID: g.ID, SenderID: u[0], ClientID: "old", Text: "retry of a stored one"},
			Message{ChatID: g.ID, SenderID: u[1], ClientID: "b1", Text: "repeat in the batch"},
			Message{ChatID: g.ID, SenderID: u[2], ClientID: "c1", Text: "three"},
		)
		s.commit(batch, time.Now())
		for i, o := range batch {
			<-o.done
			if o.res.err != nil {
				t.Fatalf("op %d: %v", i, o.res.err)
			}
		}
		if len(h.calls) != 1 {
			t.Fatalf("hook called %d times for one batch, want 1", len(h.calls))
		}
		got := map[string]StoredMessage{}
		for _, m := range h.calls[0] {
			got[m.Message.ClientID+"@"+m.Message.ChatID] = m
		}
		members := []string{u[0], u[1], u[2]}
		want := map[string]StoredMessage{
			"b1@" + g.ID: {Message: batch[0].res.msg, ChatType: "group", ChatTitle: "g", MemberIDs: members},
			"a1@" + d.ID: {Message: batch[1].res.msg, ChatType: "direct", MemberIDs: []string{u[0], u[1]}},
			"c1@" + g.ID: {Message: batch[4].res.msg, ChatType: "group", ChatTitle: "g", MemberIDs: members},
		}
		sortMembers := cmp.Transformer("sort", func(in []string) []string {
			out := append([]string(nil), in...)
			sort.Strings(out)
			return out
		})
		if diff := cmp.Diff(want, got, sortMembers); diff != "" {
			t.Errorf("hook saw (-want +got):\n%s", diff)
		}
		if batch[2].res.msg.ID != old.ID || !batch[2].res.existed {
			t.Errorf("retry of a stored client_id answered %+v, want the original", batch[2].res)
		}
		stored := storedIDs(t, s, u[0], g.ID, d.ID)
		if diff := cmp.Diff(stored, outboxRows(t, db)); diff != "" {
			t.Errorf("hook rows vs stored messages (-stored +rows):\n%s", diff)
		}
	})
}

// A hook error rolls the batch back: the writer retries each op alone, so the message the hook
// refuses fails alone (its sender gets an error, nothing of it is stored), the batch's other
// senders get their messages with contiguous seqs, and no message is ever stored without its hook
// rows.
func TestSendHookErrorRollsBackItsMessage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := &outboxHook{failText: "refused"}
		s := newHookService(t, db, h)
		u := addUsers(t, db, "alice", "bob")
		c := mustGroup(t, s, u[0], u[1])
		var msgs []Message
		for i := range 5 {
			text := fmt.Sprint("t", i)
			if i == 2 {
				text = "refused"
			}
			msgs = append(msgs, Message{ChatID: c.ID, SenderID: u[i%2], ClientID: fmt.Sprint("c", i), Text: text})
		}
		batch := sendOps(msgs...)
		s.commit(batch, time.Now())
		var seqs []int64
		for i, o := range batch {
			<-o.done
			if i == 2 {
				if o.res.err == nil {
					t.Fatal("the refused message was committed")
				}
				continue
			}
			if o.res.err != nil {
				t.Fatalf("op %d failed with the refused one: %v", i, o.res.err)
			}
			seqs = append(seqs, o.res.msg.Seq)
		}
		if diff := cmp.Diff([]int64{1, 2, 3, 4}, seqs); diff != "" {
			t.Errorf("seqs (-want +got):\n%s", diff)
		}
		stored := storedIDs(t, s, u[0], c.ID)
		if len(stored) != 4 {
			t.Errorf("%d messages stored, want 4", len(stored))
		}
		if diff := cmp.Diff(stored, outboxRows(t, db)); diff != "" {
			t.Errorf("hook rows vs stored messages (-stored +rows):\n%s", diff)
		}
		seen := h.seen()
		for _, id := range stored {
			if _, ok := seen[id]; !ok {
				t.Errorf("message %s stored but its hook call did not succeed", id)
			}
		}

		// Alone, through Send: an error for the sender, nothing stored.
		_, _, err := s.Send(context.Background(), u[0], c.ID, SendInput{ClientID: "alone", Text: "refused"})
		if err == nil {
			t.Fatal("Send succeeded although the hook failed")
		}
		if v, err := s.Get(context.Background(), u[0], c.ID); err != nil || v.LastSeq != 4 {
			t.Errorf("chat after a refused send: last_seq %d, %v; want 4", v.LastSeq, err)
		}
		if diff := cmp.Diff(stored, outboxRows(t, db)); diff != "" {
			t.Errorf("hook rows after a refused send (-want +got):\n%s", diff)
		}
	})
}

// The members the hook gets are those at commit time even when this node's roster cache is older
// (a member added by another node whose signal has not arrived yet): the cache is used only when
// its members_version is the batch's.
func TestSendHookMembersNewerThanTheCache(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		h := &outboxHook{}
		s := newHookService(t, db, h)
		u := addUsers(t, db, "alice", "bob", "carol")
		c := mustGroup(t, s, u[0], u[1])
		mustSend(t, s, u[0], c.ID, "cached") // the roster is cached now
		// carol joins behind the cache's back, as a change committed by another node.
		if _, err := db.W.ExecContext(ctx, `INSERT INTO chat_members (chat_id, user_id, role, joined_at, read_seq, delivered_seq)
			VALUES ($1, $2, 'member', 0, 1, 1)`, c.ID, u[2]); err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.ExecContext(ctx, `UPDATE chats SET members_version = members_version + 1 WHERE id = $1`, c.ID); err != nil {
			t.Fatal(err)
		}
		m := mustSend(t, s, u[1], c.ID, "after")
		got := h.seen()[m.ID].MemberIDs
		want := []string{u[0], u[1], u[2]}
		sort.Strings(want)
		got = append([]string(nil), got...)
		sort.Strings(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("members told to the hook (-want +got):\n%s", diff)
		}
	})
}

// planModeHook records the plan_cache_mode of the transaction it runs in.
type planModeHook struct {
	mu    sync.Mutex
	modes []string
}

func (h *planModeHook) MessagesStored(ctx context.Context, tx *sql.Tx, _ []StoredMessage) error {
	var mode string
	if err := tx.QueryRowContext(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.modes = append(h.modes, mode)
	return nil
}

// TestGroupCommitPlansEachStatement: on PostgreSQL the group commit's transaction plans each of
// its statements for its own parameters (a generic plan made while messages was empty would scan
// the whole table at every commit), and only that transaction: the connection goes back to the
// server's default afterwards.
func TestGroupCommitPlansEachStatement(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	h := &planModeHook{}
	s := newHookService(t, db, h)
	u := addUsers(t, db, "alice", "bob")
	g := mustGroup(t, s, u[0], u[1])
	mustSend(t, s, u[0], g.ID, "hello")
	h.mu.Lock()
	modes := append([]string(nil), h.modes...)
	h.mu.Unlock()
	if len(modes) == 0 || modes[len(modes)-1] != "force_custom_plan" {
		t.Errorf("plan_cache_mode inside the group commit: %v, want force_custom_plan", modes)
	}
	for range 3 { // whichever pooled connections answer: SET LOCAL ended with the commit
		var mode string
		if err := db.W.QueryRowContext(context.Background(), `SHOW plan_cache_mode`).Scan(&mode); err != nil || mode != "auto" {
			t.Errorf("plan_cache_mode outside the group commit = %q, %v; want auto", mode, err)
		}
	}
}
