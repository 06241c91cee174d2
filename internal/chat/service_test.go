package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	ae, ok := apperr.As(err)
	if !ok || ae.Code != code {
		t.Fatalf("%s: got %v, want code %s", what, err, code)
	}
}

// TestSeqNoGapsUnderConcurrentSenders: 50 goroutines send into one chat at once (and a second
// chat interleaves); each chat's seqs are exactly 1..N, stored and published in order.
func TestSeqNoGapsUnderConcurrentSenders(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s, pub := newTestService(t, db, func(o *Options) { o.MaxBatch = 16 })
		users := addUsers(t, db, "u0", "u1", "u2", "u3", "u4")
		a := mustGroup(t, s, users[0], users[1:]...)
		b := mustGroup(t, s, users[1], users[2:]...)
		const senders, each = 50, 6
		var wg sync.WaitGroup
		errs := make(chan error, senders*each*2)
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					u := users[1+(g+i)%4]
					if _, _, err := s.Send(context.Background(), u, a.ID, SendInput{ClientID: fmt.Sprintf("a-%d-%d", g, i), Text: "x"}); err != nil {
						errs <- err
					}
					if _, _, err := s.Send(context.Background(), u, b.ID, SendInput{ClientID: fmt.Sprintf("b-%d-%d", g, i), Text: "y"}); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("send: %v", err)
		}
		for _, c := range []ChatView{a, b} {
			want := make([]int64, senders*each)
			for i := range want {
				want[i] = int64(i + 1)
			}
			p, err := s.History(context.Background(), users[1], c.ID, HistoryQuery{After: 0, Limit: 200})
			if err != nil {
				t.Fatal(err)
			}
			got := p.Items
			for p.HasMore {
				p, err = s.History(context.Background(), users[1], c.ID, HistoryQuery{After: -1, Cursor: p.NextCursor, Limit: 200})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p.Items...)
			}
			if diff := cmp.Diff(want, seqsOf(got)); diff != "" {
				t.Errorf("chat %s seqs (-want +got):\n%s", c.ID, diff)
			}
			if p.LastSeq != int64(len(want)) {
				t.Errorf("last_seq = %d, want %d", p.LastSeq, len(want))
			}
			// Published in seq order, to every member.
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			var pubSeqs []int64
			for _, e := range pub.ofType(EventMessageNew) {
				if m := e.data.(Message); m.ChatID == c.ID {
					pubSeqs = append(pubSeqs, m.Seq)
					if len(e.users) != len(c.Members) {
						t.Fatalf("message_new to %d users, want %d", len(e.users), len(c.Members))
					}
				}
			}
			if diff := cmp.Diff(want, pubSeqs); diff != "" {
				t.Errorf("published seqs (-want +got):\n%s", diff)
			}
		}
	})
}

func TestIdempotentSend(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, pub := newTestService(t, db, nil)
		u := addUsers(t, db, "alice", "bob")
		c := mustGroup(t, s, u[0], u[1])
		other := mustGroup(t, s, u[0], u[1])

		first, existed, err := s.Send(ctx, u[0], c.ID, SendInput{ClientID: "k1", Text: "hello"})
		if err != nil || existed {
			t.Fatalf("first send: existed=%v err=%v", existed, err)
		}
		again, existed, err := s.Send(ctx, u[0], c.ID, SendInput{ClientID: "k1", Text: "hello (retry with other text)"})
		if err != nil || !existed {
			t.Fatalf("retry: existed=%v err=%v", existed, err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("retry answered another message (-first +retry):\n%s", diff)
		}
		// Another sender may use the same client_id.
		if _, existed, err := s.Send(ctx, u[1], c.ID, SendInput{ClientID: "k1", Text: "mine"}); err != nil || existed {
			t.Fatalf("bob's k1: existed=%v err=%v", existed, err)
		}
		// The same key in another chat is a conflict, not a silent duplicate.
		_, _, err = s.Send(ctx, u[0], other.ID, SendInput{ClientID: "k1", Text: "elsewhere"})
		wantCode(t, "k1 in another chat", err, "client_id_reused")

		// Concurrent retries of one new key: one message, every caller gets it.
		var wg sync.WaitGroup
		got := make([]Message, 20)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, _, err := s.Send(ctx, u[1], c.ID, SendInput{ClientID: "burst", Text: "once"})
				if err != nil {
					t.Errorf("burst send: %v", err)
				}
				got[i] = m
			}()
		}
		wg.Wait()
		for _, m := range got[1:] {
			if m.ID != got[0].ID {
				t.Fatalf("burst retries produced %s and %s", got[0].ID, m.ID)
			}
		}
		p, err := s.History(ctx, u[0], c.ID, HistoryQuery{After: -1, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{1, 2, 3}, seqsOf(p.Items)); diff != "" {
			t.Errorf("stored seqs (-want +got):\n%s", diff)
		}
		s.Close(ctx)
		if n := len(pub.ofType(EventMessageNew)); n != 3 {
			t.Errorf("published %d message_new, want 3 (retries publish nothing)", n)
		}
	})
}

