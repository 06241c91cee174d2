package realtime

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/config"
)

const testGrace = time.Second

func presenceEnv(t *testing.T) *testEnv {
	t.Helper()
	audience := fakeAudience{
		"alice": {"bob", "alice"}, // the audience may list the user; no event goes to themselves
		"bob":   {"alice"},
		"carol": {},
	}
	return newEnv(t, func(c *config.Config) { c.PresenceGrace = testGrace }, audience)
}

func expectPresence(t *testing.T, c *client, user string, online bool) PresenceData {
	t.Helper()
	d := decodeData[PresenceData](t, c.expectNext("presence"))
	if d.UserID != user || d.Online != online {
		t.Fatalf("presence = %+v, want %s online=%v", d, user, online)
	}
	if online != (d.LastSeen == nil) {
		t.Fatalf("presence = %+v: last_seen must be null exactly while online", d)
	}
	return d
}

// expectSnapshot reads the presence_snapshot frame of a new connection and checks that it lists
// exactly the given users, online.
func expectSnapshot(t *testing.T, c *client, users ...string) {
	t.Helper()
	snap := decodeData[PresenceSnapshot](t, c.expectNext("presence_snapshot"))
	var got []string
	for _, d := range snap.Items {
		if !d.Online || d.LastSeen != nil {
			t.Fatalf("presence_snapshot item %+v: want online with last_seen null", d)
		}
		got = append(got, d.UserID)
	}
	if strings.Join(got, ",") != strings.Join(users, ",") {
		t.Fatalf("presence_snapshot users = %v, want %v", got, users)
	}
}

func TestPresenceOnlineOffline(t *testing.T) {
	t.Parallel()
	e := presenceEnv(t)
	ctx := context.Background()
	bob := e.dialReady(t, "bob")
	carol := e.dialReady(t, "carol")

	alice := e.dial(t, "alice")
	expectPresence(t, bob, "alice", true)
	expectSnapshot(t, alice, "bob") // alice's online contacts
	if !e.hub.Online("alice") {
		t.Error("Online(alice) = false")
	}

	closedAt := time.Now()
	alice.ws.Close(websocket.StatusNormalClosure, "")
	d := expectPresence(t, bob, "alice", false)
	if waited := time.Since(closedAt); waited < testGrace {
		t.Errorf("offline after %v, before the grace of %v", waited, testGrace)
	}
	if d.LastSeen.Before(closedAt.Add(-time.Second)) || d.LastSeen.After(time.Now()) {
		t.Errorf("last_seen = %v, want about %v", d.LastSeen, closedAt)
	}
	if e.hub.Online("alice") {
		t.Error("Online(alice) = true after the grace")
	}
	// carol shares no chat with alice: the first frame she gets is the marker.
	e.hub.PublishUsers(ctx, []string{"carol"}, "marker", nil)
	carol.expectNext("marker")
}

func TestPresenceQuickReconnectDoesNotFlap(t *testing.T) {
	t.Parallel()
	e := presenceEnv(t)
	bob := e.dialReady(t, "bob")
	alice := e.dial(t, "alice")
	expectPresence(t, bob, "alice", true)

	alice.ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "alice's connection to go", func() bool { return e.hub.connCount("alice") == 0 })
	if !e.hub.Online("alice") {
		t.Error("Online(alice) = false within the grace period")
	}
	again := e.dial(t, "alice")
	expectSnapshot(t, again, "bob")
	time.Sleep(2 * testGrace)
	if !e.hub.Online("alice") {
		t.Error("Online(alice) = false after reconnecting")
	}
	e.hub.PublishUsers(context.Background(), []string{"bob"}, "marker", nil)
	bob.expectNext("marker") // no offline, no second online
}

func TestPresenceSecondConnectionIsSilent(t *testing.T) {
	t.Parallel()
	e := presenceEnv(t)
	bob := e.dialReady(t, "bob")
	e.dial(t, "alice")
	expectPresence(t, bob, "alice", true)
	a2 := e.dial(t, "alice")
	expectSnapshot(t, a2, "bob")
	a2.ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "one alice connection", func() bool { return e.hub.connCount("alice") == 1 })
	time.Sleep(2 * testGrace)
	e.hub.PublishUsers(context.Background(), []string{"bob"}, "marker", nil)
	bob.expectNext("marker")
}

