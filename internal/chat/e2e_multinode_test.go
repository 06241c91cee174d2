package chat_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// newCluster starts two nodes on one PostgreSQL schema and one Redis (under a key prefix of
// their own), as behind a load balancer, with users registered on the first.
func newCluster(t *testing.T, names ...string) (*env, *servertest.Node) {
	t.Helper()
	return newClusterWith(t, nil, names...)
}

// newClusterWith is newCluster with mutate (if not nil) applied to both nodes' configuration.
func newClusterWith(t *testing.T, mutate func(*config.Config), names ...string) (*env, *servertest.Node) {
	t.Helper()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	grace := 300 * time.Millisecond
	a := servertest.New(t, store.Postgres, func(c *config.Config) {
		c.RedisURL, c.RedisPrefix, c.PresenceGrace = redisURL, prefix, grace
		if mutate != nil {
			mutate(c)
		}
	})
	second := servertest.New(t, store.Postgres, func(c *config.Config) {
		c.DatabaseURL, c.RedisURL, c.RedisPrefix, c.PresenceGrace = a.Config.DatabaseURL, redisURL, prefix, grace
		if mutate != nil {
			mutate(c)
		}
	})
	e := &env{t: t, n: a, users: map[string]servertest.User{}}
	for _, name := range names {
		e.users[name] = a.Register(t, name)
	}
	return e, second
}

// TestE2EMultiNode: two nodes share the work. Every event reaches every device whichever node it
// is connected to, in seq order; a member removed through one node stops receiving the chat on
// both at once, and the other node refuses them the chat.
func TestE2EMultiNode(t *testing.T) {
	t.Parallel()
	e, b := newCluster(t, "owner", "ann", "carl")
	a := e.n
	g := e.group("owner", "ann", "carl")
	var direct chat.ChatView // ann and carl: the barrier of the removal below
	e.do("ann", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("carl")}}, &direct, http.StatusCreated)

	ownerA := dial(t, a, e.users["owner"], "a")
	annB := dial(t, b, e.users["ann"], "b") // tokens issued by one node work on the other
	carlA := dial(t, a, e.users["carl"], "a")
	carlB := dial(t, b, e.users["carl"], "b")

	// Messages sent through a reach the devices on b, in order; and the other way round.
	const n = 20
	for i := 1; i <= n; i++ {
		ownerA.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": fmt.Sprint("m", i), "text": "hi"}, nil)
	}
	for _, c := range []*client{annB, carlA, carlB, ownerA} {
		for i := int64(1); i <= n; i++ {
			if m := c.message(g.ID); m.Seq != i {
				t.Fatalf("%s: message seq %d, want %d", c.name, m.Seq, i)
			}
		}
	}
	var sent chat.Message
	annB.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "from-b", "text": "hello a"}, &sent)
	if m := ownerA.message(g.ID); m.ID != sent.ID || m.Seq != n+1 {
		t.Fatalf("owner on a got %+v, want ann's message from b (seq %d)", m, n+1)
	}

	// Typing goes to the joined connections on every node.
	carlB.ack(chat.CmdJoinChat, map[string]any{"chat_id": g.ID}, nil)
	ownerA.ack(chat.CmdTyping, map[string]any{"chat_id": g.ID, "typing": true}, nil)
	var typing chat.TypingEvent
	carlB.event(chat.EventTyping, &typing)
	if typing.UserID != e.id("owner") || !typing.Typing {
		t.Fatalf("carl on b: typing %+v", typing)
	}

	// carl is removed through a; ann goes on writing through b right away.
	e.do("owner", http.MethodDelete, "/chats/"+g.ID+"/members/"+e.id("carl"), nil, nil, http.StatusNoContent)
	annB.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "after", "text": "carl is gone"}, nil)
	annB.ack(chat.CmdSendMessage, map[string]any{"chat_id": direct.ID, "client_id": "barrier", "text": "x"}, nil)
	for _, c := range []*client{carlA, carlB} {
		// The bus keeps each node's order: the barrier comes after anything ann sent before it.
		before, _ := c.untilMessage(chat.EventMessageNew, direct.ID)
		for _, f := range before {
			if f.Type == chat.EventMessageNew {
				var m chat.Message
				decodeInto(t, f, &m)
				if m.ChatID == g.ID && m.Seq > n+1 { // n+1, ann's first, came before the removal
					t.Fatalf("%s received message %d of the chat they were removed from", c.name, m.Seq)
				}
			}
		}
	}
	// Node b soon drops what it cached of the chat: carl is refused there too.
	for deadline := time.Now().Add(waitFor); ; {
		resp := b.Do(t, http.MethodGet, "/api/v1/chats/"+g.ID, e.users["carl"].AccessToken, nil, nil)
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carl on b: GET the chat he was removed from: status %d, want 404", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := carlB.refused(chat.CmdJoinChat, map[string]any{"chat_id": g.ID}); code != "not_found" {
		t.Fatalf("carl on b: join_chat after removal: %s, want not_found", code)
	}
	if code := carlB.refused(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "x", "text": "x"}); code != "not_found" {
		t.Fatalf("carl on b: send after removal: %s, want not_found", code)
	}
}