// On SQLite the idempotency index holds store.ClientKey, which distinct pairs may share: a stored
// message whose key matches but whose pair does not is not taken for the original.
func TestClientKeyCollisionIsNotARetry(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	s, _ := newTestService(t, db, nil)
	u := addUsers(t, db, "alice", "bob")
	c := mustGroup(t, s, u[0], u[1])
	decoy, _, err := s.Send(ctx, u[1], c.ID, SendInput{ClientID: "decoy", Text: "bob's"})
	if err != nil {
		t.Fatal(err)
	}
	// Make bob's message collide with the key alice's next send will use.
	if _, err := db.W.ExecContext(ctx, `UPDATE messages SET client_key = $1 WHERE id = $2`, store.ClientKey(u[0], "k1"), decoy.ID); err != nil {
		t.Fatal(err)
	}
	m, existed, err := s.Send(ctx, u[0], c.ID, SendInput{ClientID: "k1", Text: "alice's"})
	if err != nil || existed || m.ID == decoy.ID || m.Seq != 2 {
		t.Fatalf("send = %+v existed=%v err=%v: a key collision was taken for a retry", m, existed, err)
	}
	again, existed, err := s.Send(ctx, u[0], c.ID, SendInput{ClientID: "k1", Text: "retry"})
	if err != nil || !existed || again.ID != m.ID {
		t.Fatalf("retry = %+v existed=%v err=%v, want the original %s", again, existed, err, m.ID)
	}
}

// TestBadOpDoesNotFailItsBatch commits a batch in which one message violates a constraint: the
// others are stored with contiguous seqs and the bad one alone fails.
func TestBadOpDoesNotFailItsBatch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s, _ := newTestService(t, db, nil)
		u := addUsers(t, db, "alice", "bob")
		c := mustGroup(t, s, u[0], u[1])
		var batch []*op
		for i := range 5 {
			m := Message{ID: newID(), ChatID: c.ID, SenderID: u[i%2], ClientID: fmt.Sprintf("c%d", i), Kind: KindText, Text: "t", Attachments: []Attachment{}}
			if i == 2 {
				m.Kind = "bogus" // refused by the kind CHECK constraint
			}
			batch = append(batch, &op{send: &sendOp{msg: m}, done: make(chan struct{})})
		}
		s.commit(batch, time.Now())
		var seqs []int64
		for i, o := range batch {
			<-o.done
			if i == 2 {
				if o.res.err == nil {
					t.Fatalf("bad message committed")
				}
				continue
			}
			if o.res.err != nil {
				t.Fatalf("op %d failed with the bad one: %v", i, o.res.err)
			}
			seqs = append(seqs, o.res.msg.Seq)
		}
		if diff := cmp.Diff([]int64{1, 2, 3, 4}, seqs); diff != "" {
			t.Errorf("seqs (-want +got):\n%s", diff)
		}
		p, err := s.History(context.Background(), u[0], c.ID, HistoryQuery{After: 0, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{1, 2, 3, 4}, seqsOf(p.Items)); diff != "" {
			t.Errorf("stored seqs (-want +got):\n%s", diff)
		}
	})
}

// A sender who is no longer a member when the batch commits (removed after the roster check) is
// refused alone: the batch is retried with the membership check, the others' messages are stored
// with contiguous seqs, and nothing of the refused op is left behind.
func TestNonMemberInBatchIsRefusedAlone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s, _ := newTestService(t, db, nil)
		u := addUsers(t, db, "alice", "bob", "mallory")
		c := mustGroup(t, s, u[0], u[1])
		d := mustGroup(t, s, u[2], u[0]) // mallory's own chat, in the same batch
		var batch []*op
		senders := []struct{ user, chat string }{{u[0], c.ID}, {u[2], c.ID}, {u[1], c.ID}, {u[2], d.ID}, {u[0], c.ID}}
		for i, x := range senders {
			m := Message{ID: newID(), ChatID: x.chat, SenderID: x.user, ClientID: fmt.Sprintf("n%d", i), Kind: KindText, Text: "t", Attachments: []Attachment{}}
			batch = append(batch, &op{send: &sendOp{msg: m}, done: make(chan struct{})})
		}
		s.commit(batch, time.Now())
		var seqs []int64
		for i, o := range batch {
			<-o.done
			switch {
			case i == 1:
				wantCode(t, "mallory sends into alice's chat", o.res.err, "not_found")
			case o.res.err != nil:
				t.Fatalf("op %d failed with the stranger's: %v", i, o.res.err)
			case senders[i].chat == c.ID:
				seqs = append(seqs, o.res.msg.Seq)
			}
		}
		if diff := cmp.Diff([]int64{1, 2, 3}, seqs); diff != "" {
			t.Errorf("seqs in alice's chat (-want +got):\n%s", diff)
		}
		p, err := s.History(context.Background(), u[0], c.ID, HistoryQuery{After: 0, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{1, 2, 3}, seqsOf(p.Items)); diff != "" {
			t.Errorf("stored seqs (-want +got):\n%s", diff)
		}
		if v, err := s.Get(context.Background(), u[2], d.ID); err != nil || v.LastSeq != 1 || v.UnreadCount != 0 {
			t.Errorf("mallory's own chat: %+v %v, want her message stored and read", v, err)
		}
	})
}

