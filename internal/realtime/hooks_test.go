package realtime

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/identity"
)

// A command's Client carries the auth session of the token the connection was opened with.
func TestClientSessionID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dialToken(t, e.sessionToken("alice", "s1"))
	who := decodeData[map[string]string](t, c.call("whoami", "1", nil))
	if who["session_id"] != "s1" || who["user_id"] != "alice" {
		t.Errorf("whoami = %v, want alice in session s1", who)
	}
}

// disconnect is what an OnDisconnect hook saw.
type disconnect struct {
	user, conn, session, ctxUser string
	connsLeft                    int // the user's connections on the hub when the hook ran
}

func recordDisconnects(e *testEnv) <-chan disconnect {
	ch := make(chan disconnect, 16)
	e.hub.OnDisconnect(func(ctx context.Context, c Client) {
		if ctx.Err() != nil {
			panic("OnDisconnect: the context is cancelled")
		}
		ch <- disconnect{c.UserID(), c.ConnID(), c.SessionID(), identity.UserID(ctx), e.hub.connCount(c.UserID())}
	})
	return ch
}

func nextDisconnect(t *testing.T, ch <-chan disconnect) disconnect {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no OnDisconnect call")
		return disconnect{}
	}
}

// OnDisconnect hooks run, in order, after a connection closed for any cause, once it is
// unregistered, with the connection's caller in the context.
func TestOnDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	first := recordDisconnects(e)
	second := recordDisconnects(e) // several features may register

	check := func(t *testing.T, why, conn string) {
		t.Helper()
		for _, ch := range []<-chan disconnect{first, second} {
			d := nextDisconnect(t, ch)
			want := disconnect{user: "alice", conn: conn, session: "s1", ctxUser: "alice"}
			if d != want {
				t.Errorf("%s: hook saw %+v, want %+v", why, d, want)
			}
		}
	}
	connID := func(c *client) string {
		return decodeData[map[string]string](t, c.call("whoami", "w", nil))["conn_id"]
	}

	c := e.dialToken(t, e.sessionToken("alice", "s1"))
	id := connID(c)
	_ = c.ws.Close(websocket.StatusNormalClosure, "bye")
	check(t, "client closed", id)

	c = e.dialToken(t, e.sessionToken("alice", "s1"))
	id = connID(c)
	e.hub.CloseSessions("alice", []string{"s1"})
	c.expectClose(websocket.StatusCode(CloseSessionRevoked))
	check(t, "session revoked", id)

	c = e.dialToken(t, e.sessionToken("alice", "s1"))
	id = connID(c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.hub.Shutdown(ctx)
	c.expectClose(websocket.StatusGoingAway)
	check(t, "shutdown", id)
}

// PublishSession reaches the connections of one session of the user, and no other.
func TestPublishSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	s1a := e.dialToken(t, e.sessionToken("alice", "s1"))
	s1b := e.dialToken(t, e.sessionToken("alice", "s1"))
	s2 := e.dialToken(t, e.sessionToken("alice", "s2"))
	bob := e.dialToken(t, e.sessionToken("bob", "s1")) // same session id, other user
	for _, c := range []*client{s1a, s1b, s2, bob} {
		c.call("ping", "ready", nil)
	}
	e.hub.PublishSession(context.Background(), "alice", "s1", "device_event", map[string]int{"n": 1})
	for _, c := range []*client{s1a, s1b} {
		if d := decodeData[map[string]int](t, c.expectNext("device_event")); d["n"] != 1 {
			t.Errorf("device_event data = %v", d)
		}
	}
	// Frames reach a connection in order: the ping's answer would come after the event.
	for _, c := range []*client{s2, bob} {
		if f := c.call("ping", "after", nil); f.Type != "ack" {
			t.Errorf("another session got %s %s, want nothing before the ping's ack", f.Type, f.Data)
		}
	}
}

// presenceChange is what an OnPresence hook saw.
type presenceChange struct {
	user   string
	online bool
}

func recordPresence(h *Hub) <-chan presenceChange {
	ch := make(chan presenceChange, 16)
	h.OnPresence(func(_ context.Context, userID string, online bool) {
		ch <- presenceChange{userID, online}
	})
	return ch
}

// nextPresence returns the next change reported by any of the hubs.
func nextPresence(t *testing.T, chans ...<-chan presenceChange) presenceChange {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		for _, ch := range chans {
			select {
			case p := <-ch:
				return p
			default:
			}
		}
		select {
		case <-timeout:
			t.Fatal("no OnPresence call")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// OnPresence reports a user's first connection and, after the grace period, their going offline;
// a second connection is not a change.
func TestOnPresence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.PresenceGrace = testGrace }, nil)
	ch := recordPresence(e.hub)
	a := e.dialReady(t, "alice")
	if got := nextPresence(t, ch); got != (presenceChange{"alice", true}) {
		t.Fatalf("first connection: %+v, want alice online", got)
	}
	b := e.dialReady(t, "alice")
	_ = a.ws.Close(websocket.StatusNormalClosure, "")
	_ = b.ws.Close(websocket.StatusNormalClosure, "")
	if got := nextPresence(t, ch); got != (presenceChange{"alice", false}) {
		t.Fatalf("after the last connection and the grace period: %+v, want alice offline", got)
	}
	select {
	case got := <-ch:
		t.Fatalf("unexpected change %+v", got)
	default:
	}
}

// Two nodes sharing Redis (bus and presence): PublishSession reaches the session's connections on
// both nodes, and OnPresence reports each change once, on one node.
func TestSessionAndPresenceAcrossNodes(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	node := func() *testEnv {
		bus := newTestBus(t, rdb, RedisBusOptions{Stream: prefix + ":stream"})
		return newEnvOptions(t, func(c *config.Config) { c.PresenceGrace = testGrace }, func(o *Options) {
			o.Bus = bus
			o.Redis = rdb
			o.RedisPrefix = prefix
		})
	}
	a, b := node(), node()
	atA, atB := recordPresence(a.hub), recordPresence(b.hub)

	onA := a.dialToken(t, a.sessionToken("alice", "s1"))
	onA.call("ping", "ready", nil)
	if got := nextPresence(t, atA, atB); got != (presenceChange{"alice", true}) {
		t.Fatalf("first connection: %+v, want alice online", got)
	}
	onB := b.dialToken(t, b.sessionToken("alice", "s1"))
	otherOnB := b.dialToken(t, b.sessionToken("alice", "s2"))
	onB.call("ping", "ready", nil)
	otherOnB.call("ping", "ready", nil)

	a.hub.PublishSession(context.Background(), "alice", "s1", "device_event", map[string]int{"n": 1})
	onA.expectNext("device_event")
	onB.expectNext("device_event") // through Redis
	b.hub.PublishSession(context.Background(), "alice", "s1", "device_event", map[string]int{"n": 2})
	onA.expectNext("device_event")
	if d := decodeData[map[string]int](t, onB.expectNext("device_event")); d["n"] != 2 {
		t.Errorf("second event data = %v", d)
	}
	// The other session saw nothing: the ack comes first, although a.hub published before the ping.
	if f := otherOnB.call("ping", "after", nil); f.Type != "ack" {
		t.Errorf("session s2 got %s %s, want only the ping's ack", f.Type, f.Data)
	}

	for _, c := range []*client{onA, onB, otherOnB} {
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
	}
	if got := nextPresence(t, atA, atB); got != (presenceChange{"alice", false}) {
		t.Fatalf("after the last connection anywhere: %+v, want alice offline", got)
	}
}