func TestMemoryPresence(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var offline []string
	p := newMemoryPresence(50*time.Millisecond, func(u string) {
		mu.Lock()
		offline = append(offline, u)
		mu.Unlock()
	})
	steps := []struct {
		name string
		do   func() bool // returns cameOnline for Connected, false otherwise
		want bool
	}{
		{"first connection", func() bool { return p.Connected("u") }, true},
		{"second connection", func() bool { return p.Connected("u") }, false},
		{"one closes", func() bool { p.Disconnected("u"); return false }, false},
		{"last closes", func() bool { p.Disconnected("u"); return false }, false},
		{"back within grace", func() bool { return p.Connected("u") }, false},
		{"closes again", func() bool { p.Disconnected("u"); return false }, false},
		{"extra disconnect is ignored", func() bool { p.Disconnected("u"); return false }, false},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("%s: got %v, want %v", s.name, got, s.want)
		}
	}
	waitFor(t, "offline", func() bool { online, _ := p.Status("u"); return !online })
	_, lastSeen := p.Status("u")
	if lastSeen.IsZero() {
		t.Error("no last_seen after going offline")
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if len(offline) != 1 {
		t.Errorf("offline callbacks = %v, want exactly one", offline)
	}
	mu.Unlock()
	if !p.Connected("u") {
		t.Error("coming back after going offline must report cameOnline")
	}
	if online, ls := p.Status("never"); online || !ls.IsZero() {
		t.Error("unknown user must be offline with no last_seen")
	}
}

// A user with more online contacts than their send queue holds gets them all in one snapshot
// frame and stays connected (one frame per contact would overflow the queue and drop them).
func TestPresenceSnapshotLargerThanTheSendQueue(t *testing.T) {
	t.Parallel()
	const contacts = 40
	audience := fakeAudience{}
	var names []string
	for i := 0; i < contacts; i++ {
		name := fmt.Sprintf("c%02d", i)
		names = append(names, name)
		audience[name] = []string{"many"}
	}
	audience["many"] = names
	e := newEnv(t, func(c *config.Config) { c.PresenceGrace = testGrace; c.WSSendQueue = 8 }, audience)
	for _, n := range names {
		e.dialReady(t, n)
	}
	many := e.dial(t, "many")
	expectSnapshot(t, many, names...)
	many.send("ping", "p1", nil)
	many.expectNext("ack")
}

// interestSize counts the (user, connection) pairs of the interest index.
func (h *Hub) interestSize() int {
	n := 0
	for i := range h.interest {
		s := &h.interest[i]
		s.mu.RLock()
		for _, set := range s.followers {
			n += len(set)
		}
		s.mu.RUnlock()
	}
	return n
}

// Explicit subscriptions: only visible users, never oneself, duplicates once; unsubscribing
// keeps what is followed automatically; a closed connection leaves the interest index.
func TestPresenceSubscriptions(t *testing.T) {
	t.Parallel()
	audience := fakeAudience{
		"alice":         {"bob"},
		"bob":           {"alice"},
		"visible/alice": {"dave"},
		"chat/c1":       {"alice", "bob", "dave"},
	}
	e := newEnv(t, func(c *config.Config) { c.PresenceGrace = testGrace; c.PresenceSubscriptions = 2 }, audience)
	dave := e.dialReady(t, "dave")
	alice := e.dialReady(t, "alice")

	alice.send(CmdPresenceSubscribe, "s1", map[string]any{"user_ids": []string{"dave", "dave", "alice", "eve", "bob"}})
	snap := decodeData[PresenceSnapshot](t, alice.expectNext("presence_snapshot"))
	if len(snap.Items) != 2 || snap.Items[0].UserID != "dave" || !snap.Items[0].Online || snap.Items[1].UserID != "bob" || snap.Items[1].Online {
		t.Fatalf("snapshot %+v, want dave online and bob offline", snap)
	}
	ack := decodeData[PresenceSubscribed](t, alice.expectNext("ack"))
	if strings.Join(ack.UserIDs, ",") != "dave,bob" || ack.Subscriptions != 2 {
		t.Fatalf("ack %+v", ack)
	}
	alice.send(CmdPresenceSubscribe, "s2", map[string]any{"user_ids": []string{"bob", "dave"}}) // already followed: no new one
	alice.expectNext("presence_snapshot")
	alice.expectNext("ack")
	alice.send(CmdPresenceUnsubscribe, "u1", map[string]any{"user_ids": []string{"bob", "dave"}})
	if got := decodeData[PresenceSubscribed](t, alice.expectNext("ack")); got.Subscriptions != 0 {
		t.Fatalf("after unsubscribe: %+v", got)
	}
	bob := e.dial(t, "bob") // alice still follows bob automatically
	expectPresence(t, alice, "bob", true)
	expectSnapshot(t, bob, "alice")

	alice.send(CmdPresenceCount, "c1", map[string]any{"chat_id": "c1"})
	if got := decodeData[PresenceCount](t, alice.expectNext("ack")); got.Online != 3 || got.Members != 3 {
		t.Fatalf("count %+v", got)
	}
	dave.send(CmdPresenceCount, "c2", map[string]any{"chat_id": "nope"})
	if got := decodeData[ErrorData](t, dave.expectNext("error")); got.Code != "not_found" {
		t.Fatalf("count of a chat one is not in: %+v", got)
	}
	alice.ws.Close(websocket.StatusNormalClosure, "")
	bob.ws.Close(websocket.StatusNormalClosure, "")
	dave.ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the interest index to empty", func() bool { return e.hub.interestSize() == 0 })
}

