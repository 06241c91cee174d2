package asyncapi_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// The receiver matrix: every server→client event type of the hub's Protocol() × the connections
// that may or may not receive it. Each row causes the event for real (REST or WebSocket) and
// checks with real WebSocket clients that exactly the expected connections receive it: one that
// is not expected and receives it is a leak. An event of Protocol() without a row fails
// TestEventReceivers (like authzMatrix for routes), and so does a row whose event is gone.
//
// The connections (one each, unless said otherwise):
//
//	owner     the actor of most rows: owns the group chat (and the call, share, geofence in it)
//	other     the owner's other session (a second sign-in: another device)
//	member    a plain member of the group
//	removed   a user who was a member of the group and was removed
//	stranger  a signed-in user with no relation to anything
//
// Non-delivery is checked without sleeping: once the expected connections have the event (and
// the cause's REST call or command has been answered), every other connection sends a ping and
// waits for its ack. A single node hands a published frame to all its connections' queues in
// one pass, before the ack of a later ping can be queued, so an event that was going to reach a
// connection is in front of that ack.

// role names a connection of the matrix.
type role string

const (
	owner    role = "owner"
	other    role = "other"
	member   role = "member"
	removed  role = "removed"
	stranger role = "stranger"
)

var roles = []role{owner, other, member, removed, stranger}

// receiverRow is one case of an event: what causes it, and who receives it.
type receiverRow struct {
	name string // the case, e.g. "the owner renames the group"
	// cause makes the event happen; it may open or close connections (rx.conns).
	cause func(t *testing.T, rx *receiverRig)
	want  []role // the connections that must receive it; every other open one must not
}