func TestReceiptsAreMonotonic(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, pub := newTestService(t, db, nil)
		u := addUsers(t, db, "alice", "bob", "carol")
		c := mustGroup(t, s, u[0], u[1], u[2])
		for i := range 5 {
			mustSend(t, s, u[0], c.ID, fmt.Sprint(i))
		}
		steps := []struct {
			name      string
			read      bool
			seq       int64
			wantCode  string
			wantRead  int64
			wantDeliv int64
		}{
			{"delivered 2", false, 2, "", 0, 2},
			{"read 3 raises delivered", true, 3, "", 3, 3},
			{"delivered back to 1 changes nothing", false, 1, "", 3, 3},
			{"read back to 2 changes nothing", true, 2, "", 3, 3},
			{"delivered 5", false, 5, "", 3, 5},
			{"read beyond the last message", true, 6, "seq_out_of_range", 3, 5},
			{"delivered beyond the last message", false, 9, "seq_out_of_range", 3, 5},
			{"read 5", true, 5, "", 5, 5},
			{"read 0 is nothing", true, 0, "", 5, 5},
		}
		for _, st := range steps {
			err := s.Mark(ctx, u[1], c.ID, st.seq, st.read)
			if st.wantCode != "" {
				wantCode(t, st.name, err, st.wantCode)
			} else if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			rs, err := s.Receipts(ctx, u[1], c.ID)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(rs, func(r Receipt) bool { return r.UserID == u[1] })
			if rs[i].ReadSeq != st.wantRead || rs[i].DeliveredSeq != st.wantDeliv {
				t.Fatalf("%s: read %d delivered %d, want %d %d", st.name, rs[i].ReadSeq, rs[i].DeliveredSeq, st.wantRead, st.wantDeliv)
			}
		}
		// The sender has read what they sent; bob read everything; carol nothing.
		for _, tc := range []struct {
			user   string
			unread int64
		}{{u[0], 0}, {u[1], 0}, {u[2], 5}} {
			v, err := s.Get(ctx, tc.user, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if v.UnreadCount != tc.unread || v.LastSeq != 5 || v.LastMessage == nil || v.LastMessage.Seq != 5 {
				t.Errorf("%s: unread %d last_seq %d last_message %v, want unread %d, 5, seq 5", tc.user, v.UnreadCount, v.LastSeq, v.LastMessage, tc.unread)
			}
		}
		// Strangers get not_found.
		stranger := addUsers(t, db, "mallory")[0]
		wantCode(t, "stranger marks", s.Mark(ctx, stranger, c.ID, 1, true), "not_found")
		_, err := s.Receipts(ctx, stranger, c.ID)
		wantCode(t, "stranger receipts", err, "not_found")

		s.Close(ctx)
		var got []string
		for _, e := range pub.events {
			if e.typ == EventMessageRead || e.typ == EventMessageDelivered {
				got = append(got, fmt.Sprintf("%s %d", e.typ, e.data.(ReceiptEvent).Seq))
			}
		}
		want := []string{"message_delivered 2", "message_read 3", "message_delivered 5", "message_read 5"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("receipt events (-want +got):\n%s", diff)
		}
	})
}

func TestMarksInOneBatchCollapse(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s, pub := newTestService(t, db, nil)
		u := addUsers(t, db, "alice", "bob")
		c := mustGroup(t, s, u[0], u[1])
		for i := range 4 {
			mustSend(t, s, u[0], c.ID, fmt.Sprint(i))
		}
		pub.reset()
		seqs := []int64{2, 9, 4, 3}
		var batch []*op
		for _, q := range seqs {
			batch = append(batch, &op{mark: &markOp{chatID: c.ID, userID: u[1], seq: q}, done: make(chan struct{})})
		}
		s.commit(batch, time.Now())
		for i, o := range batch {
			if seqs[i] == 9 {
				wantCode(t, "mark 9", o.res.err, "seq_out_of_range")
			} else if o.res.err != nil {
				t.Errorf("mark %d: %v", seqs[i], o.res.err)
			}
		}
		s.Close(context.Background())
		ev := pub.ofType(EventMessageDelivered)
		if len(ev) != 1 || ev[0].data.(ReceiptEvent).Seq != 4 {
			t.Fatalf("events %s, want one message_delivered 4", asJSON(ev))
		}
	})
}

