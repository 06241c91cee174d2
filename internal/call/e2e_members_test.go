package call_test

import (
	"net/http"
	"testing"

	"github.com/nerutalk/nerutalk/internal/call"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// callEvents are every frame a call sends to a participant's connections.
var callEvents = []string{call.EventInitiated, call.EventAnswered, call.EventDeclined, call.EventParticipantJoined,
	call.EventParticipantLeft, call.EventEnded, call.CmdOffer, call.CmdAnswer, call.CmdICECandidate}

// TestE2ERemovedFromCall: a participant removed from a group (joined in the call, or still rung
// for), or who leaves it, while its call rings or is active, is out of the call at once: marked
// left (call_participant_left, reason "removed", to the others), refused everything on the call
// with not_found like a stranger (REST and signaling, both ways), and sent no further call event.
// On SQLite and PostgreSQL, real WebSocket clients.
func TestE2ERemovedFromCall(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			removedFromCall(t, servertest.New(t, d, ice))
		})
	}
}

func removedFromCall(t *testing.T, n *servertest.Node) {
	ann := n.Register(t, "ann")
	bob := n.Register(t, "bob")
	cat := n.Register(t, "cat")
	dan := n.Register(t, "dan")
	ann1 := connect(t, n, ann, "ann/1")
	bob1 := connect(t, n, bob, "bob/1")
	cat1 := connect(t, n, cat, "cat/1")
	dan1 := connect(t, n, dan, "dan/1")
	var g chatRef
	ann1.do(http.MethodPost, "/chats", map[string]any{"type": "group", "title": "g", "member_ids": []string{bob.ID, cat.ID, dan.ID}}, &g, http.StatusCreated)

	var c call.WithCredentials
	ann1.do(http.MethodPost, "/calls", map[string]any{"chat_id": g.ID, "kind": "video"}, &c, http.StatusCreated)
	everyone := []*device{ann1, bob1, cat1, dan1}
	for _, d := range everyone {
		d.event(call.EventInitiated, nil)
	}
	cat1.do(http.MethodPost, "/calls/"+c.ID+"/answer", nil, nil, http.StatusOK)
	for _, d := range everyone {
		d.event(call.EventAnswered, nil)
	}
	// Before the removal cat signals and is signaled.
	sdp := func(to string) map[string]any { return map[string]any{"call_id": c.ID, "to_user_id": to, "sdp": "v=0"} }
	if f := cat1.command(call.CmdOffer, sdp(ann.ID)); f.Type != "ack" {
		t.Fatalf("cat's offer before the removal: %s %s", f.Type, f.Data)
	}
	ann1.event(call.CmdOffer, nil)

	// ann (the owner) removes cat (joined) and dan (still rung for).
	for _, u := range []servertest.User{cat, dan} {
		ann1.do(http.MethodDelete, "/chats/"+g.ID+"/members/"+u.ID, nil, nil, http.StatusNoContent)
	}
	for _, d := range []*device{ann1, bob1} {
		for _, who := range []string{cat.ID, dan.ID} {
			var ev call.Event
			d.event(call.EventParticipantLeft, &ev)
			if ev.UserID != who || ev.Reason != call.ReasonRemoved {
				t.Fatalf("%s: participant left %+v, want %s removed", d.name, ev, who)
			}
		}
	}
	// The removed: their last frame of the chat was its chat_updated; from here on nothing.
	for _, d := range []*device{cat1, dan1} {
		d.event("chat_updated", nil)
		d.command("ping", nil)
		d.pending = nil
	}
	var now call.Call
	ann1.do(http.MethodGet, "/calls/"+c.ID, nil, &now, http.StatusOK)
	states := map[string]string{}
	for _, p := range now.Participants {
		states[p.UserID] = p.State
	}
	if now.Status != call.StatusActive || states[cat.ID] != call.StateLeft || states[dan.ID] != call.StateLeft || states[ann.ID] != call.StateJoined {
		t.Fatalf("after the removals: status %s, participants %v", now.Status, states)
	}

	// Every operation of a removed participant is 404, as for a stranger.
	for _, d := range []*device{cat1, dan1} {
		for _, op := range []string{"answer", "join", "decline", "leave", "end", "token"} {
			var p httpapi.Problem
			d.do(http.MethodPost, "/calls/"+c.ID+"/"+op, nil, &p, http.StatusNotFound)
			if p.Code != "not_found" {
				t.Fatalf("%s: %s: %+v", d.name, op, p)
			}
		}
		d.do(http.MethodGet, "/calls/"+c.ID, nil, nil, http.StatusNotFound)
		for _, typ := range []string{call.CmdOffer, call.CmdAnswer} {
			if code := d.refused(typ, sdp(ann.ID)); code != "not_found" {
				t.Fatalf("%s: %s: %s", d.name, typ, code)
			}
		}
		if code := d.refused(call.CmdICECandidate, map[string]any{"call_id": c.ID, "to_user_id": ann.ID, "candidate": map[string]any{"candidate": "x"}}); code != "not_found" {
			t.Fatalf("%s: candidate: %s", d.name, code)
		}
		if code := ann1.refused(call.CmdOffer, sdp(d.user.ID)); code != "not_found" {
			t.Fatalf("ann's offer to %s: %s", d.name, code)
		}
		d.do(http.MethodPost, "/calls", map[string]any{"chat_id": g.ID, "kind": "audio"}, nil, http.StatusNotFound)
	}

	// The call goes on without them: bob answers, then leaves the group himself.
	bob1.do(http.MethodPost, "/calls/"+c.ID+"/answer", nil, nil, http.StatusOK)
	ann1.event(call.EventAnswered, nil)
	bob1.event(call.EventAnswered, nil)
	bob1.do(http.MethodDelete, "/chats/"+g.ID, nil, nil, http.StatusNoContent)
	var left call.Event
	ann1.event(call.EventParticipantLeft, &left)
	if left.UserID != bob.ID || left.Reason != call.ReasonRemoved {
		t.Fatalf("bob left the chat: %+v", left)
	}
	bob1.event("chat_updated", nil)
	bob1.command("ping", nil)
	bob1.pending = nil
	// ann, the last one in, ends the call: only she hears of it.
	ann1.do(http.MethodPost, "/calls/"+c.ID+"/end", nil, nil, http.StatusOK)
	var ended call.Event
	ann1.event(call.EventEnded, &ended)
	if ended.Call.Status != call.StatusEnded {
		t.Fatalf("ended %+v", ended)
	}
	for _, d := range []*device{bob1, cat1, dan1} {
		d.none(callEvents...)
	}
}