// TestE2EMultiNodePresence: presence counts a user's connections on every node. A user connected
// to one node is in the snapshot of a contact who connects to the other; moving from one node to
// the other within the grace period is not announced; the last connection closing anywhere is.
func TestE2EMultiNodePresence(t *testing.T) {
	t.Parallel()
	e, b := newCluster(t, "owner", "ann")
	a := e.n
	e.do("owner", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("ann")}}, nil, http.StatusCreated)

	ownerA := dial(t, a, e.users["owner"], "a")
	annB := dial(t, b, e.users["ann"], "b")
	var snap realtime.PresenceSnapshot
	annB.event("presence_snapshot", &snap)
	if len(snap.Items) != 1 || snap.Items[0].UserID != e.id("owner") || !snap.Items[0].Online {
		t.Fatalf("ann's snapshot on b: %+v, want the owner online (connected to a)", snap)
	}
	var p realtime.PresenceData
	ownerA.event("presence", &p)
	if p.UserID != e.id("ann") || !p.Online {
		t.Fatalf("owner on a: presence %+v, want ann online", p)
	}

	// ann moves from b to a: a second device first, then the first one closes.
	annA := dial(t, a, e.users["ann"], "a")
	annB.close()
	time.Sleep(3 * 300 * time.Millisecond) // past the grace period: an offline would be out by now
	ownerA.ack("ping", nil, nil)           // everything published before is in pending now
	none(t, "owner on a, while ann moved between nodes", ownerA.pending, "presence")
	annA.close()
	ownerA.event("presence", &p)
	if p.UserID != e.id("ann") || p.Online || p.LastSeen == nil {
		t.Fatalf("owner on a: presence %+v, want ann offline with last_seen", p)
	}
}

// TestE2EMultiNodeLogout: logging out through one node closes the session's socket on the other.
func TestE2EMultiNodeLogout(t *testing.T) {
	t.Parallel()
	e, b := newCluster(t, "hana")
	ws := dial(t, b, e.users["hana"], "b")
	e.do("", http.MethodPost, "/auth/logout", map[string]string{"refresh_token": e.users["hana"].RefreshToken}, nil, http.StatusNoContent)
	if code := ws.closedWith(); code != websocket.StatusCode(realtime.CloseSessionRevoked) {
		t.Fatalf("socket on the other node closed with %d, want %d", code, realtime.CloseSessionRevoked)
	}
}

// TestE2EMultiNodePresenceSubscription: a subscription made on one node follows a user connected
// to the other: the presence change travels as one bus message and is delivered there to the
// subscribed connection; a co-member of the large group who did not subscribe gets nothing.
func TestE2EMultiNodePresenceSubscription(t *testing.T) {
	t.Parallel()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	grace := 300 * time.Millisecond
	mutate := func(c *config.Config) {
		c.RedisURL, c.RedisPrefix, c.PresenceGrace, c.LargeGroupMembers, c.RateLimits = redisURL, prefix, grace, 2, false
	}
	a := servertest.New(t, store.Postgres, mutate)
	b := servertest.New(t, store.Postgres, func(c *config.Config) { mutate(c); c.DatabaseURL = a.Config.DatabaseURL })
	e := &env{t: t, n: a, users: map[string]servertest.User{}}
	for _, name := range []string{"owner", "ann", "carl"} {
		e.users[name] = a.Register(t, name)
	}
	g := e.group("owner", "ann", "carl") // 3 members: large here

	annB := dial(t, b, e.users["ann"], "b")
	carlB := dial(t, b, e.users["carl"], "b")
	ownerA := dial(t, a, e.users["owner"], "a")
	var sub realtime.PresenceSubscribed
	annB.ack(realtime.CmdPresenceSubscribe, map[string]any{"user_ids": []string{e.id("owner")}}, &sub)
	var snap realtime.PresenceSnapshot
	annB.event("presence_snapshot", &snap)
	if len(snap.Items) != 1 || !snap.Items[0].Online {
		t.Fatalf("ann's snapshot on b: %+v, want the owner online (on a)", snap)
	}
	var count realtime.PresenceCount
	carlB.ack(realtime.CmdPresenceCount, map[string]any{"chat_id": g.ID}, &count)
	if count.Online != 3 || count.Members != 3 {
		t.Fatalf("count on b: %+v, want 3 of 3", count)
	}
	ownerA.close()
	annB.expectPresence(e.id("owner"), false)
	if got := presenceOf(t, carlB.drain()); len(got) != 0 {
		t.Fatalf("carl (not subscribed) got presence of %v", got)
	}
}
