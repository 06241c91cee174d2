package asyncapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nerutalk/nerutalk/internal/asyncapi"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// waitFor bounds every wait for a frame; a passing test never comes near it.
const waitFor = 15 * time.Second

// validator checks frames against the message payloads of the served document.
type validator struct {
	schemas map[string]*jsonschema.Schema // by message key

	mu   sync.Mutex
	seen map[string]bool // message keys of the frames received
}

func newValidator(t *testing.T, n *servertest.Node) *validator {
	t.Helper()
	_, raw := get(t, n, asyncapi.DocumentPath)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const loc = "https://nerutalk.test/asyncapi.json"
	if err := c.AddResource(loc, doc); err != nil {
		t.Fatal(err)
	}
	var d document
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	v := &validator{schemas: map[string]*jsonschema.Schema{}, seen: map[string]bool{}}
	for key := range d.Components.Messages {
		s, err := c.Compile(loc + "#/components/messages/" + key + "/payload")
		if err != nil {
			t.Fatalf("compile the payload of %s: %v", key, err)
		}
		v.schemas[key] = s
	}
	return v
}

// check validates one received frame; command is the type of the command it answers (acks).
func (v *validator) check(raw []byte, typ, command string) error {
	key := "event." + typ
	switch typ {
	case "ack":
		key = "ack." + command
	case "error":
		key = "error"
	}
	s, ok := v.schemas[key]
	if !ok {
		return fmt.Errorf("frame type %q (message %s) is not documented", typ, key)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("frame %s does not match message %s: %v", raw, key, err)
	}
	v.mu.Lock()
	v.seen[key] = true
	v.mu.Unlock()
	return nil
}

// wsClient is a WebSocket connection whose every received frame is validated.
type wsClient struct {
	t    *testing.T
	name string
	ws   *websocket.Conn
	in   chan realtime.Frame
	// pending are frames received and not matched yet, in order.
	pending []realtime.Frame

	mu   sync.Mutex
	sent map[string]string // id -> command type
	n    int
}

func dial(t *testing.T, n *servertest.Node, v *validator, u servertest.User) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(n.URL, "http") + realtime.Path + "?token=" + url.QueryEscape(u.AccessToken)
	ws, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Username, err)
	}
	ws.SetReadLimit(4 << 20)
	c := &wsClient{t: t, name: u.Username, ws: ws, in: make(chan realtime.Frame, 1024), sent: map[string]string{}}
	go func() {
		defer close(c.in)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f realtime.Frame
			if err := json.Unmarshal(b, &f); err != nil {
				t.Errorf("%s: undecodable frame %q", c.name, b)
				return
			}
			c.mu.Lock()
			cmd := c.sent[f.ID]
			c.mu.Unlock()
			if err := v.check(b, f.Type, cmd); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			c.in <- f
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	c.command("ping", nil) // registered: every event published from now on reaches it
	return c
}

// send writes a command with a fresh id and returns the id.
func (c *wsClient) send(typ string, data any) string {
	c.t.Helper()
	c.mu.Lock()
	c.n++
	id := fmt.Sprintf("%s-%d", c.name, c.n)
	c.sent[id] = typ
	c.mu.Unlock()
	b, err := json.Marshal(map[string]any{"type": typ, "id": id, "data": data})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
	return id
}

// command sends a command and returns its answer (ack or error).
func (c *wsClient) command(typ string, data any) realtime.Frame {
	c.t.Helper()
	id := c.send(typ, data)
	return c.until(func(f realtime.Frame) bool { return f.ID == id })
}

// next returns the next event of type typ; the frames before it wait in pending.
func (c *wsClient) next(typ string) realtime.Frame {
	c.t.Helper()
	return c.until(func(f realtime.Frame) bool { return f.Type == typ && f.ID == "" })
}

func (c *wsClient) until(match func(realtime.Frame) bool) realtime.Frame {
	c.t.Helper()
	for i, f := range c.pending {
		if match(f) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return f
		}
	}
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.in:
			if !ok {
				c.t.Fatalf("%s: connection closed while waiting", c.name)
			}
			if match(f) {
				return f
			}
			c.pending = append(c.pending, f)
		case <-timer.C:
			c.t.Fatalf("%s: no such frame within %s", c.name, waitFor)
		}
	}
}