// racingAudience is a fakeAudience whose first PresenceVisible lookup answers as before a block
// that is made (and handled by the hub: Unfollow) while it runs.
type racingAudience struct {
	fakeAudience
	mu      sync.Mutex
	lookups int
	blocked bool   // dave blocked alice: no longer visible to her
	block   func() // run during the first lookup, after its answer is read
}

func (a *racingAudience) PresenceVisible(ctx context.Context, userID string, ids []string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out, err := a.fakeAudience.PresenceVisible(ctx, userID, ids)
	if a.blocked {
		out = slices.DeleteFunc(out, func(u string) bool { return u == "dave" })
	}
	a.lookups++
	if a.lookups == 1 {
		a.block()
	}
	return out, err
}

// A block reaches explicit subscriptions: Unfollow drops them, a presence_subscribe whose lookup
// ran across the block looks again and follows nobody, and presence_count does not count the
// blocker online for the blocked user (hidden).
func TestPresenceUnfollowOnBlock(t *testing.T) {
	t.Parallel()
	audience := &racingAudience{fakeAudience: fakeAudience{
		"visible/alice": {"dave", "bob"},
		"chat/c1":       {"alice", "bob", "dave"},
		"hidden/alice":  {"dave"},
	}}
	e := newEnv(t, func(c *config.Config) { c.PresenceGrace = testGrace }, audience)
	audience.block = func() {
		audience.blocked = true
		e.hub.Unfollow(context.Background(), "alice", []string{"dave"})
	}
	e.dialReady(t, "dave")
	bob := e.dialReady(t, "bob")
	alice := e.dialReady(t, "alice")

	alice.send(CmdPresenceSubscribe, "s1", map[string]any{"user_ids": []string{"dave"}})
	if ack := decodeData[PresenceSubscribed](t, alice.expectNext("ack")); len(ack.UserIDs) != 0 || ack.Subscriptions != 0 {
		t.Fatalf("subscribing across the block: %+v, want nobody followed", ack)
	}
	audience.mu.Lock()
	lookups := audience.lookups
	audience.mu.Unlock()
	if lookups != 2 {
		t.Fatalf("%d lookups, want 2 (the first one ran across the block)", lookups)
	}
	// Followed before the block: dropped by Unfollow, whatever the reason.
	alice.send(CmdPresenceSubscribe, "s2", map[string]any{"user_ids": []string{"bob"}})
	alice.expectNext("presence_snapshot")
	alice.expectNext("ack")
	e.hub.Unfollow(context.Background(), "alice", []string{"bob"})
	alice.send(CmdPresenceUnsubscribe, "u1", map[string]any{"user_ids": []string{}})
	if got := decodeData[PresenceSubscribed](t, alice.expectNext("ack")); got.Subscriptions != 0 {
		t.Fatalf("after Unfollow: %+v, want no subscription", got)
	}

	alice.send(CmdPresenceCount, "c1", map[string]any{"chat_id": "c1"})
	if got := decodeData[PresenceCount](t, alice.expectNext("ack")); got.Online != 2 || got.Members != 3 {
		t.Fatalf("alice's count %+v, want 2 of 3 (dave hidden)", got)
	}
	bob.send(CmdPresenceCount, "c2", map[string]any{"chat_id": "c1"})
	if got := decodeData[PresenceCount](t, bob.expectNext("ack")); got.Online != 3 || got.Members != 3 {
		t.Fatalf("bob's count %+v, want 3 of 3", got)
	}
}