// receiverMatrix has the rows of every server→client event type, keyed by type, run in the order
// of receiverOrder (an order that builds the state each row needs: a message before its edit, a
// call before its answer).
var receiverMatrix = map[string][]receiverRow{
	"presence": {{
		name: "the owner comes online (first connection): the group's members follow them",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.conns[owner] = rx.dial(t, rx.owner)
		},
		want: []role{member},
	}},
	"presence_snapshot": {{
		name: "the owner opens a second session: only that connection gets the statuses it follows",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.conns[other] = rx.dial(t, rx.other)
		},
		want: []role{other},
	}},
	"chat_updated": {{
		name: "the owner renames the group",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "PATCH", "/chats/"+rx.group, obj{"title": "renamed"}, nil, 200)
		},
		want: []role{owner, other, member},
	}, {
		name: "the owner adds the removed user back (who then gets it too)",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "POST", "/chats/"+rx.group+"/members", obj{"user_ids": []string{rx.removed.ID}}, nil, 200)
		},
		want: []role{owner, other, member, removed},
	}, {
		name: "the owner removes them again (they get it once more, then nothing)",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "DELETE", "/chats/"+rx.group+"/members/"+rx.removed.ID, nil, nil, 204)
		},
		want: []role{owner, other, member, removed},
	}},
	"message_new": {{
		name: "the member sends a message over WebSocket",
		cause: func(t *testing.T, rx *receiverRig) {
			if f := rx.conns[member].command("send_message", obj{"chat_id": rx.group, "client_id": "rx-2", "text": "yo"}); f.Type != "ack" {
				t.Fatalf("send_message: %s %s", f.Type, f.Data)
			}
		},
		want: []role{owner, other, member},
	}, {
		name: "the owner sends a message over REST",
		cause: func(t *testing.T, rx *receiverRig) {
			var m struct {
				ID  string `json:"id"`
				Seq int64  `json:"seq"`
			}
			rx.do(t, rx.owner, "POST", "/chats/"+rx.group+"/messages", obj{"client_id": "rx-1", "text": "hi"}, &m, 201)
			rx.message, rx.seq = m.ID, m.Seq
		},
		want: []role{owner, other, member},
	}},
	"message_updated": {{
		name: "the owner edits the message",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "PATCH", "/chats/"+rx.group+"/messages/"+rx.message, obj{"text": "edited"}, nil, 200)
		},
		want: []role{owner, other, member},
	}},
	"message_delivered": {{
		name: "the member's device got the chat up to the message",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.member, "POST", "/chats/"+rx.group+"/delivered", obj{"seq": rx.seq}, nil, 200)
		},
		want: []role{owner, other, member},
	}},
	"message_read": {{
		name: "the member read the chat up to the message",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.member, "POST", "/chats/"+rx.group+"/read", obj{"seq": rx.seq}, nil, 200)
		},
		want: []role{owner, other, member},
	}},
	"message_deleted": {{
		name: "the owner deletes the message for everyone",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "DELETE", "/chats/"+rx.group+"/messages/"+rx.message, nil, nil, 204)
		},
		want: []role{owner, other, member},
	}},
	"typing_indicator": {{
		name: "the owner types, after every connection tried join_chat (the outsiders are refused)",
		cause: func(t *testing.T, rx *receiverRig) {
			for _, r := range roles {
				f := rx.conns[r].command("join_chat", obj{"chat_id": rx.group})
				if outsider := r == removed || r == stranger; outsider != (f.Type == "error") {
					t.Fatalf("join_chat as %s: %s %s", r, f.Type, f.Data)
				}
			}
			rx.conns[owner].command("typing_indicator", obj{"chat_id": rx.group, "typing": true})
		},
		want: []role{member}, // not the typist's own connections
	}},
	"call_initiated": {{
		name: "the owner starts a group call",
		cause: func(t *testing.T, rx *receiverRig) {
			var c struct {
				ID string `json:"id"`
			}
			rx.do(t, rx.owner, "POST", "/calls", obj{"chat_id": rx.group, "kind": "audio"}, &c, 201)
			rx.call = c.ID
		},
		want: []role{owner, other, member},
	}},
	"call_answered": {{
		name: "the member answers",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.member, "POST", "/calls/"+rx.call+"/answer", nil, nil, 200)
		},
		want: []role{owner, other, member},
	}},
	"webrtc_offer": {{
		name: "the owner sends an offer to the member",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.signal(t, owner, "webrtc_offer", rx.member.ID, obj{"sdp": "v=0"})
		},
		want: []role{member},
	}},
	"webrtc_answer": {{
		name: "the member answers the owner (every connection of the owner's)",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.signal(t, member, "webrtc_answer", rx.owner.ID, obj{"sdp": "v=0"})
		},
		want: []role{owner, other},
	}, {
		name: "the member answers one session of the owner's (to_session_id): only that one",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.signal(t, member, "webrtc_answer", rx.owner.ID, obj{"sdp": "v=0", "to_session_id": rx.otherSession})
		},
		want: []role{other},
	}},
	"webrtc_ice_candidate": {{
		name: "the member sends a candidate to the owner",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.signal(t, member, "webrtc_ice_candidate", rx.owner.ID, obj{"candidate": obj{"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": "0"}})
		},
		want: []role{owner, other},
	}},
	"call_participant_left": {{
		name: "the member leaves the call",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.member, "POST", "/calls/"+rx.call+"/leave", nil, nil, 200)
		},
		want: []role{owner, other, member},
	}},
	"call_participant_joined": {{
		name: "the member joins again",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.member, "POST", "/calls/"+rx.call+"/join", nil, nil, 200)
		},
		want: []role{owner, other, member},
	}},
	"call_ended": {{
		name: "the owner ends the call",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "POST", "/calls/"+rx.call+"/end", nil, nil, 200)
		},
		want: []role{owner, other, member},
	}},
	"call_declined": {{
		name: "the member declines a new call",
		cause: func(t *testing.T, rx *receiverRig) {
			var c struct {
				ID string `json:"id"`
			}
			rx.do(t, rx.owner, "POST", "/calls", obj{"chat_id": rx.group, "kind": "video"}, &c, 201)
			rx.await(t, "call_initiated", owner, other, member)
			rx.do(t, rx.member, "POST", "/calls/"+c.ID+"/decline", nil, nil, 200)
		},
		want: []role{owner, other, member},
	}},
	"location_share_start": {{
		name: "the owner shares their location with the group",
		cause: func(t *testing.T, rx *receiverRig) {
			var s struct {
				ID string `json:"id"`
			}
			rx.do(t, rx.owner, "POST", "/location/shares", obj{"chat_id": rx.group, "precision": "exact"}, &s, 201)
			rx.share = s.ID
		},
		want: []role{member}, // the viewers: not the owner of the share
	}},
	"shared_location_update": {{
		name:  "the owner reports a position",
		cause: func(t *testing.T, rx *receiverRig) { rx.report(t, -33.87, 151.21) },
		want:  []role{member},
	}},
	"geofence_event": {{
		name: "the owner enters their geofence (no notify)",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "POST", "/geofences", obj{"name": "home", "center": obj{"lat": -33.8568, "lng": 151.2153}, "radius_m": 100}, nil, 201)
			rx.report(t, -33.8568, 151.2153)
			rx.await(t, "shared_location_update", member)
		},
		want: []role{owner, other},
	}, {
		name: "the owner leaves a geofence whose events go to the viewers too (notify viewers)",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "POST", "/geofences", obj{"name": "office", "center": obj{"lat": -33.80, "lng": 151.10}, "radius_m": 100, "notify": "viewers"}, nil, 201)
			rx.report(t, -33.80, 151.10)
			rx.await(t, "shared_location_update", member)
			rx.drainType(t, "geofence_event") // the enter event of the first fence
			rx.report(t, -33.85, 151.10)
		},
		want: []role{owner, other, member},
	}},
	"group_invitation": {{
		name: "the owner adds the stranger, who lets nobody add them: an invitation, to the stranger only",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.stranger, "PATCH", "/users/me", obj{"group_adds": "nobody"}, nil, 200)
			rx.do(t, rx.owner, "POST", "/chats/"+rx.group+"/members", obj{"user_ids": []string{rx.stranger.ID}}, nil, 200)
		},
		want: []role{stranger},
	}},
	"location_share_stop": {{
		name: "the owner blocks the member, then unblocks: the member stops seeing the group share (told it stopped)",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "POST", "/users/"+rx.member.ID+"/block", nil, nil, 204)
			rx.do(t, rx.owner, "DELETE", "/users/"+rx.member.ID+"/block", nil, nil, 204) // location_share_start again, for the next row
		},
		want: []role{member},
	}, {
		name: "the owner stops the share",
		cause: func(t *testing.T, rx *receiverRig) {
			rx.do(t, rx.owner, "DELETE", "/location/shares/"+rx.share, nil, nil, 204)
		},
		want: []role{member},
	}},
}