// TestFramesMatchTheDocument drives a real server with real WebSocket clients through the
// chat, presence, call and location flows and validates every frame they receive against the
// AsyncAPI message of its type: an undocumented type, or a frame that does not match its
// schema, fails the test.
func TestFramesMatchTheDocument(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, func(c *config.Config) {
		c.PresenceGrace = 10 * time.Millisecond
		c.CallsProvider = "p2p"
	})
	v := newValidator(t, n)
	// The validator refuses what does not match (so that passing means something).
	for _, bad := range []struct{ raw, typ, cmd string }{
		{`{"type":"message_new","data":{"id":"x"}}`, "message_new", ""},
		{`{"type":"presence","data":{"user_id":"u","online":"yes","last_seen":null}}`, "presence", ""},
		{`{"type":"ack","id":"1","data":{"accepted":true,"extra":1}}`, "ack", "location_update"},
		{`{"type":"error","data":{"detail":"no code"}}`, "error", ""},
		{`{"type":"made_up","data":{}}`, "made_up", ""},
	} {
		if err := v.check([]byte(bad.raw), bad.typ, bad.cmd); err == nil {
			t.Errorf("the validator accepts %s", bad.raw)
		}
	}
	alice, bob := n.Register(t, "alice"), n.Register(t, "bob")
	do := func(u servertest.User, method, path string, body, out any, want int) {
		t.Helper()
		if resp := n.Do(t, method, "/api/v1"+path, u.AccessToken, body, out); resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
		}
	}

	a := dial(t, n, v, alice)
	var group, direct struct {
		ID string `json:"id"`
	}
	do(alice, http.MethodPost, "/chats", map[string]any{"type": "group", "member_ids": []string{bob.ID}, "title": "team"}, &group, http.StatusCreated)
	a.next("chat_updated")
	b := dial(t, n, v, bob) // gets the snapshot (alice is online); alice learns bob is
	b.next("presence_snapshot")
	// Alice follows bob once the group's creation has refreshed her automatic presence, which
	// runs off the delivery path: bob's connect reaches her as a presence event, or (when he
	// connected first) in the presence_snapshot of the grown automatic set.
	a.until(func(f realtime.Frame) bool {
		return f.ID == "" && (f.Type == "presence" || f.Type == "presence_snapshot")
	})

	// Chat: subscriptions, typing, messages and their acks, receipts, sync, edit, delete.
	for _, c := range []*wsClient{a, b} {
		if f := c.command("join_chat", map[string]any{"chat_id": group.ID}); f.Type != "ack" {
			t.Fatalf("join_chat: %s %s", f.Type, f.Data)
		}
	}
	a.command("typing_indicator", map[string]any{"chat_id": group.ID, "typing": true})
	b.next("typing_indicator")
	ack := a.command("send_message", map[string]any{"chat_id": group.ID, "client_id": "c1", "text": "hi"})
	if ack.Type != "ack" {
		t.Fatalf("send_message: %s %s", ack.Type, ack.Data)
	}
	var msg struct {
		ID  string `json:"id"`
		Seq int64  `json:"seq"`
	}
	if err := json.Unmarshal(ack.Data, &msg); err != nil {
		t.Fatal(err)
	}
	b.next("message_new")
	b.command("message_delivered", map[string]any{"chat_id": group.ID, "seq": msg.Seq})
	a.next("message_delivered")
	b.command("message_read", map[string]any{"chat_id": group.ID, "seq": msg.Seq})
	a.next("message_read")
	if f := b.command("sync", map[string]any{"chat_id": group.ID, "after_seq": 0}); f.Type != "ack" {
		t.Fatalf("sync: %s %s", f.Type, f.Data)
	}
	do(alice, http.MethodPatch, "/chats/"+group.ID+"/messages/"+msg.ID, map[string]any{"text": "hello"}, nil, http.StatusOK)
	b.next("message_updated")
	do(alice, http.MethodDelete, "/chats/"+group.ID+"/messages/"+msg.ID, nil, nil, http.StatusNoContent)
	b.next("message_deleted")
	b.command("leave_chat", map[string]any{"chat_id": group.ID})

	// Errors: the transport's and a command's, with their field errors.
	for _, f := range []realtime.Frame{
		a.command("no_such_command", nil),
		a.command("send_message", map[string]any{"chat_id": "not an id", "client_id": "c2", "text": "x"}),
		a.command("message_read", map[string]any{"chat_id": group.ID, "seq": 99}),
	} {
		if f.Type != "error" {
			t.Errorf("want an error frame, got %s %s", f.Type, f.Data)
		}
	}

	// Calls and WebRTC signaling.
	do(alice, http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{bob.ID}}, &direct, http.StatusCreated)
	b.next("chat_updated")
	var call struct {
		ID string `json:"id"`
	}
	do(alice, http.MethodPost, "/calls", map[string]any{"chat_id": direct.ID, "kind": "audio"}, &call, http.StatusCreated)
	b.next("call_initiated")
	do(bob, http.MethodPost, "/calls/"+call.ID+"/answer", nil, nil, http.StatusOK)
	a.next("call_answered")
	if f := a.command("webrtc_offer", map[string]any{"call_id": call.ID, "to_user_id": bob.ID, "sdp": "v=0"}); f.Type != "ack" {
		t.Fatalf("webrtc_offer: %s %s", f.Type, f.Data)
	}
	b.next("webrtc_offer")
	b.command("webrtc_answer", map[string]any{"call_id": call.ID, "to_user_id": alice.ID, "sdp": "v=0"})
	a.next("webrtc_answer")
	b.command("webrtc_ice_candidate", map[string]any{"call_id": call.ID, "to_user_id": alice.ID,
		"candidate": map[string]any{"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": "0"}})
	a.next("webrtc_ice_candidate")
	do(alice, http.MethodPost, "/calls/"+call.ID+"/end", nil, nil, http.StatusOK)
	b.next("call_ended")

	// Location: a share, its updates, a geofence, the stop.
	home := map[string]float64{"lat": -33.8568, "lng": 151.2153}
	if f := b.command("location_update", map[string]any{"lat": home["lat"], "lng": home["lng"], "accuracy_m": 5}); f.Type != "ack" {
		t.Fatalf("location_update: %s %s", f.Type, f.Data)
	}
	var share struct {
		ID string `json:"id"`
	}
	do(bob, http.MethodPost, "/location/shares", map[string]any{"user_id": alice.ID, "duration_s": 3600, "precision": "exact"}, &share, http.StatusCreated)
	a.next("location_share_start")
	do(bob, http.MethodPost, "/geofences", map[string]any{"name": "home", "center": home, "radius_m": 100}, nil, http.StatusCreated)
	for i, p := range []map[string]float64{{"lat": -33.87, "lng": 151.21}, home} {
		at := time.Now().Add(time.Duration(i+1) * time.Second).UTC().Format(time.RFC3339Nano)
		b.command("location_update", map[string]any{"lat": p["lat"], "lng": p["lng"], "accuracy_m": 5, "recorded_at": at})
		a.next("shared_location_update")
	}
	b.next("geofence_event")
	do(bob, http.MethodDelete, "/location/shares/"+share.ID, nil, nil, http.StatusNoContent)
	a.next("location_share_stop")

	// Presence: bob goes offline.
	b.ws.Close(websocket.StatusNormalClosure, "bye")
	a.until(func(f realtime.Frame) bool {
		return f.Type == "presence" && strings.Contains(string(f.Data), `"online":false`)
	})

	// The flows covered these messages (the call events not listed share call_initiated's type).
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, key := range []string{
		"ack.ping", "ack.join_chat", "ack.leave_chat", "ack.typing_indicator", "ack.send_message", "ack.message_read",
		"ack.message_delivered", "ack.sync", "ack.webrtc_offer", "ack.webrtc_answer", "ack.webrtc_ice_candidate", "ack.location_update",
		"error", "event.presence", "event.presence_snapshot", "event.chat_updated", "event.typing_indicator",
		"event.message_new", "event.message_updated", "event.message_deleted", "event.message_read", "event.message_delivered",
		"event.call_initiated", "event.call_answered", "event.call_ended", "event.webrtc_offer", "event.webrtc_answer",
		"event.webrtc_ice_candidate", "event.location_share_start", "event.shared_location_update", "event.geofence_event",
		"event.location_share_stop",
	} {
		if !v.seen[key] {
			t.Errorf("no frame of message %s was received and validated", key)
		}
	}
}
