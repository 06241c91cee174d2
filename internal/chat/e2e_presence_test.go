package chat_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

const presenceGrace = 300 * time.Millisecond

// newPresenceEnv is a node where groups of more than large members are large.
func newPresenceEnv(t *testing.T, d store.Dialect, large, subscriptions int, names ...string) *env {
	t.Helper()
	n := servertest.New(t, d, func(c *config.Config) {
		c.LargeGroupMembers, c.PresenceGrace, c.RateLimits = large, presenceGrace, false
		if subscriptions > 0 {
			c.PresenceSubscriptions = subscriptions
		}
	})
	e := &env{t: t, n: n, users: map[string]servertest.User{}}
	for _, name := range names {
		e.users[name] = n.Register(t, name)
	}
	return e
}

// presenceOf lists the users named in presence events among frames.
func presenceOf(t *testing.T, frames []realtime.Frame) []string {
	t.Helper()
	var out []string
	for _, f := range frames {
		switch f.Type {
		case "presence":
			var p realtime.PresenceData
			decodeInto(t, f, &p)
			out = append(out, p.UserID)
		case "presence_snapshot":
			var s realtime.PresenceSnapshot
			decodeInto(t, f, &s)
			for _, p := range s.Items {
				out = append(out, p.UserID)
			}
		}
	}
	return out
}

// drain returns every frame received before the answer to a ping sent now.
func (c *client) drain() []realtime.Frame {
	c.t.Helper()
	id := c.send("ping", nil)
	frames, _ := c.until(func(f realtime.Frame) bool { return f.Type == "ack" && f.ID == id })
	return frames
}

// expectPresence waits for the presence event of user and checks its status.
func (c *client) expectPresence(user string, online bool) {
	c.t.Helper()
	var p realtime.PresenceData
	c.event("presence", &p)
	if p.UserID != user || p.Online != online {
		c.t.Fatalf("%s: presence %+v, want %s online=%v", c.name, p, user, online)
	}
}

// TestE2EPresenceByInterest: a connection follows its direct-chat partners and the co-members of
// small groups automatically, and nobody else: co-members of a large group only when it
// subscribes (and only users who share a chat with it), within its cap; presence_count gives a
// large group's online count to its members only; a direct chat created later adds its partner.
func TestE2EPresenceByInterest(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newPresenceEnv(t, d, 3, 2, "ann", "bob", "cid", "dan", "eve", "zed")
		e.do("ann", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("bob")}}, nil, http.StatusCreated)
		e.group("ann", "cid", "dan")                      // 3 members: small
		big := e.group("ann", "bob", "cid", "dan", "eve") // 5 members: large

		ann := dial(t, e.n, e.users["ann"], "phone")
		dial(t, e.n, e.users["bob"], "phone")
		ann.expectPresence(e.id("bob"), true) // direct partner
		dial(t, e.n, e.users["cid"], "phone")
		ann.expectPresence(e.id("cid"), true) // small group
		eve := dial(t, e.n, e.users["eve"], "phone")
		zed := dial(t, e.n, e.users["zed"], "phone")
		if got := presenceOf(t, ann.drain()); len(got) != 0 {
			t.Fatalf("ann got presence of %v: eve is only in a large group, zed in none", got)
		}
		if got := presenceOf(t, eve.drain()); len(got) != 0 {
			t.Fatalf("eve got presence of %v, she shares only a large group", got)
		}

		// Subscribing: eve is visible (the large group), zed is not (no shared chat).
		var sub realtime.PresenceSubscribed
		ann.ack(realtime.CmdPresenceSubscribe, map[string]any{"user_ids": []string{e.id("eve"), e.id("zed")}}, &sub)
		if !slices.Equal(sub.UserIDs, []string{e.id("eve")}) || sub.Subscriptions != 1 {
			t.Fatalf("subscribe ack %+v, want only eve", sub)
		}
		var snap realtime.PresenceSnapshot
		ann.event("presence_snapshot", &snap)
		if len(snap.Items) != 1 || snap.Items[0].UserID != e.id("eve") || !snap.Items[0].Online {
			t.Fatalf("snapshot after subscribe %+v, want eve online", snap)
		}
		eve.close()
		ann.expectPresence(e.id("eve"), false)

		// The cap counts explicit subscriptions (2 here).
		if code := ann.refused(realtime.CmdPresenceSubscribe, map[string]any{"user_ids": []string{e.id("bob"), e.id("cid")}}); code != "too_many_subscriptions" {
			t.Fatalf("over the cap: %s, want too_many_subscriptions", code)
		}
		ann.ack(realtime.CmdPresenceUnsubscribe, map[string]any{"user_ids": []string{e.id("eve")}}, &sub)
		if sub.Subscriptions != 0 {
			t.Fatalf("after unsubscribe: %+v", sub)
		}
		eve = dial(t, e.n, e.users["eve"], "tablet")
		if got := presenceOf(t, ann.drain()); len(got) != 0 {
			t.Fatalf("ann got presence of %v after unsubscribing from eve", got)
		}

		// The online count of the large group: members only.
		var count realtime.PresenceCount
		ann.ack(realtime.CmdPresenceCount, map[string]any{"chat_id": big.ID}, &count)
		if count.Members != 5 || count.Online != 4 { // ann, bob, cid, eve
			t.Fatalf("presence_count %+v, want 4 of 5 online", count)
		}
		if code := zed.refused(realtime.CmdPresenceCount, map[string]any{"chat_id": big.ID}); code != "not_found" {
			t.Fatalf("stranger's presence_count: %s, want not_found", code)
		}
		if code := zed.refused(realtime.CmdPresenceSubscribe, map[string]any{"user_ids": "x"}); code != "bad_request" {
			t.Fatalf("bad subscribe: %s, want bad_request", code)
		}

		// A direct chat created now: both follow each other at once.
		e.do("zed", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("ann")}}, nil, http.StatusCreated)
		ann.event("presence_snapshot", &snap)
		if len(snap.Items) != 1 || snap.Items[0].UserID != e.id("zed") {
			t.Fatalf("ann's snapshot after the direct chat: %+v, want zed", snap)
		}
		zed.event("presence_snapshot", &snap)
		if len(snap.Items) != 1 || snap.Items[0].UserID != e.id("ann") {
			t.Fatalf("zed's snapshot after the direct chat: %+v, want ann", snap)
		}
		zed.close()
		ann.expectPresence(e.id("zed"), false)
	})
}