// receiverOrder is the order the event types run in.
var receiverOrder = []string{
	"presence", "presence_snapshot",
	"chat_updated", "message_new", "message_updated", "message_delivered", "message_read", "message_deleted", "typing_indicator",
	"call_initiated", "call_answered", "webrtc_offer", "webrtc_answer", "webrtc_ice_candidate",
	"call_participant_left", "call_participant_joined", "call_ended", "call_declined",
	"location_share_start", "shared_location_update", "geofence_event", "location_share_stop",
	"group_invitation", // last: the stranger is an invitee from then on
}

type obj = map[string]any

// receiverRig is the node, the users, their connections and the ids the rows share.
type receiverRig struct {
	top *testing.T // the test the connections live as long as (a row's t ends with the row)
	n   *servertest.Node
	ws  *servertest.Node // where the connections are (n, or a second node of n's deployment)
	v   *validator
	// crossNode, with two nodes, returns once what n published before the call has reached
	// the connections on ws (queued for them; the ping barrier then makes them receive it).
	crossNode func(t *testing.T)

	owner, other, member, removed, stranger servertest.User // other: the owner's second session
	conns                                   map[role]*wsClient

	otherSession                string // the auth session of other
	group, message, call, share string
	seq                         int64
	reports                     int
}

func (rx *receiverRig) do(t *testing.T, u servertest.User, method, path string, body, out any, want int) {
	t.Helper()
	// The exact success status is the contract checker's business; here any 2xx will do.
	if resp := rx.n.Do(t, method, "/api/v1"+path, u.AccessToken, body, out); resp.StatusCode/100 != want/100 {
		t.Fatalf("%s %s as %s: %d, want %d", method, path, u.Username, resp.StatusCode, want)
	}
}

// dial opens a connection that lives until the end of the test, not of the row.
func (rx *receiverRig) dial(t *testing.T, u servertest.User) *wsClient {
	c := dial(rx.top, rx.ws, rx.v, u)
	c.t = t
	return c
}

// signal sends a WebRTC signaling command from a connection and requires its ack.
func (rx *receiverRig) signal(t *testing.T, from role, typ, to string, extra obj) {
	t.Helper()
	data := obj{"call_id": rx.call, "to_user_id": to}
	for k, v := range extra {
		data[k] = v
	}
	if f := rx.conns[from].command(typ, data); f.Type != "ack" {
		t.Fatalf("%s: %s %s", typ, f.Type, f.Data)
	}
}

