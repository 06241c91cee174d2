package call_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nerutalk/nerutalk/internal/call"
	"github.com/nerutalk/nerutalk/internal/call/agora"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

type chatRef struct {
	ID         string  `json:"id"`
	ActiveCall *string `json:"active_call"`
}

// TestE2E runs the lifecycle over real WebSocket clients on one node (SQLite).
func TestE2E(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, ice)
	lifecycle(t, n, n)
}

// TestE2EMultiNode runs it across two nodes sharing PostgreSQL and Redis, with the devices of
// each user spread over both.
func TestE2EMultiNode(t *testing.T) {
	t.Parallel()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	a := servertest.New(t, store.Postgres, func(c *config.Config) { ice(c); c.RedisURL, c.RedisPrefix = redisURL, prefix })
	b := servertest.New(t, store.Postgres, func(c *config.Config) {
		ice(c)
		c.DatabaseURL, c.RedisURL, c.RedisPrefix = a.Config.DatabaseURL, redisURL, prefix
	})
	lifecycle(t, a, b)
}

func ice(c *config.Config) {
	c.STUNURLs, c.TURNURLs, c.TURNSecret = []string{"stun:stun.example.org"}, []string{"turn:turn.example.org"}, "north"
}

func lifecycle(t *testing.T, a, b *servertest.Node) {
	ann := a.Register(t, "ann")
	bob := a.Register(t, "bob")
	cat := a.Register(t, "cat")
	eve := a.Register(t, "eve")
	ann1 := connect(t, a, ann, "ann/1")
	ann2 := connect(t, b, login(t, b, ann), "ann/2")
	bob1 := connect(t, b, bob, "bob/1")
	bob2 := connect(t, a, login(t, a, bob), "bob/2")
	cat1 := connect(t, b, cat, "cat/1")
	eve1 := connect(t, a, eve, "eve/1")

	var direct, group chatRef
	ann1.do(http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{bob.ID}}, &direct, http.StatusCreated)
	ann1.do(http.MethodPost, "/chats", map[string]any{"type": "group", "title": "g", "member_ids": []string{bob.ID, cat.ID}}, &group, http.StatusCreated)

	// --- A direct call: ring, signal, answer on one device, hang up.
	var started call.WithCredentials
	ann1.do(http.MethodPost, "/calls", map[string]any{"chat_id": direct.ID, "kind": "video"}, &started, http.StatusCreated)
	if started.Status != "ringing" || started.Credentials.Provider != "p2p" || started.Channel == "" {
		t.Fatalf("started %+v", started)
	}
	for _, d := range []*device{ann1, ann2, bob1, bob2} {
		var ev call.Event
		d.event(call.EventInitiated, &ev)
		if ev.Call.ID != started.ID || ev.UserID != ann.ID {
			t.Fatalf("%s: call_initiated %+v", d.name, ev)
		}
	}
	// The chat shows its live call, in the chat and in the list.
	var seen chatRef
	bob1.do(http.MethodGet, "/chats/"+direct.ID, nil, &seen, http.StatusOK)
	if seen.ActiveCall == nil || *seen.ActiveCall != started.ID {
		t.Fatalf("active_call %v, want %s", seen.ActiveCall, started.ID)
	}
	var list httpapi.Page[chatRef]
	ann2.do(http.MethodGet, "/chats", nil, &list, http.StatusOK)
	for _, c := range list.Items {
		if live := c.ActiveCall != nil && *c.ActiveCall == started.ID; live != (c.ID == direct.ID) {
			t.Fatalf("chat list: %s has active_call %v", c.ID, c.ActiveCall)
		}
	}
	// One live call per chat: 409 with its id.
	var p httpapi.Problem
	bob1.do(http.MethodPost, "/calls", map[string]any{"chat_id": direct.ID, "kind": "audio"}, &p, http.StatusConflict)
	if p.Code != "call_in_progress" || p.ExistingID != started.ID {
		t.Fatalf("second call: %+v", p)
	}
	// Strangers: 404 everywhere, and no signaling.
	eve1.do(http.MethodGet, "/calls/"+started.ID, nil, nil, http.StatusNotFound)
	eve1.do(http.MethodPost, "/calls/"+started.ID+"/token", nil, nil, http.StatusNotFound)
	eve1.do(http.MethodPost, "/calls/"+started.ID+"/answer", nil, nil, http.StatusNotFound)
	for _, op := range []string{"decline", "join", "leave", "end"} {
		eve1.do(http.MethodPost, "/calls/"+started.ID+"/"+op, nil, nil, http.StatusNotFound)
	}
	eve1.do(http.MethodPost, "/calls", map[string]any{"chat_id": direct.ID, "kind": "audio"}, nil, http.StatusNotFound)
	offer := map[string]any{"call_id": started.ID, "to_user_id": bob.ID, "sdp": "v=0 offer"}
	if c := eve1.refused(call.CmdOffer, offer); c != "not_found" {
		t.Fatalf("stranger's offer: %s", c)
	}
	if c := cat1.refused(call.CmdOffer, map[string]any{"call_id": started.ID, "to_user_id": ann.ID, "sdp": "x"}); c != "not_found" {
		t.Fatalf("other chat's member's offer: %s", c)
	}
	if c := ann1.refused(call.CmdOffer, map[string]any{"call_id": started.ID, "to_user_id": cat.ID, "sdp": "x"}); c != "not_found" {
		t.Fatalf("offer to a non-participant: %s", c)
	}
	if c := ann1.refused(call.CmdICECandidate, map[string]any{"call_id": started.ID, "to_user_id": bob.ID}); c != "validation_failed" {
		t.Fatalf("candidate without candidate: %s", c)
	}
	// The caller's offer reaches every device of the callee while it rings.
	if f := ann1.command(call.CmdOffer, offer); f.Type != "ack" {
		t.Fatalf("offer: %s %s", f.Type, f.Data)
	}
	for _, d := range []*device{bob1, bob2} {
		var s call.Signal
		d.event(call.CmdOffer, &s)
		if s.FromUserID != ann.ID || s.SDP != "v=0 offer" || s.CallID != started.ID {
			t.Fatalf("%s: offer %+v", d.name, s)
		}
	}
	bob1.do(http.MethodPost, "/calls/"+started.ID+"/token", nil, nil, http.StatusConflict) // not answered yet
	// bob answers on his second device: everyone learns who and from which session.
	var answered call.WithCredentials
	bob2.do(http.MethodPost, "/calls/"+started.ID+"/answer", nil, &answered, http.StatusOK)
	if answered.Status != "active" || answered.Credentials.Channel != started.Channel || len(answered.Credentials.ICEServers) != 2 {
		t.Fatalf("answered %+v", answered)
	}
	bobSession := answered.Participants[1].SessionID
	if answered.Participants[1].UserID != bob.ID || bobSession == "" {
		t.Fatalf("participants %+v", answered.Participants)
	}
	for _, d := range []*device{ann1, ann2, bob1, bob2} {
		var ev call.Event
		d.event(call.EventAnswered, &ev)
		if ev.UserID != bob.ID || ev.SessionID != bobSession || ev.Call.Status != "active" {
			t.Fatalf("%s: call_answered %+v", d.name, ev)
		}
	}
	bob1.do(http.MethodPost, "/calls/"+started.ID+"/answer", nil, &p, http.StatusConflict) // the other device
	// bob's answer and candidates go back to ann.
	cand := json.RawMessage(`{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host","sdpMid":"0"}`)
	if f := bob2.command(call.CmdICECandidate, map[string]any{"call_id": started.ID, "to_user_id": ann.ID, "candidate": cand}); f.Type != "ack" {
		t.Fatalf("candidate: %s", f.Data)
	}
	for _, d := range []*device{ann1, ann2} {
		var s call.Signal
		d.event(call.CmdICECandidate, &s)
		if s.FromUserID != bob.ID || string(s.Candidate) != string(cand) {
			t.Fatalf("%s: candidate %+v", d.name, s)
		}
	}
	// Addressed to the session that answered: only that device gets it.
	reoffer := map[string]any{"call_id": started.ID, "to_user_id": bob.ID, "to_session_id": bobSession, "sdp": "v=0 renegotiate"}
	if f := ann2.command(call.CmdOffer, reoffer); f.Type != "ack" {
		t.Fatalf("offer to a session: %s", f.Data)
	}
	var s call.Signal
	bob2.event(call.CmdOffer, &s)
	if s.SDP != "v=0 renegotiate" || s.FromUserID != ann.ID || s.FromSessionID == "" {
		t.Fatalf("session offer %+v", s)
	}
	bob1.none(call.CmdOffer)
	var tok call.WithCredentials
	bob1.do(http.MethodPost, "/calls/"+started.ID+"/token", nil, &tok, http.StatusOK)
	var got call.Call
	ann2.do(http.MethodGet, "/calls/"+started.ID, nil, &got, http.StatusOK)
	if got.Status != "active" {
		t.Fatalf("get %+v", got)
	}
	var live httpapi.Page[call.Call]
	bob1.do(http.MethodGet, "/calls?status=active", nil, &live, http.StatusOK)
	if len(live.Items) != 1 || live.Items[0].ID != started.ID {
		t.Fatalf("active calls %+v", live)
	}
	bob1.do(http.MethodPost, "/calls/"+started.ID+"/leave", nil, nil, http.StatusOK)
	for _, d := range []*device{ann1, ann2, bob1, bob2} {
		var left, ended call.Event
		d.event(call.EventParticipantLeft, &left)
		d.event(call.EventEnded, &ended)
		if left.UserID != bob.ID || ended.Reason != "completed" || ended.Call.Status != "ended" {
			t.Fatalf("%s: left %+v ended %+v", d.name, left, ended)
		}
	}
	bob1.do(http.MethodPost, "/calls/"+started.ID+"/token", nil, &p, http.StatusConflict)
	if p.Code != "call_ended" {
		t.Fatalf("token after the end: %+v", p)
	}
	if c := ann1.refused(call.CmdOffer, offer); c != "call_ended" {
		t.Fatalf("offer after the end: %s", c)
	}
	seen = chatRef{}
	bob1.do(http.MethodGet, "/chats/"+direct.ID, nil, &seen, http.StatusOK)
	if seen.ActiveCall != nil {
		t.Fatalf("active_call after the end: %s", *seen.ActiveCall)
	}

	// --- A group call: every member's devices follow it.
	var g call.WithCredentials
	bob1.do(http.MethodPost, "/calls", map[string]any{"chat_id": group.ID, "kind": "audio"}, &g, http.StatusCreated)
	everyone := []*device{ann1, ann2, bob1, bob2, cat1}
	for _, d := range everyone {
		d.event(call.EventInitiated, nil)
	}
	cat1.do(http.MethodPost, "/calls/"+g.ID+"/answer", nil, nil, http.StatusOK)
	for _, d := range everyone {
		d.event(call.EventAnswered, nil)
	}
	ann2.do(http.MethodPost, "/calls/"+g.ID+"/join", nil, nil, http.StatusOK)
	for _, d := range everyone {
		var ev call.Event
		d.event(call.EventParticipantJoined, &ev)
		if ev.UserID != ann.ID {
			t.Fatalf("%s: joined %+v", d.name, ev)
		}
	}
	cat1.do(http.MethodPost, "/calls/"+g.ID+"/end", nil, nil, http.StatusForbidden) // a member
	ann1.do(http.MethodPost, "/calls/"+g.ID+"/end", nil, nil, http.StatusOK)        // the group's owner
	for _, d := range everyone {
		var ev call.Event
		d.event(call.EventEnded, &ev)
		if ev.UserID != ann.ID || ev.Call.EndReason != "completed" {
			t.Fatalf("%s: ended %+v", d.name, ev)
		}
	}
	eve1.none(call.EventInitiated, call.EventAnswered, call.EventEnded, call.CmdOffer)

	// --- History and stats.
	var hist httpapi.Page[call.Call]
	ann1.do(http.MethodGet, "/calls?limit=1", nil, &hist, http.StatusOK)
	if len(hist.Items) != 1 || hist.Items[0].ID != g.ID || hist.NextCursor == "" {
		t.Fatalf("history %+v", hist)
	}
	ann1.do(http.MethodGet, "/calls?limit=1&cursor="+hist.NextCursor, nil, &hist, http.StatusOK)
	if len(hist.Items) != 1 || hist.Items[0].ID != started.ID {
		t.Fatalf("history page 2 %+v", hist)
	}
	ann1.do(http.MethodGet, "/calls?chat_id="+group.ID, nil, &hist, http.StatusOK)
	if len(hist.Items) != 1 {
		t.Fatalf("group history %+v", hist)
	}
	ann1.do(http.MethodGet, "/calls?status=bogus", nil, nil, http.StatusUnprocessableEntity)
	eve1.do(http.MethodGet, "/calls", nil, &hist, http.StatusOK)
	if len(hist.Items) != 0 {
		t.Fatalf("eve's history %+v", hist)
	}
	var st call.Stats
	ann1.do(http.MethodGet, "/calls/stats", nil, &st, http.StatusOK)
	if st.Total != 2 || st.ByKind["video"] != 1 || st.ByStatus["ended"] != 2 || st.Answered != 2 || st.Scope != "own" {
		t.Fatalf("stats %+v", st)
	}
	from := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	ann1.do(http.MethodGet, "/calls/stats?from="+from, nil, nil, http.StatusUnprocessableEntity)
	ann1.do(http.MethodGet, "/calls/stats?from=yesterday", nil, nil, http.StatusUnprocessableEntity)
	ann1.do(http.MethodPost, "/calls", map[string]any{"chat_id": direct.ID, "kind": "hologram"}, nil, http.StatusUnprocessableEntity)
	// Ids that cannot exist are refused before SQL, alike on both databases (never a 500).
	ann1.do(http.MethodGet, "/calls/nope", nil, nil, http.StatusUnprocessableEntity)
	ann1.do(http.MethodPost, "/calls/%00"+started.ID[1:]+"/answer", nil, nil, http.StatusUnprocessableEntity)
	ann1.do(http.MethodGet, "/calls?chat_id=%00", nil, nil, http.StatusUnprocessableEntity)
	ann1.do(http.MethodGet, "/calls?cursor=azE6AA", nil, nil, http.StatusUnprocessableEntity) // "k1:\x00"
	ann1.do(http.MethodPost, "/calls", map[string]any{"chat_id": "x\u0000", "kind": "audio"}, nil, http.StatusUnprocessableEntity)
	ann1.do(http.MethodGet, "/calls/01a23c3b-b83c-7843-b51b-9695464cd964", nil, nil, http.StatusNotFound)
	if c := ann1.refused(call.CmdOffer, map[string]any{"call_id": "\u0000", "to_user_id": bob.ID, "sdp": "x"}); c != "validation_failed" {
		t.Fatalf("offer with a NUL call id: %s", c)
	}

	// --- A group call everyone declines: call_declined for each, then call_ended (declined).
	var d call.WithCredentials
	cat1.do(http.MethodPost, "/calls", map[string]any{"chat_id": group.ID, "kind": "audio"}, &d, http.StatusCreated)
	for _, dev := range everyone {
		dev.event(call.EventInitiated, nil)
	}
	bob2.do(http.MethodPost, "/calls/"+d.ID+"/decline", nil, nil, http.StatusOK)
	bob1.do(http.MethodPost, "/calls/"+d.ID+"/token", nil, nil, http.StatusConflict) // declined: no credentials
	ann1.do(http.MethodPost, "/calls/"+d.ID+"/decline", nil, nil, http.StatusOK)
	for _, dev := range everyone {
		var first, second, ended call.Event
		dev.event(call.EventDeclined, &first)
		dev.event(call.EventDeclined, &second)
		dev.event(call.EventEnded, &ended)
		if first.UserID != bob.ID || second.UserID != ann.ID || ended.Reason != "declined" || ended.Call.Status != "declined" {
			t.Fatalf("%s: declined %+v %+v ended %+v", dev.name, first, second, ended)
		}
	}
	eve1.none(call.EventDeclined, call.EventEnded)
}

