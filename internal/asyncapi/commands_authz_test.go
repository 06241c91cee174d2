package asyncapi_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
)

// The command authorization matrix: every WebSocket command the hub dispatches (Hub.Commands,
// so a newly registered command without a row fails the test) × the two outsiders of a group, a
// stranger and a removed member, with the answer each must get. After every command, every
// connection round-trips a ping: the group's members must have received nothing caused by it,
// and the outsider nothing that names the group, its message or its call, and no presence of
// the owner (presence_subscribe leaves users who share no chat out, as if unknown).
//
// The group has the owner and a member (both connected), a message, and a ringing group call of
// the owner's; the removed member was a member and was removed before anything else happened.

// cmdRow is one command: the data an outsider sends, and the answer it must get: "ack", or the
// code of the error frame.
type cmdRow struct {
	data func(cx *cmdRig) any
	want string
	why  string // for an ack: why it is not a leak
}

type cmdRig struct {
	group, message, call, ownerID string
}

var commandMatrix = map[string]cmdRow{
	"send_message": {data: func(cx *cmdRig) any {
		return obj{"chat_id": cx.group, "client_id": "cmd-authz-" + time.Now().Format("150405.000000"), "text": "intrusion"}
	}, want: "not_found"},
	"join_chat": {data: func(cx *cmdRig) any { return obj{"chat_id": cx.group} }, want: "not_found"},
	"leave_chat": {data: func(cx *cmdRig) any { return obj{"chat_id": cx.group} }, want: "ack",
		why: "only unsubscribes this connection; acked for any well-formed id without a lookup, so no oracle"},
	"typing_indicator":  {data: func(cx *cmdRig) any { return obj{"chat_id": cx.group} }, want: "not_found"},
	"message_read":      {data: func(cx *cmdRig) any { return obj{"chat_id": cx.group, "seq": 1} }, want: "not_found"},
	"message_delivered": {data: func(cx *cmdRig) any { return obj{"chat_id": cx.group, "seq": 1} }, want: "not_found"},
	"sync":              {data: func(cx *cmdRig) any { return obj{"chat_id": cx.group, "after_seq": 0} }, want: "not_found"},
	"webrtc_offer": {data: func(cx *cmdRig) any {
		return obj{"call_id": cx.call, "to_user_id": cx.ownerID, "sdp": "v=0"}
	}, want: "not_found"},
	"webrtc_answer": {data: func(cx *cmdRig) any {
		return obj{"call_id": cx.call, "to_user_id": cx.ownerID, "sdp": "v=0"}
	}, want: "not_found"},
	"webrtc_ice_candidate": {data: func(cx *cmdRig) any {
		return obj{"call_id": cx.call, "to_user_id": cx.ownerID, "candidate": obj{"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}}
	}, want: "not_found"},
	"presence_count": {data: func(cx *cmdRig) any { return obj{"chat_id": cx.group} }, want: "not_found"},
	"location_update": {data: func(cx *cmdRig) any {
		return obj{"lat": 10, "lng": 10, "accuracy_m": 5}
	}, want: "ack", why: "the sender's own position, shared with nobody: no share of theirs exists"},
	"ping": {data: func(cx *cmdRig) any { return nil }, want: "ack", why: "the transport's own"},
	"presence_subscribe": {data: func(cx *cmdRig) any { return obj{"user_ids": []string{cx.ownerID}} }, want: "ack",
		why: "answered, but the presence it follows is checked below: nothing about the owner reaches an outsider"},
	"presence_unsubscribe": {data: func(cx *cmdRig) any { return obj{"user_ids": []string{cx.ownerID}} }, want: "ack", why: "removes a subscription"},
}

func TestCommandAuthorization(t *testing.T) {
	t.Parallel()
	onEachDialect(t, testCommandAuthorization)
}

func testCommandAuthorization(t *testing.T, n *servertest.Node) {
	cmds := n.Srv.Hub.Commands()
	for _, c := range cmds {
		if _, ok := commandMatrix[c]; !ok {
			t.Errorf("command %q has no row in commandMatrix (internal/asyncapi/commands_authz_test.go): say what an outsider gets", c)
		}
	}
	for c := range commandMatrix {
		if !slices.Contains(cmds, c) {
			t.Errorf("commandMatrix has a row for %q, which the hub does not dispatch", c)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	v := newValidator(t, n)
	own, mem, rem, str := n.Register(t, "cx_owner"), n.Register(t, "cx_member"), n.Register(t, "cx_removed"), n.Register(t, "cx_stranger")
	do := func(u servertest.User, method, path string, body, out any, want int) {
		t.Helper()
		if resp := n.Do(t, method, "/api/v1"+path, u.AccessToken, body, out); resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
		}
	}
	var g, m, call struct {
		ID string `json:"id"`
	}
	do(own, "POST", "/chats", obj{"type": "group", "title": "cx", "member_ids": []string{mem.ID, rem.ID}}, &g, 201)
	do(own, "DELETE", "/chats/"+g.ID+"/members/"+rem.ID, nil, nil, 204)
	do(own, "POST", "/chats/"+g.ID+"/messages", obj{"client_id": "cx-1", "text": "hello"}, &m, 201)
	do(own, "POST", "/calls", obj{"chat_id": g.ID, "kind": "audio"}, &call, 201)
	cx := &cmdRig{group: g.ID, message: m.ID, call: call.ID, ownerID: own.ID}

	insiders := []*wsClient{dial(t, n, v, own), dial(t, n, v, mem)}
	outsiders := map[string]*wsClient{"stranger": dial(t, n, v, str), "removed member": dial(t, n, v, rem)}
	all := append(slices.Clone(insiders), outsiders["stranger"], outsiders["removed member"])
	settle := func() {
		t.Helper()
		for _, c := range all {
			if f := c.command("ping", nil); f.Type != "ack" {
				t.Fatalf("ping as %s: %s %s", c.name, f.Type, f.Data)
			}
		}
	}
	settle()
	for _, c := range all {
		c.pending = nil // the connections' own presence and snapshots
	}

	names := slices.Sorted(func(yield func(string) bool) {
		for k := range commandMatrix {
			if !yield(k) {
				return
			}
		}
	})
	secrets := []string{cx.group, cx.message, cx.call}
	for _, cmd := range names {
		row := commandMatrix[cmd]
		for _, who := range []string{"stranger", "removed member"} {
			c := outsiders[who]
			f := c.command(cmd, row.data(cx))
			got := f.Type
			if f.Type == "error" {
				var e realtime.ErrorData
				if err := json.Unmarshal(f.Data, &e); err != nil {
					t.Fatalf("%s as %s: error frame %s: %v", cmd, who, f.Data, err)
				}
				got = e.Code
			}
			if cmd == "presence_subscribe" && strings.Contains(string(f.Data), own.ID) {
				t.Errorf("LEAK: presence_subscribe as %s follows the owner: %s", who, f.Data)
			}
			if got != row.want {
				t.Errorf("LEAK? %s as %s: %s %s, want %s", cmd, who, f.Type, f.Data, row.want)
			}
			settle()
			for _, in := range insiders {
				for _, p := range in.pending {
					t.Errorf("LEAK: %s as %s reached %s: %s %s", cmd, who, in.name, p.Type, p.Data)
				}
				in.pending = nil
			}
			for _, p := range c.pending {
				for _, s := range secrets {
					if strings.Contains(string(p.Data), s) {
						t.Errorf("LEAK: after %s, %s got %s %s", cmd, who, p.Type, p.Data)
					}
				}
				if strings.HasPrefix(p.Type, "presence") && strings.Contains(string(p.Data), own.ID) {
					t.Errorf("LEAK: after %s, %s got the owner's presence: %s %s", cmd, who, p.Type, p.Data)
				}
			}
			c.pending = nil
		}
	}
}