// report sends the owner's position over the owner's connection.
func (rx *receiverRig) report(t *testing.T, lat, lng float64) {
	t.Helper()
	rx.reports++
	at := time.Now().Add(time.Duration(rx.reports) * time.Second).UTC().Format(time.RFC3339Nano)
	if f := rx.conns[owner].command("location_update", obj{"lat": lat, "lng": lng, "accuracy_m": 5, "recorded_at": at}); f.Type != "ack" {
		t.Fatalf("location_update: %s %s", f.Type, f.Data)
	}
}

// await waits for one event of type typ on each of the connections (a step a row needs first).
func (rx *receiverRig) await(t *testing.T, typ string, on ...role) {
	t.Helper()
	for _, r := range on {
		rx.conns[r].next(typ)
	}
}

// barrier makes every open connection round-trip a ping: what was queued for it before is then
// received (in pending).
func (rx *receiverRig) barrier(t *testing.T) {
	t.Helper()
	if rx.crossNode != nil {
		rx.crossNode(t)
	}
	for _, r := range roles {
		if c := rx.conns[r]; c != nil {
			if f := c.command("ping", nil); f.Type != "ack" {
				t.Fatalf("ping as %s: %s %s", r, f.Type, f.Data)
			}
		}
	}
}

// drainType makes every connection round-trip a ping and forgets the frames of type typ it got
// (events a row's preparation causes besides the one it checks).
func (rx *receiverRig) drainType(t *testing.T, typ string) {
	t.Helper()
	rx.barrier(t)
	for _, c := range rx.conns {
		if c != nil {
			c.pending = slices.DeleteFunc(c.pending, func(f realtime.Frame) bool { return f.Type == typ })
		}
	}
}

// drain forgets every frame received so far (after a barrier).
func (rx *receiverRig) drain() {
	for _, c := range rx.conns {
		if c == nil {
			continue
		}
		c.pending = nil
	more:
		for {
			select {
			case _, ok := <-c.in:
				if !ok {
					break more
				}
			default:
				break more
			}
		}
	}
}

func TestEventReceivers(t *testing.T) {
	t.Parallel()
	onEachDialect(t, testEventReceivers)
}

// onEachDialect runs test on a fresh node per database, configured for the matrices: a short
// presence grace, p2p calls and no rate limits.
func onEachDialect(t *testing.T, test func(*testing.T, *servertest.Node)) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			test(t, servertest.New(t, d, matrixConfig))
		})
	}
}

// matrixConfig is the configuration of the matrices' nodes.
func matrixConfig(c *config.Config) {
	c.PresenceGrace = 10 * time.Millisecond
	c.CallsProvider = "p2p"
	c.RateLimits = false
}

// crossNodeBarrier makes the barrier of a two-node rig: a message sent through rx.n in a direct
// chat of two users of its own, awaited on the second one's connection to rx.ws. The first
// node publishes its events in order (chat's events through one pipeline, in commit order, and
// the bus keeps each node's order), and the second delivers the bus in order: once the message
// is there, everything rx.n published before it has been queued on rx.ws's connections. The
// two users share no chat with the matrix's users, so their own events never reach the rows.
func crossNodeBarrier(t *testing.T, rx *receiverRig) func(*testing.T) {
	from, to := rx.n.Register(t, "rx_barrier_from"), rx.n.Register(t, "rx_barrier_to")
	var direct struct {
		ID string `json:"id"`
	}
	rx.do(t, from, "POST", "/chats", obj{"type": "direct", "member_ids": []string{to.ID}}, &direct, 201)
	c := dial(t, rx.ws, rx.v, to)
	n := 0
	return func(t *testing.T) {
		t.Helper()
		n++
		c.t = t
		rx.do(t, from, "POST", "/chats/"+direct.ID+"/messages", obj{"client_id": fmt.Sprintf("barrier-%d", n), "text": "barrier"}, nil, 201)
		for {
			f := c.next("message_new")
			if strings.Contains(string(f.Data), fmt.Sprintf(`"client_id":"barrier-%d"`, n)) {
				break
			}
		}
		c.pending = nil
	}
}