func TestSendValidation(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s, _ := newTestService(t, db, func(o *Options) { o.MaxTextChars = 10 })
	u := addUsers(t, db, "alice", "bob")
	c := mustGroup(t, s, u[0], u[1])
	other := mustGroup(t, s, u[1])
	foreign := mustSend(t, s, u[1], other.ID, "f")
	tests := []struct {
		name string
		in   SendInput
		code string
	}{
		{"no client_id", SendInput{Text: "x"}, "validation_failed"},
		{"long client_id", SendInput{ClientID: strings.Repeat("a", 65), Text: "x"}, "validation_failed"},
		{"control characters in client_id", SendInput{ClientID: "a\nb", Text: "x"}, "validation_failed"},
		{"empty text", SendInput{ClientID: "a", Text: "  "}, "validation_failed"},
		{"text too long", SendInput{ClientID: "a", Text: "ééééééééééé"}, "text_too_long"},
		{"NUL in text", SendInput{ClientID: "a", Text: "a\x00b"}, "validation_failed"},
		{"ESC in text", SendInput{ClientID: "a", Text: "\x1b[2J"}, "validation_failed"},
		{"BEL in text", SendInput{ClientID: "a", Text: "ding\a"}, "validation_failed"},
		{"carriage return in text", SendInput{ClientID: "a", Text: "a\rb"}, "validation_failed"},
		{"invalid UTF-8 in text", SendInput{ClientID: "a", Text: "a\xff"}, "validation_failed"},
		{"system kind", SendInput{ClientID: "a", Kind: KindSystem, Text: "x"}, "validation_failed"},
		{"unknown kind", SendInput{ClientID: "a", Kind: "poll", Text: "x"}, "validation_failed"},
		{"unknown attachment", SendInput{ClientID: "a", Text: "x", AttachmentIDs: []string{"f1"}}, "invalid_attachment"},
		{"image without attachment", SendInput{ClientID: "a", Kind: KindImage}, "validation_failed"},
		{"reply to nothing", SendInput{ClientID: "a", Text: "x", ReplyTo: newID()}, "reply_not_found"},
		{"malformed reply_to", SendInput{ClientID: "a", Text: "x", ReplyTo: "nope"}, "validation_failed"},
		{"NUL in reply_to", SendInput{ClientID: "a", Text: "x", ReplyTo: "\x00"}, "validation_failed"},
		{"reply to another chat", SendInput{ClientID: "a", Text: "x", ReplyTo: foreign.ID}, "reply_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := s.Send(context.Background(), u[0], c.ID, tc.in)
			wantCode(t, tc.name, err, tc.code)
		})
	}
	t.Run("line breaks, tabs and bidi marks stay in text", func(t *testing.T) {
		t.Parallel()
		text := "a\n\tb\u202Eש\u202C👨\u200D👩" // 10 characters
		m, _, err := s.Send(context.Background(), u[0], c.ID, SendInput{ClientID: "ws", Text: text})
		if err != nil || m.Text != text {
			t.Fatalf("got %q, %v; want the text unchanged", m.Text, err)
		}
		if _, err := s.Edit(context.Background(), u[0], c.ID, m.ID, EditInput{Text: "x\x00"}); err == nil {
			t.Fatal("edit to a text with NUL accepted")
		}
	})
	t.Run("ten characters is the limit", func(t *testing.T) {
		t.Parallel()
		m, _, err := s.Send(context.Background(), u[0], c.ID, SendInput{ClientID: "ten", Text: "éééééééééé", Kind: KindSticker})
		if err != nil || m.Kind != KindSticker {
			t.Fatalf("got %v %v", m.Kind, err)
		}
		r, _, err := s.Send(context.Background(), u[1], c.ID, SendInput{ClientID: "re", Text: "ok", ReplyTo: m.ID})
		if err != nil || r.ReplyTo == nil || *r.ReplyTo != m.ID {
			t.Fatalf("reply: %+v %v", r, err)
		}
	})
}

func TestEditAndDelete(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, pub := newTestService(t, db, nil)
		u := addUsers(t, db, "owner", "admin", "member", "other")
		c := mustGroup(t, s, u[0], u[1], u[2], u[3])
		if _, err := s.SetRole(ctx, u[0], c.ID, u[1], RoleInput{Role: Admin}); err != nil {
			t.Fatal(err)
		}
		m := mustSend(t, s, u[2], c.ID, "m1")
		m2 := mustSend(t, s, u[2], c.ID, "m2")
		m3 := mustSend(t, s, u[0], c.ID, "m3")

		_, err := s.Edit(ctx, u[3], c.ID, m.ID, EditInput{Text: "hijack"})
		wantCode(t, "another member edits", err, "forbidden")
		_, err = s.Edit(ctx, u[0], c.ID, m.ID, EditInput{Text: "owner edits"})
		wantCode(t, "owner edits someone's message", err, "forbidden")
		_, err = s.Edit(ctx, u[2], c.ID, "nope", EditInput{Text: "x"})
		wantCode(t, "edit unknown message", err, "not_found")
		ed, err := s.Edit(ctx, u[2], c.ID, m.ID, EditInput{Text: "fixed"})
		if err != nil || ed.Text != "fixed" || ed.EditedAt == nil || ed.Seq != m.Seq {
			t.Fatalf("edit: %+v %v", ed, err)
		}

		wantCode(t, "member deletes another's", s.Delete(ctx, u[3], c.ID, m.ID), "forbidden")
		if err := s.Delete(ctx, u[1], c.ID, m.ID); err != nil {
			t.Fatalf("admin deletes: %v", err)
		}
		if err := s.Delete(ctx, u[1], c.ID, m.ID); err != nil {
			t.Fatalf("delete again: %v", err)
		}
		if err := s.Delete(ctx, u[2], c.ID, m2.ID); err != nil {
			t.Fatalf("sender deletes: %v", err)
		}
		_, err = s.Edit(ctx, u[2], c.ID, m.ID, EditInput{Text: "again"})
		wantCode(t, "edit a tombstone", err, "message_deleted")

		p, err := s.History(ctx, u[3], c.ID, HistoryQuery{After: -1, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{1, 2, 3}, seqsOf(p.Items)); diff != "" {
			t.Fatalf("tombstones keep the seqs (-want +got):\n%s", diff)
		}
		if !p.Items[0].Deleted || p.Items[0].Text != "" || len(p.Items[0].Attachments) != 0 || p.Items[2].Deleted || p.Items[2].ID != m3.ID {
			t.Fatalf("history after deletes: %s", asJSON(p.Items))
		}
		s.Close(ctx)
		if n := len(pub.ofType(EventMessageUpdated)); n != 1 {
			t.Errorf("%d message_updated, want 1", n)
		}
		if n := len(pub.ofType(EventMessageDeleted)); n != 2 {
			t.Errorf("%d message_deleted, want 2 (deleting a tombstone again publishes nothing)", n)
		}
	})
}

