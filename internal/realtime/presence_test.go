package realtime

import (
	"context"
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

func TestPresenceOnlineOffline(t *testing.T) {
	t.Parallel()
	e := presenceEnv(t)
	ctx := context.Background()
	bob := e.dialReady(t, "bob")
	carol := e.dialReady(t, "carol")

	alice := e.dial(t, "alice")
	expectPresence(t, bob, "alice", true)
	expectPresence(t, alice, "bob", true) // the snapshot of alice's online contacts
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
	expectPresence(t, again, "bob", true)
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
	expectPresence(t, a2, "bob", true)
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