// TestEventReceiversTwoNodes: the same matrix on two nodes of one deployment (PostgreSQL and
// Redis): every request goes to the first node, every connection is on the second, so each
// event a request causes reaches its receivers over the Redis bus, and each event a connection
// causes is published by the second node.
func TestEventReceiversTwoNodes(t *testing.T) {
	t.Parallel()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	mutate := func(c *config.Config) {
		matrixConfig(c)
		c.RedisURL, c.RedisPrefix = redisURL, prefix
	}
	a := servertest.New(t, store.Postgres, mutate)
	b := servertest.New(t, store.Postgres, func(c *config.Config) {
		mutate(c)
		c.DatabaseURL = a.Config.DatabaseURL
	})
	testEventReceiversOn(t, a, b)
}

func testEventReceivers(t *testing.T, n *servertest.Node) { testEventReceiversOn(t, n, n) }

// testEventReceiversOn runs the matrix with the requests on n and the connections on ws.
func testEventReceiversOn(t *testing.T, n, ws *servertest.Node) {
	// Every event of the protocol has a row, and every row an event of the protocol.
	var events []string
	for _, e := range n.Srv.Hub.Protocol().Events {
		events = append(events, e.Type)
		if len(receiverMatrix[e.Type]) == 0 {
			t.Errorf("event %q has no row in receiverMatrix (internal/asyncapi/receivers_test.go): say who receives it", e.Type)
		}
		if !slices.Contains(receiverOrder, e.Type) {
			t.Errorf("event %q is not in receiverOrder", e.Type)
		}
	}
	for typ := range receiverMatrix {
		if !slices.Contains(events, typ) {
			t.Errorf("receiverMatrix has a row for %q, which is not an event of the protocol", typ)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	rx := &receiverRig{top: t, n: n, ws: ws, v: newValidator(t, n), conns: map[role]*wsClient{}}
	if ws != n {
		rx.crossNode = crossNodeBarrier(t, rx)
	}
	rx.owner, rx.member, rx.removed, rx.stranger = n.Register(t, "rx_owner"), n.Register(t, "rx_member"), n.Register(t, "rx_removed"), n.Register(t, "rx_stranger")
	var login struct {
		AccessToken string `json:"access_token"`
	}
	rx.do(t, servertest.User{}, "POST", "/auth/login", map[string]string{"login": "rx_owner", "password": "correct horse battery"}, &login, 200)
	rx.other = servertest.User{ID: rx.owner.ID, Username: "rx_owner (other session)", AccessToken: login.AccessToken}
	var sessions struct {
		Items []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"items"`
	}
	rx.do(t, rx.other, "GET", "/auth/sessions", nil, &sessions, 200)
	for _, s := range sessions.Items {
		if s.Current {
			rx.otherSession = s.ID
		}
	}
	var g struct {
		ID string `json:"id"`
	}
	rx.do(t, rx.owner, "POST", "/chats", obj{"type": "group", "title": "rx", "member_ids": []string{rx.member.ID, rx.removed.ID}}, &g, 201)
	rx.group = g.ID
	rx.do(t, rx.owner, "DELETE", "/chats/"+rx.group+"/members/"+rx.removed.ID, nil, nil, 204)
	// The others connect first; the owner's connections are opened by the presence rows.
	for _, r := range []role{member, removed, stranger} {
		u := map[role]servertest.User{member: rx.member, removed: rx.removed, stranger: rx.stranger}[r]
		rx.conns[r] = dial(t, ws, rx.v, u)
	}
	rx.barrier(t)
	rx.drain()

	for _, typ := range receiverOrder {
		for _, row := range receiverMatrix[typ] {
			ok := t.Run(typ+"/"+strings.ReplaceAll(row.name, " ", "_"), func(t *testing.T) {
				for _, c := range rx.conns {
					c.t = t
				}
				row.cause(t, rx)
				for _, r := range row.want {
					if rx.conns[r] == nil {
						t.Fatalf("row wants %s, which has no connection", r)
					}
					rx.conns[r].next(typ)
				}
				rx.barrier(t)
				for _, r := range roles {
					c := rx.conns[r]
					if c == nil {
						continue
					}
					for _, f := range c.pending {
						if f.Type == typ && f.ID == "" && !slices.Contains(row.want, r) {
							t.Errorf("LEAK: %s received %s: %s", r, typ, f.Data)
						}
					}
				}
				rx.drain()
			})
			if !ok {
				return // later rows build on this one
			}
		}
	}
}