func TestDirectChats(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newTestService(t, db, nil)
		u := addUsers(t, db, "alice", "bob", "carol")
		d, created, err := s.Create(ctx, u[0], CreateInput{Type: Direct, MemberIDs: []string{u[1]}})
		if err != nil || !created || d.Type != Direct || len(d.Members) != 2 {
			t.Fatalf("create: %+v %v %v", d, created, err)
		}
		again, created, err := s.Create(ctx, u[1], CreateInput{Type: Direct, MemberIDs: []string{u[0], u[1]}})
		if err != nil || created || again.ID != d.ID {
			t.Fatalf("create again from the other side: id %s created %v err %v, want %s", again.ID, created, err, d.ID)
		}
		for _, tc := range []struct {
			name string
			in   CreateInput
			code string
		}{
			{"with yourself", CreateInput{Type: Direct, MemberIDs: []string{u[0]}}, "validation_failed"},
			{"three people", CreateInput{Type: Direct, MemberIDs: []string{u[1], u[2]}}, "validation_failed"},
			{"with a title", CreateInput{Type: Direct, MemberIDs: []string{u[2]}, Title: "t"}, "validation_failed"},
			{"with nobody", CreateInput{Type: Direct, MemberIDs: []string{newID()}}, "unknown_users"},
		} {
			_, _, err := s.Create(ctx, u[0], tc.in)
			wantCode(t, tc.name, err, tc.code)
		}
		_, err = s.Update(ctx, u[0], d.ID, UpdateInput{Title: "x"})
		wantCode(t, "rename a direct chat", err, "not_a_group")
		_, err = s.AddMembers(ctx, u[0], d.ID, AddMembersInput{UserIDs: []string{u[2]}})
		wantCode(t, "add to a direct chat", err, "not_a_group")

		// Concurrent creation of one pair gives one chat.
		var wg sync.WaitGroup
		ids := make([]string, 10)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, _, err := s.Create(ctx, u[i%2+1], CreateInput{Type: Direct, MemberIDs: []string{u[2-i%2]}})
				if err != nil {
					t.Errorf("concurrent create: %v", err)
				}
				ids[i] = v.ID
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("concurrent creates gave %v", ids)
			}
		}

		// Leaving and coming back keeps the history.
		mustSend(t, s, u[0], d.ID, "before")
		if err := s.Leave(ctx, u[1], d.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, u[1], d.ID); apperr.KindOf(err) != apperr.KindNotFound {
			t.Fatalf("left member reads the chat: %v", err)
		}
		back, created, err := s.Create(ctx, u[1], CreateInput{Type: Direct, MemberIDs: []string{u[0]}})
		if err != nil || created || back.ID != d.ID || len(back.Members) != 2 || back.LastSeq != 1 || back.UnreadCount != 0 {
			t.Fatalf("come back: %+v created %v err %v", back, created, err)
		}
		// Both leave: the chat is gone, and a new one starts afresh.
		for _, x := range u[:2] {
			if err := s.Leave(ctx, x, d.ID); err != nil {
				t.Fatal(err)
			}
		}
		fresh, created, err := s.Create(ctx, u[0], CreateInput{Type: Direct, MemberIDs: []string{u[1]}})
		if err != nil || !created || fresh.ID == d.ID || fresh.LastSeq != 0 {
			t.Fatalf("after both left: %+v created %v err %v", fresh, created, err)
		}
	})
}