// TestE2ERemovedEndsCall: when the removal leaves a call with nobody in it, or ringing for nobody,
// it ends (cancelled: it was never answered).
func TestE2ERemovedEndsCall(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, ice)
	ann := n.Register(t, "ann")
	bob := n.Register(t, "bob")
	cat := n.Register(t, "cat")
	ann1 := connect(t, n, ann, "ann/1")
	bob1 := connect(t, n, bob, "bob/1")
	var g chatRef
	ann1.do(http.MethodPost, "/chats", map[string]any{"type": "group", "title": "g", "member_ids": []string{bob.ID, cat.ID}}, &g, http.StatusCreated)
	var c call.WithCredentials
	bob1.do(http.MethodPost, "/calls", map[string]any{"chat_id": g.ID, "kind": "audio"}, &c, http.StatusCreated)
	ann1.do(http.MethodPost, "/calls/"+c.ID+"/decline", nil, nil, http.StatusOK)
	ann1.do(http.MethodDelete, "/chats/"+g.ID+"/members/"+cat.ID, nil, nil, http.StatusNoContent) // rung for nobody now
	var ended call.Event
	ann1.event(call.EventEnded, &ended)
	if ended.Reason != call.ReasonCancelled || ended.Call.Status != call.StatusEnded {
		t.Fatalf("ended %+v", ended)
	}
}
