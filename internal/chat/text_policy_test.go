package chat

import (
	"context"
	"testing"

	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// Group titles follow usertext.Name: control, invisible and bidirectional formatting characters
// are refused, on create and on rename.
func TestTitleTextPolicy(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s, _ := newTestService(t, db, nil)
	u := addUsers(t, db, "alice", "bob")
	g := mustGroup(t, s, u[0], u[1])
	ctx := context.Background()
	for _, title := range []string{
		"a\x00b", "bell\a", "\x1b[31mred", "new\nline", "tab\there", "txt\u202Eexe.", "ad\u200Bmin",
		"ad\u200Dmin", "\uFEFFteam", "a\u061Cb", "team\U000E0041", "\u3164", "\u115F", "\uFFA0", "a\u2066b", "\xff",
	} {
		_, _, err := s.Create(ctx, u[0], CreateInput{Type: Group, MemberIDs: []string{u[1]}, Title: title})
		wantCode(t, "create with title "+title, err, "validation_failed")
		_, err = s.Update(ctx, u[0], g.ID, UpdateInput{Title: title})
		wantCode(t, "rename to "+title, err, "validation_failed")
	}
	for _, title := range []string{"Équipe 山田", "family 👨\u200D👩\u200D👧", "عمر"} {
		v, err := s.Update(ctx, u[0], g.ID, UpdateInput{Title: title})
		if err != nil || v.Title != title {
			t.Errorf("rename to %q: %q %v", title, v.Title, err)
		}
	}
}

// An op carrying a value the database would fail on never joins a batch: it is refused alone, so
// it cannot make the writer retry its batch op by op.
func TestUnstorableOpNeverJoinsABatch(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s, _ := newTestService(t, db, nil)
	u := addUsers(t, db, "alice")
	c := mustGroup(t, s, u[0])
	good := Message{ID: newID(), ChatID: c.ID, SenderID: u[0], ClientID: "c", Kind: KindText, Text: "t", Attachments: []Attachment{}}
	bad := func(mut func(m *Message)) *op {
		m := good
		mut(&m)
		return &op{send: &sendOp{msg: m}}
	}
	reply := "\x00"
	for name, o := range map[string]*op{
		"NUL in text":       bad(func(m *Message) { m.Text = "a\x00b" }),
		"NUL in client_id":  bad(func(m *Message) { m.ClientID = "\x00" }),
		"bad UTF-8 in text": bad(func(m *Message) { m.Text = "a\xffb" }),
		"bad chat id":       bad(func(m *Message) { m.ChatID = "x\x00" }),
		"bad reply_to":      bad(func(m *Message) { m.ReplyTo = &reply }),
		"bad mark":          {mark: &markOp{chatID: "\x00", userID: u[0], seq: 1}},
	} {
		if err := s.queueOp(context.Background(), o); err != errUnstorable {
			t.Errorf("%s: queueOp = %v, want errUnstorable", name, err)
		}
	}
	if err := s.queueOp(context.Background(), &op{send: &sendOp{msg: good}}); err != nil {
		t.Fatalf("good op: %v", err)
	}
}