func TestGroupMembersAndRoles(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, pub := newTestService(t, db, func(o *Options) { o.MaxGroupMembers = 5 })
		u := addUsers(t, db, "owner", "a1", "a2", "m1", "m2", "x")
		c := mustGroup(t, s, u[0], u[1], u[2], u[3])
		role := func(user string) Role {
			t.Helper()
			v, err := s.Get(ctx, u[0], c.ID)
			if err != nil {
				v, err = s.Get(ctx, u[1], c.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range v.Members {
				if m.UserID == user {
					return m.Role
				}
			}
			return ""
		}
		steps := []struct {
			name string
			do   func() error
			code string
		}{
			{"member renames", func() error { _, err := s.Update(ctx, u[3], c.ID, UpdateInput{Title: "t"}); return err }, "forbidden"},
			{"member adds", func() error {
				_, err := s.AddMembers(ctx, u[3], c.ID, AddMembersInput{UserIDs: []string{u[4]}})
				return err
			}, "forbidden"},
			{"member removes another", func() error { return s.RemoveMember(ctx, u[3], c.ID, u[2]) }, "forbidden"},
			{"member sets a role", func() error { _, err := s.SetRole(ctx, u[3], c.ID, u[3], RoleInput{Role: Admin}); return err }, "forbidden"},
			{"stranger renames", func() error { _, err := s.Update(ctx, u[5], c.ID, UpdateInput{Title: "t"}); return err }, "not_found"},
			{"owner makes a1 admin", func() error { _, err := s.SetRole(ctx, u[0], c.ID, u[1], RoleInput{Role: Admin}); return err }, ""},
			{"owner makes a2 admin", func() error { _, err := s.SetRole(ctx, u[0], c.ID, u[2], RoleInput{Role: Admin}); return err }, ""},
			{"admin changes roles", func() error { _, err := s.SetRole(ctx, u[1], c.ID, u[3], RoleInput{Role: Admin}); return err }, "forbidden"},
			{"admin renames", func() error { _, err := s.Update(ctx, u[1], c.ID, UpdateInput{Title: " New "}); return err }, ""},
			{"admin removes an admin", func() error { return s.RemoveMember(ctx, u[1], c.ID, u[2]) }, "forbidden"},
			{"admin adds m2", func() error {
				_, err := s.AddMembers(ctx, u[1], c.ID, AddMembersInput{UserIDs: []string{u[4], u[3]}})
				return err
			}, ""},
			{"the group is full", func() error {
				_, err := s.AddMembers(ctx, u[0], c.ID, AddMembersInput{UserIDs: []string{u[5]}})
				return err
			}, "too_many_members"},
			{"add an unknown user", func() error {
				_, err := s.AddMembers(ctx, u[0], c.ID, AddMembersInput{UserIDs: []string{newID()}})
				return err
			}, "unknown_users"},
			{"remove a stranger", func() error { return s.RemoveMember(ctx, u[0], c.ID, u[5]) }, "not_found"},
			{"owner demotes themselves", func() error { _, err := s.SetRole(ctx, u[0], c.ID, u[0], RoleInput{Role: Member}); return err }, "owner_required"},
			{"admin removes m2", func() error { return s.RemoveMember(ctx, u[1], c.ID, u[4]) }, ""},
		}
		for _, st := range steps {
			err := st.do()
			if st.code == "" && err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if st.code != "" {
				wantCode(t, st.name, err, st.code)
			}
		}
		v, err := s.Get(ctx, u[1], c.ID)
		if err != nil || v.Title != "New" || len(v.Members) != 4 {
			t.Fatalf("after the steps: title %q members %d err %v", v.Title, len(v.Members), err)
		}
		// m2 was removed: not a member any more, left the topic, got a last chat_updated without them.
		if _, _, err := s.Send(ctx, u[4], c.ID, SendInput{ClientID: "late", Text: "x"}); apperr.KindOf(err) != apperr.KindNotFound {
			t.Fatalf("removed member sends: %v", err)
		}
		if !slices.Contains(pub.leaves, topic(c.ID)+" "+u[4]) {
			t.Errorf("leaves %v, want m2 to leave the topic", pub.leaves)
		}
		var lastForM2 *Chat
		for _, e := range pub.ofType(EventChatUpdated) {
			if slices.Contains(e.users, u[4]) {
				ch := e.data.(Chat)
				lastForM2 = &ch
			}
		}
		if lastForM2 == nil || slices.ContainsFunc(lastForM2.Members, func(m MemberInfo) bool { return m.UserID == u[4] }) {
			t.Fatalf("m2's last chat_updated: %+v", lastForM2)
		}

		// Ownership: transfer, then the owner leaving hands over to the longest-standing admin.
		if _, err := s.SetRole(ctx, u[0], c.ID, u[3], RoleInput{Role: Owner}); err != nil {
			t.Fatal(err)
		}
		if role(u[3]) != Owner || role(u[0]) != Admin {
			t.Fatalf("after transfer: m1 %s, owner %s", role(u[3]), role(u[0]))
		}
		if err := s.Leave(ctx, u[3], c.ID); err != nil {
			t.Fatal(err)
		}
		if got := role(u[0]); got != Owner {
			t.Fatalf("longest-standing admin became %s, want owner", got)
		}
		// Everyone leaves: the chat is deleted.
		for _, x := range []string{u[0], u[1], u[2]} {
			if err := s.Leave(ctx, x, c.ID); err != nil {
				t.Fatalf("leave: %v", err)
			}
		}
		var n int
		if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM chats WHERE id = $1`, c.ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("chat rows after the last leave: %d %v", n, err)
		}
		if err := s.Leave(ctx, u[0], c.ID); apperr.KindOf(err) != apperr.KindNotFound {
			t.Fatalf("leave a deleted chat: %v", err)
		}
	})
}

func TestOwnerLeavingWithoutAdminsHandsToOldestMember(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	s, _ := newTestService(t, db, nil)
	u := addUsers(t, db, "owner", "m1", "m2")
	c := mustGroup(t, s, u[0], u[1])
	if _, err := s.AddMembers(ctx, u[0], c.ID, AddMembersInput{UserIDs: []string{u[2]}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Leave(ctx, u[0], c.ID); err != nil {
		t.Fatal(err)
	}
	v, err := s.Get(ctx, u[2], c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []Role{Owner, Member}
	var got []Role
	for _, m := range v.Members {
		got = append(got, m.Role)
	}
	if diff := cmp.Diff(want, got); diff != "" || v.Members[0].UserID != u[1] {
		t.Fatalf("roles after the owner left (-want +got):\n%s members %s", diff, asJSON(v.Members))
	}
}

func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newTestService(t, db, nil)
		u := addUsers(t, db, "alice", "bob")
		c := mustGroup(t, s, u[0], u[1])
		for i := range 12 {
			mustSend(t, s, u[i%2], c.ID, fmt.Sprint(i))
		}
		rng := func(a, b int64) []int64 {
			var out []int64
			for i := a; i <= b; i++ {
				out = append(out, i)
			}
			return out
		}
		tests := []struct {
			name     string
			q        HistoryQuery
			want     []int64
			wantMore bool
		}{
			{"latest", HistoryQuery{After: -1, Limit: 5}, rng(8, 12), true},
			{"latest, all", HistoryQuery{After: -1, Limit: 50}, rng(1, 12), false},
			{"after 0", HistoryQuery{After: 0, Limit: 5}, rng(1, 5), true},
			{"after 9", HistoryQuery{After: 9, Limit: 5}, rng(10, 12), false},
			{"after the end", HistoryQuery{After: 12, Limit: 5}, nil, false},
			{"before 5", HistoryQuery{After: -1, Before: 5, Limit: 3}, rng(2, 4), true},
			{"before 3", HistoryQuery{After: -1, Before: 3, Limit: 3}, rng(1, 2), false},
			{"between, nearest after", HistoryQuery{After: 2, Before: 10, Limit: 3}, rng(3, 5), true},
			{"default limit", HistoryQuery{After: -1}, rng(1, 12), false},
		}
		for _, tc := range tests {
			p, err := s.History(ctx, u[1], c.ID, tc.q)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !slices.Equal(tc.want, seqsOf(p.Items)) || p.HasMore != tc.wantMore || p.LastSeq != 12 {
				t.Errorf("%s: seqs %v more %v last %d, want %v more %v last 12", tc.name, seqsOf(p.Items), p.HasMore, p.LastSeq, tc.want, tc.wantMore)
			}
			if (p.NextCursor != "") != tc.wantMore {
				t.Errorf("%s: next_cursor %q with has_more %v", tc.name, p.NextCursor, p.HasMore)
			}
		}
		// Walking backward with the cursor visits everything once.
		var all []int64
		p, err := s.History(ctx, u[1], c.ID, HistoryQuery{After: -1, Limit: 5})
		for ; err == nil; p, err = s.History(ctx, u[1], c.ID, HistoryQuery{After: -1, Limit: 5, Cursor: p.NextCursor}) {
			all = append(seqsOf(p.Items), all...)
			if !p.HasMore {
				break
			}
		}
		if err != nil || !slices.Equal(all, rng(1, 12)) {
			t.Fatalf("backward walk: %v %v", all, err)
		}
		for _, tc := range []struct {
			name string
			q    HistoryQuery
			code string
		}{
			{"limit over 200", HistoryQuery{After: -1, Limit: 201}, "validation_failed"},
			{"bad cursor", HistoryQuery{After: -1, Cursor: "!!"}, "validation_failed"},
			{"chat list cursor", HistoryQuery{After: -1, Cursor: chatCursor{At: 1, ID: "x"}.String()}, "validation_failed"},
		} {
			_, err := s.History(ctx, u[1], c.ID, tc.q)
			wantCode(t, tc.name, err, tc.code)
		}
		stranger := addUsers(t, db, "eve")[0]
		_, err = s.History(ctx, stranger, c.ID, HistoryQuery{After: -1})
		wantCode(t, "stranger reads history", err, "not_found")
	})
}

func TestListChatsByActivity(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newTestService(t, db, nil)
		u := addUsers(t, db, "alice", "bob", "carol")
		var chats []ChatView
		for range 5 {
			chats = append(chats, mustGroup(t, s, u[0], u[1]))
		}
		mustGroup(t, s, u[1], u[2]) // not alice's
		// Activity order: 2, 0, 4 get messages in that order; 1 and 3 stay as created.
		for i, k := range []int{2, 0, 4} {
			mustSend(t, s, u[1], chats[k].ID, fmt.Sprint(i))
			// created_at/last_message_at have millisecond resolution: make the order unambiguous.
			if _, err := db.W.ExecContext(ctx, `UPDATE chats SET last_message_at = $2 WHERE id = $1`, chats[k].ID, int64(1e13)+int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		cursor := ""
		for {
			items, next, err := s.List(ctx, u[0], 2, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range items {
				got = append(got, v.ID)
				if v.LastMessage != nil && (v.UnreadCount != 1 || v.LastMessage.Seq != 1) {
					t.Errorf("chat %s: unread %d last %v", v.ID, v.UnreadCount, v.LastMessage)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
		want := []string{chats[4].ID, chats[0].ID, chats[2].ID}
		rest := []string{chats[1].ID, chats[3].ID}
		if len(got) != 5 || !slices.Equal(got[:3], want) || !slices.Contains(got[3:], rest[0]) || !slices.Contains(got[3:], rest[1]) {
			t.Fatalf("order %v, want %v then %v", got, want, rest)
		}
		if _, _, err := s.List(ctx, u[0], 2, "garbage"); apperr.KindOf(err) != apperr.KindInvalid {
			t.Fatalf("bad cursor: %v", err)
		}
	})
}

func TestContacts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newTestService(t, db, nil)
		u := addUsers(t, db, "a", "b", "c", "d")
		g := mustGroup(t, s, u[0], u[1], u[2])
		if _, _, err := s.Create(ctx, u[0], CreateInput{Type: Direct, MemberIDs: []string{u[1]}}); err != nil {
			t.Fatal(err)
		}
		check := func(user string, want ...string) {
			t.Helper()
			got, err := s.Contacts(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("contacts of %s: %v, want %v", user, got, want)
			}
		}
		check(u[0], u[1], u[2])
		check(u[3])
		if _, err := s.AddMembers(ctx, u[0], g.ID, AddMembersInput{UserIDs: []string{u[3]}}); err != nil {
			t.Fatal(err)
		}
		check(u[3], u[0], u[1], u[2]) // the cache was dropped by the change
		check(u[2], u[0], u[1], u[3])
		if err := s.RemoveMember(ctx, u[0], g.ID, u[2]); err != nil {
			t.Fatal(err)
		}
		check(u[2])
		check(u[0], u[1], u[3])
	})
}

func TestClosedServiceRefusesWork(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s, _ := newTestService(t, db, nil)
	u := addUsers(t, db, "a")
	c := mustGroup(t, s, u[0])
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Send(context.Background(), u[0], c.ID, SendInput{ClientID: "x", Text: "y"})
	if !errors.Is(err, errClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if _, err := s.Update(context.Background(), u[0], c.ID, UpdateInput{Title: "z"}); !errors.Is(err, errClosed) {
		t.Fatalf("update after close: %v", err)
	}
}

// With CommitEvery, ops that arrive within the interval after a commit wait for one shared
// commit, and a full batch is committed without waiting; a lone op after a quiet spell waits for
// nothing (here the interval is an hour, so any wait would hang the test).
func TestWriterPacing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		s, _ := newTestService(t, db, func(o *Options) {
			o.CommitEvery = time.Hour
			o.MaxBatch = 8
			o.Registerer = prometheus.NewRegistry()
		})
		u := addUsers(t, db, "alice", "bob")
		c := mustGroup(t, s, u[0], u[1])
		batches := func() (count uint64, ops float64) {
			var m dto.Metric
			if err := s.metrics.batchSize.Write(&m); err != nil {
				t.Fatal(err)
			}
			return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
		}

		mustSend(t, s, u[0], c.ID, "first") // the writer was idle: committed at once
		if n, ops := batches(); n != 1 || ops != 1 {
			t.Fatalf("after the first send: %d batches of %v ops, want 1 of 1", n, ops)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if _, _, err := s.Send(context.Background(), u[i%2], c.ID, SendInput{ClientID: fmt.Sprintf("burst-%d", i), Text: "t"}); err != nil {
					t.Errorf("send %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if n, ops := batches(); n != 2 || ops != 9 {
			t.Fatalf("after the burst: %d batches of %v ops in all, want 2 batches of 9 (one full batch of 8)", n, ops)
		}
	})
}

// TestStaleRosterIsReloadedForDelivery: two services on one database stand for two nodes whose
// caches never hear of each other's changes (no bus between them). Node b still delivers each
// event to exactly the members of the moment it was committed: the members_version read with the
// message's seq (or with the receipt, the edit, the delete) tells it that its cached list is older.
func TestStaleRosterIsReloadedForDelivery(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		a, _ := newTestService(t, db, nil)
		b, pubB := newTestService(t, db, nil)
		u := addUsers(t, db, "owner", "ann", "carl", "dave")
		g := mustGroup(t, a, u[0], u[1], u[2])
		first := mustSend(t, b, u[1], g.ID, "before") // b caches the members: owner, ann, carl
		second := mustSend(t, b, u[1], g.ID, "before-2")
		if err := a.RemoveMember(ctx, u[0], g.ID, u[2]); err != nil {
			t.Fatal(err)
		}
		if _, err := a.AddMembers(ctx, u[0], g.ID, AddMembersInput{UserIDs: []string{u[3]}}); err != nil {
			t.Fatal(err)
		}
		// Every kind of event that b publishes after the change goes to the new members.
		if err := b.Mark(ctx, u[0], g.ID, second.Seq, true); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Edit(ctx, u[1], g.ID, first.ID, EditInput{Text: "edited"}); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, u[1], g.ID, second.ID); err != nil {
			t.Fatal(err)
		}
		mustSend(t, b, u[1], g.ID, "after")
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
		before := slices.Sorted(slices.Values([]string{u[0], u[1], u[2]}))
		after := slices.Sorted(slices.Values([]string{u[0], u[1], u[3]}))
		want := map[string][][]string{
			EventMessageNew:     {before, before, after},
			EventMessageRead:    {after},
			EventMessageUpdated: {after},
			EventMessageDeleted: {after},
		}
		for typ, w := range want {
			var got [][]string
			for _, e := range pubB.ofType(typ) {
				got = append(got, slices.Sorted(slices.Values(e.users)))
			}
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("audiences of %s on node b (-want +got):\n%s", typ, diff)
			}
		}
	})
}