// TestE2EMissed: unanswered past the ring timeout, the call ends as missed on every device and
// the chat gets a system message. The sweeper is a second calls service on the node's database,
// chats and hub (as another node's would be) with a clock 46 s ahead: no sleeping.
func TestE2EMissed(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	ann := n.Register(t, "ann")
	bob := n.Register(t, "bob")
	annD := connect(t, n, ann, "ann/1")
	bobD := connect(t, n, bob, "bob/1")
	var direct chatRef
	annD.do(http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{bob.ID}}, &direct, http.StatusCreated)
	var c call.WithCredentials
	annD.do(http.MethodPost, "/calls", map[string]any{"chat_id": direct.ID, "kind": "audio"}, &c, http.StatusCreated)
	bobD.event(call.EventInitiated, nil)

	later := call.New(n.Srv.DB, n.Srv.Chat, n.Srv.Hub, call.Options{Now: func() time.Time { return time.Now().Add(46 * time.Second) }})
	if err := later.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{annD, bobD} {
		var ev call.Event
		d.event(call.EventEnded, &ev)
		if ev.Reason != "missed" || ev.Call.Status != "missed" {
			t.Fatalf("%s: ended %+v", d.name, ev)
		}
		var m struct {
			Kind     string `json:"kind"`
			Text     string `json:"text"`
			SenderID string `json:"sender_id"`
		}
		d.event("message_new", &m)
		if m.Kind != "system" || m.Text != "Missed audio call" || m.SenderID != ann.ID {
			t.Fatalf("%s: message %+v", d.name, m)
		}
	}
	bobD.do(http.MethodPost, "/calls/"+c.ID+"/answer", nil, nil, http.StatusConflict)
	// A second sweep (another node) changes nothing and posts nothing.
	if err := later.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	bobD.none(call.EventEnded, "message_new")
}

