package chat_test

import (
	"net/http"
	"testing"

	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/store"
)

// TestE2EBlockedDirectChatWrites: in a direct chat with a block, neither user (the blocked one
// nor the blocker) may send, edit, type or mark read/delivered — REST 403 blocked, WebSocket an
// error frame with code blocked — and nothing of it reaches the other. Deleting one's own message
// stays allowed. In a group they share the same writes go through; after the unblock, the
// direct chat works again.
func TestE2EBlockedDirectChatWrites(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "ann", "bob", "cid")
		var dm chat.ChatView
		e.do("bob", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("ann")}}, &dm, http.StatusCreated)
		g := e.group("cid", "ann", "bob")
		own := map[string]chat.Message{}
		for _, u := range []string{"ann", "bob"} {
			var m chat.Message
			e.do(u, http.MethodPost, "/chats/"+dm.ID+"/messages", map[string]any{"client_id": "dm-" + u, "text": "hi"}, &m, http.StatusCreated)
			own[u] = m
		}
		var gm chat.Message
		e.do("bob", http.MethodPost, "/chats/"+g.ID+"/messages", map[string]any{"client_id": "g-bob", "text": "hi all"}, &gm, http.StatusCreated)

		ann := dial(t, e.n, e.users["ann"], "phone")
		bob := dial(t, e.n, e.users["bob"], "phone")
		for _, c := range []*client{ann, bob} {
			c.ack(chat.CmdJoinChat, map[string]any{"chat_id": dm.ID}, nil)
			c.ack(chat.CmdJoinChat, map[string]any{"chat_id": g.ID}, nil)
		}
		e.do("ann", http.MethodPost, "/users/"+e.id("bob")+"/block", nil, nil, http.StatusNoContent)

		conns := map[string]*client{"ann": ann, "bob": bob}
		for _, u := range []string{"bob", "ann"} { // the blocked user, then the blocker
			rest := []struct {
				method, path string
				body         any
			}{
				{http.MethodPost, "/chats/" + dm.ID + "/messages", map[string]any{"client_id": "x-" + u, "text": "hi"}},
				{http.MethodPatch, "/chats/" + dm.ID + "/messages/" + own[u].ID, map[string]any{"text": "edited"}},
				{http.MethodPost, "/chats/" + dm.ID + "/read", map[string]any{"seq": 2}},
				{http.MethodPost, "/chats/" + dm.ID + "/delivered", map[string]any{"seq": 2}},
			}
			for _, r := range rest {
				if st, code := e.problem(u, r.method, r.path, r.body); st != http.StatusForbidden || code != "blocked" {
					t.Fatalf("%s: %s %s: %d %s, want 403 blocked", u, r.method, r.path, st, code)
				}
			}
			ws := []struct {
				typ  string
				data map[string]any
			}{
				{chat.CmdSendMessage, map[string]any{"chat_id": dm.ID, "client_id": "ws-" + u, "text": "hi"}},
				{chat.CmdTyping, map[string]any{"chat_id": dm.ID, "typing": true}},
				{chat.CmdMessageRead, map[string]any{"chat_id": dm.ID, "seq": 2}},
				{chat.CmdMessageDelivered, map[string]any{"chat_id": dm.ID, "seq": 2}},
			}
			for _, c := range ws {
				if code := conns[u].refused(c.typ, c.data); code != "blocked" {
					t.Fatalf("%s: %s: %s, want blocked", u, c.typ, code)
				}
			}
		}
		// The group is not split by the block: bob edits, types and reads there.
		e.do("bob", http.MethodPatch, "/chats/"+g.ID+"/messages/"+gm.ID, map[string]any{"text": "edited"}, nil, http.StatusOK)
		bob.ack(chat.CmdTyping, map[string]any{"chat_id": g.ID, "typing": true}, nil)
		var typing chat.TypingEvent
		ann.event(chat.EventTyping, &typing)
		if typing.ChatID != g.ID || typing.UserID != e.id("bob") {
			t.Fatalf("ann got typing %+v, want bob's in the group", typing)
		}
		// Deleting one's own message in the direct chat stays allowed: its message_deleted to
		// both is the barrier behind which nothing else of the direct chat arrived.
		e.do("bob", http.MethodDelete, "/chats/"+dm.ID+"/messages/"+own["bob"].ID, nil, nil, http.StatusNoContent)
		for _, c := range []*client{ann, bob} {
			before, _ := c.untilMessage(chat.EventMessageDeleted, dm.ID)
			for _, f := range before {
				if f.Type == chat.EventMessageUpdated || f.Type == chat.EventTyping || f.Type == chat.EventMessageNew ||
					f.Type == chat.EventMessageRead || f.Type == chat.EventMessageDelivered {
					var ref struct {
						ChatID string `json:"chat_id"`
					}
					decodeInto(t, f, &ref)
					if ref.ChatID == dm.ID {
						t.Fatalf("%s received %s %s of the blocked direct chat", c.name, f.Type, f.Data)
					}
				}
			}
		}

		// Unblocked, the direct chat works again.
		e.do("ann", http.MethodDelete, "/users/"+e.id("bob")+"/block", nil, nil, http.StatusNoContent)
		e.do("ann", http.MethodPatch, "/chats/"+dm.ID+"/messages/"+own["ann"].ID, map[string]any{"text": "edited"}, nil, http.StatusOK)
		bob.ack(chat.CmdMessageRead, map[string]any{"chat_id": dm.ID, "seq": 1}, nil)
		bob.ack(chat.CmdTyping, map[string]any{"chat_id": dm.ID, "typing": true}, nil)
	})
}