// TestE2ELargeGroupConnectFramesLinear counts frames, not time: K members of one large group
// connecting one after the other receive no presence of each other (frames in O(K)), where the
// same K in a small group get the K(K-1)/2 presence events that automatic presence implies.
func TestE2ELargeGroupConnectFramesLinear(t *testing.T) {
	t.Parallel()
	const k = 24
	names := make([]string, k)
	for i := range names {
		names[i] = fmt.Sprintf("m%02d", i)
	}
	connectAll := func(large int) int {
		e := newPresenceEnv(t, store.SQLite, large, 0, names...)
		e.group(names[0], names[1:]...)
		clients := make([]*client, k)
		for i, n := range names {
			clients[i] = dial(t, e.n, e.users[n], "phone")
		}
		total := 0
		for _, c := range clients {
			total += len(c.drain())
		}
		return total
	}
	large := connectAll(8)
	if large > k {
		t.Fatalf("%d members of a large group connecting received %d frames, want at most %d", k, large, k)
	}
	small := connectAll(k)
	if want := k * (k - 1) / 2; small < want {
		t.Fatalf("%d members of a small group received %d frames, want at least %d presence events", k, small, want)
	}
	t.Logf("%d members connecting: %d frames in a large group, %d in a small one", k, large, small)
}

// TestE2ELargeGroupMembershipEvents: adding a batch to a large group sends each existing member
// one summarizing chat_updated (no member list) and each newcomer the whole chat; read receipts
// of a large group reach the connections that joined the chat and the reader, not every member.
func TestE2ELargeGroupMembershipEvents(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newPresenceEnv(t, d, 3, 0, "own", "ada", "bea", "cal", "new1", "new2", "new3")
		g := e.group("own", "ada", "bea", "cal")
		own := dial(t, e.n, e.users["own"], "phone")
		a := dial(t, e.n, e.users["ada"], "phone")
		n1 := dial(t, e.n, e.users["new1"], "phone")
		e.do("own", http.MethodPost, "/chats/"+g.ID+"/members",
			map[string]any{"user_ids": []string{e.id("new1"), e.id("new2"), e.id("new3")}}, nil, http.StatusOK)

		for _, c := range []*client{own, a} {
			var updates []json.RawMessage
			for _, f := range c.drain() {
				if f.Type == chat.EventChatUpdated {
					updates = append(updates, f.Data)
				}
			}
			if len(updates) != 1 {
				t.Fatalf("%s got %d chat_updated, want 1", c.name, len(updates))
			}
			var ch chat.ChatChange
			if err := json.Unmarshal(updates[0], &ch); err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			_ = json.Unmarshal(updates[0], &raw)
			if _, has := raw["members"]; has || !ch.Partial || ch.MemberCount != 7 || len(ch.MembersAdded) != 3 {
				t.Fatalf("%s: chat_updated %s, want partial with member_count 7 and 3 added", c.name, updates[0])
			}
		}
		var full chat.Chat
		n1.event(chat.EventChatUpdated, &full)
		if full.ID != g.ID || len(full.Members) != 7 {
			t.Fatalf("newcomer got %+v, want the whole chat with 7 members", full)
		}

		// Receipts: own joined the chat (it is on screen), a did not.
		own.ack(chat.CmdJoinChat, map[string]any{"chat_id": g.ID}, nil)
		var m chat.Message
		own.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "r1", "text": "hi"}, &m)
		a.message(g.ID)
		a.ack(chat.CmdMessageRead, map[string]any{"chat_id": g.ID, "seq": m.Seq}, nil)
		var r chat.ReceiptEvent
		own.event(chat.EventMessageRead, &r)
		if r.UserID != e.id("ada") || r.Seq != m.Seq {
			t.Fatalf("own (joined) got %+v", r)
		}
		a.event(chat.EventMessageRead, &r) // the reader's own devices
		n1.message(g.ID)
		none(t, "new1 (not joined)", n1.drain(), chat.EventMessageRead)
	})
}