// TestE2EDisconnect: a participant whose last connection drops is taken out of the call after
// the presence grace and the disconnect grace (both short here), and the call ends.
func TestE2EDisconnect(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, func(c *config.Config) {
		c.PresenceGrace, c.CallDisconnectGrace = 50*time.Millisecond, 50*time.Millisecond
	})
	ann := n.Register(t, "ann")
	bob := n.Register(t, "bob")
	annD := connect(t, n, ann, "ann/1")
	bobD := connect(t, n, bob, "bob/1")
	var direct chatRef
	annD.do(http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{bob.ID}}, &direct, http.StatusCreated)
	var c call.WithCredentials
	annD.do(http.MethodPost, "/calls", map[string]any{"chat_id": direct.ID, "kind": "audio"}, &c, http.StatusCreated)
	bobD.do(http.MethodPost, "/calls/"+c.ID+"/answer", nil, nil, http.StatusOK)
	bobD.ws.CloseNow()
	var left, ended call.Event
	annD.event(call.EventParticipantLeft, &left)
	annD.event(call.EventEnded, &ended)
	if left.UserID != bob.ID || left.Reason != "disconnected" || ended.Reason != "failed" {
		t.Fatalf("left %+v ended %+v", left, ended)
	}
}

// TestE2EProviders: with agora and livekit configured, POST /calls and answer hand out tokens
// that verify with the configured secrets and name the call's channel and the participant.
func TestE2EProviders(t *testing.T) {
	t.Parallel()
	const appID, cert = "970CA35de60c44645bbae8a215061b33", "5CFd2fd1755d40ecb72977518be15d3b"
	t.Run("agora", func(t *testing.T) {
		t.Parallel()
		n := servertest.New(t, store.SQLite, func(c *config.Config) {
			c.CallsProvider, c.AgoraAppID, c.AgoraAppCertificate = "agora", appID, cert
		})
		ann, bob := n.Register(t, "ann"), n.Register(t, "bob")
		annD, bobD := connect(t, n, ann, "ann/1"), connect(t, n, bob, "bob/1")
		var direct chatRef
		annD.do(http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{bob.ID}}, &direct, http.StatusCreated)
		var c, a call.WithCredentials
		annD.do(http.MethodPost, "/calls", map[string]any{"chat_id": direct.ID, "kind": "video"}, &c, http.StatusCreated)
		bobD.do(http.MethodPost, "/calls/"+c.ID+"/answer", nil, &a, http.StatusOK)
		for i, cr := range []call.Credentials{c.Credentials, a.Credentials} {
			if cr.Provider != "agora" || cr.AppID != appID || cr.UID == nil || *cr.UID != uint32(i+1) || c.Provider != "agora" {
				t.Fatalf("credentials %d: %+v", i, cr)
			}
			tok, err := agora.Verify(cr.Token, cert)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Channel != c.Channel || tok.UID != fmt.Sprint(i+1) || tok.Privileges[agora.PrivilegePublishAudioStream] == 0 {
				t.Fatalf("token %d: %+v", i, tok)
			}
		}
	})
	t.Run("livekit", func(t *testing.T) {
		t.Parallel()
		n := servertest.New(t, store.SQLite, func(c *config.Config) {
			c.CallsProvider, c.LiveKitURL, c.LiveKitAPIKey, c.LiveKitAPISecret = "livekit", "wss://lk.example", "key1", "secret-secret-secret-secret-1234"
		})
		ann, bob := n.Register(t, "ann"), n.Register(t, "bob")
		annD := connect(t, n, ann, "ann/1")
		annD.do(http.MethodPatch, "/users/me", map[string]any{"display_name": "Ann Lee"}, nil, http.StatusOK)
		var direct chatRef
		annD.do(http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{bob.ID}}, &direct, http.StatusCreated)
		var c call.WithCredentials
		annD.do(http.MethodPost, "/calls", map[string]any{"chat_id": direct.ID, "kind": "audio"}, &c, http.StatusCreated)
		claims := &call.LiveKitClaims{}
		if _, err := jwt.ParseWithClaims(c.Credentials.Token, claims, func(*jwt.Token) (any, error) {
			return []byte("secret-secret-secret-secret-1234"), nil
		}, jwt.WithValidMethods([]string{"HS256"})); err != nil {
			t.Fatal(err)
		}
		if c.Credentials.URL != "wss://lk.example" || claims.Subject != ann.ID || claims.Name != "Ann Lee" || claims.Issuer != "key1" ||
			claims.Video.Room != c.Channel || !claims.Video.RoomJoin || !claims.Video.CanPublish || !claims.Video.CanSubscribe {
			t.Fatalf("claims %+v, credentials %+v", claims, c.Credentials)
		}
	})
}
