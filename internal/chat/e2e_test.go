package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// waitFor bounds every wait for a frame; a passing test never comes near it.
const waitFor = 15 * time.Second

// unknownID is a well-formed id that names nothing.
const unknownID = "0190a0a0-0000-7000-8000-000000000001"

// client is one WebSocket connection (one device) of a user.
type client struct {
	t       *testing.T
	name    string
	ws      *websocket.Conn
	in      chan realtime.Frame
	pending []realtime.Frame // received, not consumed yet
	seq     int
	readErr error // why the read loop ended; set before in is closed
}

func dial(t *testing.T, n *servertest.Node, u servertest.User, device string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(n.URL, "http") + realtime.Path + "?token=" + url.QueryEscape(u.AccessToken)
	ws, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Username, err)
	}
	ws.SetReadLimit(4 << 20)
	c := &client{t: t, name: u.Username + "/" + device, ws: ws, in: make(chan realtime.Frame, 4096)}
	go func() {
		defer close(c.in)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				c.readErr = err
				return
			}
			var f realtime.Frame
			if err := json.Unmarshal(b, &f); err != nil {
				t.Errorf("%s: undecodable frame %q", c.name, b)
				return
			}
			c.in <- f
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	// The read loop answers only once the hub has registered the connection: after this ack,
	// every event published reaches it.
	c.ack("ping", nil, nil)
	return c
}

func (c *client) close() { c.ws.Close(websocket.StatusNormalClosure, "bye") }

// recv returns the next frame from the socket.
func (c *client) recv() realtime.Frame {
	c.t.Helper()
	select {
	case f, ok := <-c.in:
		if !ok {
			c.t.Fatalf("%s: connection closed", c.name)
		}
		return f
	case <-time.After(waitFor):
		c.t.Fatalf("%s: nothing received in %s", c.name, waitFor)
	}
	panic("unreachable")
}

// closedWith waits until the server closes the connection (skipping what is still queued) and
// returns the close code.
func (c *client) closedWith() websocket.StatusCode {
	c.t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case _, ok := <-c.in:
			if !ok {
				return websocket.CloseStatus(c.readErr)
			}
		case <-timeout:
			c.t.Fatalf("%s: not closed within %s", c.name, waitFor)
		}
	}
}

// send writes a command frame and returns its id.
func (c *client) send(typ string, data any) string {
	c.t.Helper()
	c.seq++
	id := strconv.Itoa(c.seq)
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

// answer waits for the ack or error of command id; other frames are kept for later.
func (c *client) answer(id string) realtime.Frame {
	c.t.Helper()
	for i, f := range c.pending {
		if (f.Type == "ack" || f.Type == "error") && f.ID == id {
			c.pending = slices.Delete(c.pending, i, i+1)
			return f
		}
	}
	for {
		f := c.recv()
		if (f.Type == "ack" || f.Type == "error") && f.ID == id {
			return f
		}
		c.pending = append(c.pending, f)
	}
}

// ack runs a command that must succeed and decodes its ack data into out (when not nil).
func (c *client) ack(typ string, data, out any) {
	c.t.Helper()
	f := c.answer(c.send(typ, data))
	if f.Type != "ack" {
		c.t.Fatalf("%s: %s answered %s %s", c.name, typ, f.Type, f.Data)
	}
	if out != nil {
		if err := json.Unmarshal(f.Data, out); err != nil {
			c.t.Fatalf("%s: %s ack %s: %v", c.name, typ, f.Data, err)
		}
	}
}

// refused runs a command that must fail and returns the error code.
func (c *client) refused(typ string, data any) string {
	c.t.Helper()
	f := c.answer(c.send(typ, data))
	if f.Type != "error" {
		c.t.Fatalf("%s: %s answered %s %s, want an error", c.name, typ, f.Type, f.Data)
	}
	var e realtime.ErrorData
	if err := json.Unmarshal(f.Data, &e); err != nil {
		c.t.Fatal(err)
	}
	return e.Code
}

// until consumes frames up to and including the first one that matches, and returns the ones
// before it (of any type) and the match.
func (c *client) until(match func(realtime.Frame) bool) ([]realtime.Frame, realtime.Frame) {
	c.t.Helper()
	var before []realtime.Frame
	for len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		if match(f) {
			return before, f
		}
		before = append(before, f)
	}
	for {
		f := c.recv()
		if match(f) {
			return before, f
		}
		before = append(before, f)
	}
}

// event waits for the next event of type typ (skipping, but keeping, other frames) and decodes it.
func (c *client) event(typ string, out any) {
	c.t.Helper()
	for i, f := range c.pending {
		if f.Type == typ {
			c.pending = slices.Delete(c.pending, i, i+1)
			decodeInto(c.t, f, out)
			return
		}
	}
	for {
		f := c.recv()
		if f.Type == typ {
			decodeInto(c.t, f, out)
			return
		}
		c.pending = append(c.pending, f)
	}
}

// message waits for the next message_new of chatID.
func (c *client) message(chatID string) chat.Message {
	c.t.Helper()
	_, f := c.untilMessage(chat.EventMessageNew, chatID)
	var m chat.Message
	decodeInto(c.t, f, &m)
	return m
}

// untilMessage consumes frames up to the next event typ of chatID.
func (c *client) untilMessage(typ, chatID string) ([]realtime.Frame, realtime.Frame) {
	c.t.Helper()
	return c.until(func(f realtime.Frame) bool {
		if f.Type != typ {
			return false
		}
		var m struct {
			ChatID string `json:"chat_id"`
		}
		return json.Unmarshal(f.Data, &m) == nil && m.ChatID == chatID
	})
}

func decodeInto(t *testing.T, f realtime.Frame, out any) {
	t.Helper()
	if out == nil {
		return
	}
	if err := json.Unmarshal(f.Data, out); err != nil {
		t.Fatalf("decode %s %s: %v", f.Type, f.Data, err)
	}
}

// none asserts that no frame of the types is among frames.
func none(t *testing.T, who string, frames []realtime.Frame, types ...string) {
	t.Helper()
	for _, f := range frames {
		if slices.Contains(types, f.Type) {
			t.Fatalf("%s received %s %s", who, f.Type, f.Data)
		}
	}
}

// env is a node with users.
type env struct {
	t     *testing.T
	n     *servertest.Node
	users map[string]servertest.User
}

func newEnv(t *testing.T, d store.Dialect, names ...string) *env {
	t.Helper()
	e := &env{t: t, n: servertest.New(t, d, nil), users: map[string]servertest.User{}}
	for _, name := range names {
		e.users[name] = e.n.Register(t, name)
	}
	return e
}

func (e *env) id(name string) string { return e.users[name].ID }

// do calls the API as user (or anonymously with "") and checks the status.
func (e *env) do(user, method, path string, body, out any, want int) {
	e.t.Helper()
	token := ""
	if user != "" {
		token = e.users[user].AccessToken
	}
	var raw json.RawMessage
	resp := e.n.Do(e.t, method, "/api/v1"+path, token, body, &raw)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s %s: status %d %s, want %d", user, method, path, resp.StatusCode, raw, want)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// problem calls the API and returns the status and problem code.
func (e *env) problem(user, method, path string, body any) (int, string) {
	e.t.Helper()
	var p struct {
		Code string `json:"code"`
	}
	resp := e.n.Do(e.t, method, "/api/v1"+path, e.users[user].AccessToken, body, &p)
	return resp.StatusCode, p.Code
}

func (e *env) group(owner string, members ...string) chat.ChatView {
	e.t.Helper()
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = e.id(m)
	}
	var v chat.ChatView
	e.do(owner, http.MethodPost, "/chats", map[string]any{"type": "group", "member_ids": ids, "title": "team"}, &v, http.StatusCreated)
	return v
}

func forEachDB(t *testing.T, fn func(t *testing.T, d store.Dialect)) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// TestE2EDeliveryToEveryDevice: a message reaches every connection of every member (the sender's
// own included), in a direct chat and in a group, sent over the WebSocket or over REST.
func TestE2EDeliveryToEveryDevice(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob", "carol")
		var direct chat.ChatView
		e.do("alice", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("bob")}}, &direct, http.StatusCreated)
		var again chat.ChatView
		e.do("bob", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("alice")}}, &again, http.StatusOK)
		if again.ID != direct.ID {
			t.Fatalf("second direct chat %s, want %s", again.ID, direct.ID)
		}
		group := e.group("alice", "bob", "carol")

		devices := map[string][]*client{}
		for _, u := range []string{"alice", "bob", "carol"} {
			for i := range 2 {
				devices[u] = append(devices[u], dial(t, e.n, e.users[u], fmt.Sprint("d", i)))
			}
		}
		var sent chat.Message
		devices["alice"][0].ack(chat.CmdSendMessage, map[string]any{"chat_id": direct.ID, "client_id": "d1", "text": "hi bob"}, &sent)
		if sent.Seq != 1 || sent.ChatID != direct.ID || sent.SenderID != e.id("alice") || sent.Text != "hi bob" || sent.Kind != chat.KindText {
			t.Fatalf("ack = %+v", sent)
		}
		for _, u := range []string{"alice", "bob"} {
			for _, c := range devices[u] {
				if got := c.message(direct.ID); got.ID != sent.ID || got.Seq != 1 {
					t.Fatalf("%s got %+v, want %+v", c.name, got, sent)
				}
			}
		}
		var rest chat.Message
		e.do("carol", http.MethodPost, "/chats/"+group.ID+"/messages", map[string]any{"client_id": "g1", "text": "hello all"}, &rest, http.StatusCreated)
		for _, u := range []string{"alice", "bob", "carol"} {
			for _, c := range devices[u] {
				before, f := c.untilMessage(chat.EventMessageNew, group.ID)
				// carol is not in the direct chat: she never saw its message.
				if u == "carol" {
					none(t, c.name, before, chat.EventMessageNew)
				}
				var got chat.Message
				decodeInto(t, f, &got)
				if got.ID != rest.ID || got.Seq != 1 || got.Text != "hello all" {
					t.Fatalf("%s got %+v, want %+v", c.name, got, rest)
				}
			}
		}
	})
}

// TestE2EOrdering: concurrent senders in one group; every device sees 1..N in order.
func TestE2EOrdering(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob", "carol")
		g := e.group("alice", "bob", "carol")
		watcher := dial(t, e.n, e.users["carol"], "watch")
		const each = 15
		var wg sync.WaitGroup
		for _, u := range []string{"alice", "bob"} {
			c := dial(t, e.n, e.users[u], "send")
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Pipelined: all frames first, then the acks, in order.
				ids := make([]string, each)
				for i := range each {
					ids[i] = c.send(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": fmt.Sprint(u, i), "text": fmt.Sprint(i)})
				}
				last := int64(0)
				for _, id := range ids {
					f := c.answer(id)
					var m chat.Message
					if f.Type != "ack" || json.Unmarshal(f.Data, &m) != nil || m.Seq <= last {
						t.Errorf("%s ack %s %s after seq %d", u, f.Type, f.Data, last)
						return
					}
					last = m.Seq
				}
			}()
		}
		wg.Wait()
		for want := int64(1); want <= 2*each; want++ {
			if m := watcher.message(g.ID); m.Seq != want {
				t.Fatalf("watcher got seq %d, want %d", m.Seq, want)
			}
		}
	})
}

// TestE2EPipelinedAnswersInFrameOrder: sends do not hold up the frames after them (their answers
// wait for the commit, the connection does not), yet every answer comes in the order of the
// frames, and the sender's own message_new comes before the ack of its send_message.
func TestE2EPipelinedAnswersInFrameOrder(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob")
		g := e.group("alice", "bob")
		c := dial(t, e.n, e.users["alice"], "phone")
		var want []string // ids in frame order
		for i := range 10 {
			want = append(want, c.send(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": fmt.Sprint("p", i), "text": fmt.Sprint(i)}))
			if i == 4 {
				want = append(want, c.send("ping", nil))
				// refused at once, but answered after the sends before it
				want = append(want, c.send(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "bad", "text": ""}))
			}
		}
		var got []string
		newSeen := map[int64]bool{}
		for len(got) < len(want) {
			f := c.recv()
			switch f.Type {
			case chat.EventMessageNew:
				var m chat.Message
				decodeInto(t, f, &m)
				newSeen[m.Seq] = true
			case "ack", "error":
				got = append(got, f.ID)
				var m chat.Message
				if f.Type == "ack" && json.Unmarshal(f.Data, &m) == nil && m.Seq > 0 && !newSeen[m.Seq] {
					t.Errorf("the ack of seq %d came before its message_new", m.Seq)
				}
			}
		}
		if !slices.Equal(want, got) {
			t.Errorf("answers in the order %v, want the frame order %v", got, want)
		}
	})
}

// TestE2EIdempotentRetry: retries over WebSocket and REST answer the original, and nothing is
// published twice.
func TestE2EIdempotentRetry(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob")
		g := e.group("alice", "bob")
		bob := dial(t, e.n, e.users["bob"], "d")
		alice := dial(t, e.n, e.users["alice"], "d")
		body := map[string]any{"chat_id": g.ID, "client_id": "retry-1", "text": "once"}
		var a1, a2 chat.Message
		alice.ack(chat.CmdSendMessage, body, &a1)
		alice.ack(chat.CmdSendMessage, body, &a2)
		if a1.ID != a2.ID || a1.Seq != a2.Seq || a1.Text != a2.Text {
			t.Fatalf("retry ack %+v, want %+v", a2, a1)
		}
		var r1 chat.Message
		e.do("alice", http.MethodPost, "/chats/"+g.ID+"/messages", map[string]any{"client_id": "retry-1", "text": "once"}, &r1, http.StatusOK)
		if r1.ID != a1.ID {
			t.Fatalf("REST retry answered %s, want %s", r1.ID, a1.ID)
		}
		var r2 chat.Message
		e.do("alice", http.MethodPost, "/chats/"+g.ID+"/messages", map[string]any{"client_id": "retry-2", "text": "two"}, &r2, http.StatusCreated)
		e.do("alice", http.MethodPost, "/chats/"+g.ID+"/messages", map[string]any{"client_id": "retry-2", "text": "two"}, nil, http.StatusOK)
		if r2.Seq != 2 {
			t.Fatalf("second message seq %d, want 2", r2.Seq)
		}
		// bob saw seq 1 then seq 2, nothing in between.
		if m := bob.message(g.ID); m.Seq != 1 {
			t.Fatalf("bob first got seq %d", m.Seq)
		}
		before, _ := bob.untilMessage(chat.EventMessageNew, g.ID)
		none(t, "bob", before, chat.EventMessageNew)
	})
}

// TestE2EEditDeleteAndPermissions: events for edits and deletes, and who may do them.
func TestE2EEditDeleteAndPermissions(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "owner", "admin", "member", "other", "stranger")
		g := e.group("owner", "admin", "member", "other")
		e.do("owner", http.MethodPatch, "/chats/"+g.ID+"/members/"+e.id("admin"), map[string]any{"role": "admin"}, nil, http.StatusOK)
		watch := dial(t, e.n, e.users["other"], "d")
		var m1, m2 chat.Message
		e.do("member", http.MethodPost, "/chats/"+g.ID+"/messages", map[string]any{"client_id": "1", "text": "typo"}, &m1, http.StatusCreated)
		e.do("member", http.MethodPost, "/chats/"+g.ID+"/messages", map[string]any{"client_id": "2", "text": "second"}, &m2, http.StatusCreated)
		msg := "/chats/" + g.ID + "/messages/" + m1.ID

		for _, tc := range []struct {
			user, method, path string
			body               any
			status             int
			code               string
		}{
			{"other", http.MethodPatch, msg, map[string]any{"text": "x"}, http.StatusForbidden, "forbidden"},
			{"owner", http.MethodPatch, msg, map[string]any{"text": "x"}, http.StatusForbidden, "forbidden"},
			{"stranger", http.MethodPatch, msg, map[string]any{"text": "x"}, http.StatusNotFound, "not_found"},
			{"member", http.MethodPatch, msg, map[string]any{"text": ""}, http.StatusUnprocessableEntity, "validation_failed"},
			{"member", http.MethodPatch, "/chats/" + g.ID + "/messages/" + unknownID, map[string]any{"text": "x"}, http.StatusNotFound, "not_found"},
			{"member", http.MethodPatch, "/chats/" + g.ID + "/messages/nope", map[string]any{"text": "x"}, http.StatusUnprocessableEntity, "validation_failed"},
			{"other", http.MethodDelete, msg, nil, http.StatusForbidden, "forbidden"},
			{"stranger", http.MethodDelete, msg, nil, http.StatusNotFound, "not_found"},
		} {
			if status, code := e.problem(tc.user, tc.method, tc.path, tc.body); status != tc.status || code != tc.code {
				t.Errorf("%s %s %s: %d %s, want %d %s", tc.user, tc.method, tc.path, status, code, tc.status, tc.code)
			}
		}
		var edited chat.Message
		e.do("member", http.MethodPatch, msg, map[string]any{"text": "fixed"}, &edited, http.StatusOK)
		if edited.Text != "fixed" || edited.EditedAt == nil || edited.Seq != m1.Seq {
			t.Fatalf("edited = %+v", edited)
		}
		var upd chat.Message
		watch.event(chat.EventMessageUpdated, &upd)
		if upd.ID != m1.ID || upd.Text != "fixed" || upd.EditedAt == nil {
			t.Fatalf("message_updated = %+v", upd)
		}
		e.do("admin", http.MethodDelete, msg, nil, nil, http.StatusNoContent)                                // an admin deletes anyone's
		e.do("member", http.MethodDelete, "/chats/"+g.ID+"/messages/"+m2.ID, nil, nil, http.StatusNoContent) // the sender deletes their own
		for _, want := range []string{m1.ID, m2.ID} {
			var del chat.Message
			watch.event(chat.EventMessageDeleted, &del)
			if del.ID != want || !del.Deleted || del.Text != "" || len(del.Attachments) != 0 {
				t.Fatalf("message_deleted = %+v, want tombstone of %s", del, want)
			}
		}
		var page chat.Page
		e.do("other", http.MethodGet, "/chats/"+g.ID+"/messages", nil, &page, http.StatusOK)
		if len(page.Items) != 2 || !page.Items[0].Deleted || page.Items[0].Seq != 1 || page.Items[1].Seq != 2 {
			t.Fatalf("history after deletes: %+v", page.Items)
		}
	})
}

// TestE2EReceipts: read and delivered marks travel live and never move backwards.
func TestE2EReceipts(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob")
		g := e.group("alice", "bob")
		alice := dial(t, e.n, e.users["alice"], "d")
		bob := dial(t, e.n, e.users["bob"], "d")
		for i := range 3 {
			alice.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": fmt.Sprint(i), "text": "x"}, nil)
		}
		bob.ack(chat.CmdMessageDelivered, map[string]any{"chat_id": g.ID, "seq": 3}, nil)
		var ev chat.ReceiptEvent
		alice.event(chat.EventMessageDelivered, &ev)
		if ev != (chat.ReceiptEvent{ChatID: g.ID, UserID: e.id("bob"), Seq: 3}) {
			t.Fatalf("message_delivered = %+v", ev)
		}
		bob.ack(chat.CmdMessageRead, map[string]any{"chat_id": g.ID, "seq": 2}, nil)
		alice.event(chat.EventMessageRead, &ev)
		if ev != (chat.ReceiptEvent{ChatID: g.ID, UserID: e.id("bob"), Seq: 2}) {
			t.Fatalf("message_read = %+v", ev)
		}
		if code := bob.refused(chat.CmdMessageRead, map[string]any{"chat_id": g.ID, "seq": 4}); code != "seq_out_of_range" {
			t.Fatalf("read beyond the end: %s", code)
		}
		e.do("bob", http.MethodPost, "/chats/"+g.ID+"/read", map[string]any{"seq": 1}, nil, http.StatusNoContent) // backwards: nothing
		e.do("bob", http.MethodPost, "/chats/"+g.ID+"/read", map[string]any{"seq": 3}, nil, http.StatusNoContent)
		before, f := alice.untilMessage(chat.EventMessageRead, g.ID)
		none(t, "alice", before, chat.EventMessageRead)
		decodeInto(t, f, &ev)
		if ev.Seq != 3 {
			t.Fatalf("read event seq %d, want 3 (the backward mark publishes nothing)", ev.Seq)
		}
		e.do("alice", http.MethodPost, "/chats/"+g.ID+"/delivered", map[string]any{"seq": 3}, nil, http.StatusNoContent)
		var receipts struct {
			Items []chat.Receipt `json:"items"`
		}
		e.do("alice", http.MethodGet, "/chats/"+g.ID+"/receipts", nil, &receipts, http.StatusOK)
		want := []chat.Receipt{{UserID: e.id("alice"), ReadSeq: 3, DeliveredSeq: 3}, {UserID: e.id("bob"), ReadSeq: 3, DeliveredSeq: 3}}
		if !slices.Equal(receipts.Items, want) {
			t.Fatalf("receipts %+v, want %+v", receipts.Items, want)
		}
		if status, code := e.problem("bob", http.MethodPost, "/chats/"+g.ID+"/read", map[string]any{"seq": -1}); status != http.StatusUnprocessableEntity {
			t.Fatalf("negative seq: %d %s", status, code)
		}
	})
}

// TestE2ETyping: typing goes to the other members' connections that joined the chat, throttled,
// and expires by itself; the clock is the test's.
func TestE2ETyping(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob", "carol")
		clock := chat.NewFakeClock()
		chat.SetClock(e.n.Srv.Chat, clock)
		g := e.group("alice", "bob", "carol")
		alice := dial(t, e.n, e.users["alice"], "d")
		alice2 := dial(t, e.n, e.users["alice"], "d2")
		bob := dial(t, e.n, e.users["bob"], "d")
		carol := dial(t, e.n, e.users["carol"], "d") // never joins
		for _, c := range []*client{alice, alice2, bob} {
			c.ack(chat.CmdJoinChat, map[string]any{"chat_id": g.ID}, nil)
		}
		typing := func(on bool) { alice.ack(chat.CmdTyping, map[string]any{"chat_id": g.ID, "typing": on}, nil) }
		expect := func(on bool) {
			t.Helper()
			var ev chat.TypingEvent
			bob.event(chat.EventTyping, &ev)
			if ev != (chat.TypingEvent{ChatID: g.ID, UserID: e.id("alice"), Typing: on}) {
				t.Fatalf("typing event %+v, want typing %v", ev, on)
			}
		}
		typing(true)
		expect(true)
		typing(true) // refresh within the throttle window: not forwarded
		clock.Advance(time.Second)
		typing(false) // inside the window: held until it ends
		clock.Advance(time.Second)
		expect(false) // and nothing between the two
		// Expiry: typing without refresh turns off after 6s.
		clock.Advance(5 * time.Second)
		typing(true)
		expect(true)
		clock.Advance(chat.TypingTimeout)
		expect(false)
		// Barrier: a message published after all of that; nobody else saw typing.
		alice.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "b", "text": "done"}, nil)
		for _, c := range []*client{bob, carol, alice2} {
			before, _ := c.untilMessage(chat.EventMessageNew, g.ID)
			if c == bob {
				none(t, c.name, before, chat.EventTyping) // no duplicate true from the throttled refresh
				continue
			}
			none(t, c.name, before, chat.EventTyping) // carol did not join; alice's own devices are skipped
		}
		// leave_chat stops the typing events for that connection.
		bob.ack(chat.CmdLeaveChat, map[string]any{"chat_id": g.ID}, nil)
		clock.Advance(time.Minute)
		typing(true)
		alice.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "b2", "text": "done"}, nil)
		before, _ := bob.untilMessage(chat.EventMessageNew, g.ID)
		none(t, "bob after leave_chat", before, chat.EventTyping)
	})
}

// TestE2EReconnectAndSync: a client that was offline learns what it missed from GET /chats and
// replays it with sync (WebSocket) and after_seq (REST), nothing lost, in order.
func TestE2EReconnectAndSync(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "alice", "bob")
		g := e.group("alice", "bob")
		bob := dial(t, e.n, e.users["bob"], "phone")
		alice := dial(t, e.n, e.users["alice"], "d")
		alice.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "0", "text": "seen"}, nil)
		seen := bob.message(g.ID)
		bob.ack(chat.CmdMessageDelivered, map[string]any{"chat_id": g.ID, "seq": seen.Seq}, nil)
		bob.close()

		const missed = 7
		for i := 1; i <= missed; i++ {
			alice.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": fmt.Sprint(i), "text": fmt.Sprint("m", i)}, nil)
		}
		var list struct {
			Items      []chat.ChatView `json:"items"`
			NextCursor string          `json:"next_cursor"`
		}
		e.do("bob", http.MethodGet, "/chats", nil, &list, http.StatusOK)
		if len(list.Items) != 1 {
			t.Fatalf("bob's chats: %+v", list.Items)
		}
		v := list.Items[0]
		if v.ID != g.ID || v.LastSeq != missed+1 || v.ReadSeq != 0 || v.DeliveredSeq != 1 || v.UnreadCount != missed+1 ||
			v.LastMessage == nil || v.LastMessage.Seq != missed+1 || len(v.Members) != 2 {
			t.Fatalf("chat in the list: %+v", v)
		}

		bob = dial(t, e.n, e.users["bob"], "phone-again")
		var got []int64
		after := seen.Seq
		for {
			var p chat.Page
			bob.ack(chat.CmdSync, map[string]any{"chat_id": g.ID, "after_seq": after, "limit": 3}, &p)
			if p.ChatID != g.ID || p.LastSeq != missed+1 {
				t.Fatalf("sync page %+v", p)
			}
			for _, m := range p.Items {
				got = append(got, m.Seq)
				after = m.Seq
			}
			if !p.HasMore {
				break
			}
		}
		want := []int64{2, 3, 4, 5, 6, 7, 8}
		if !slices.Equal(got, want) {
			t.Fatalf("synced seqs %v, want %v", got, want)
		}
		var page chat.Page
		e.do("bob", http.MethodGet, "/chats/"+g.ID+"/messages?after_seq=1&limit=4", nil, &page, http.StatusOK)
		if !slices.Equal(seqsOf(page.Items), []int64{2, 3, 4, 5}) || !page.HasMore || page.NextCursor == "" {
			t.Fatalf("REST after_seq page: %v more %v", seqsOf(page.Items), page.HasMore)
		}
		e.do("bob", http.MethodGet, "/chats/"+g.ID+"/messages?cursor="+page.NextCursor, nil, &page, http.StatusOK)
		if !slices.Equal(seqsOf(page.Items), []int64{6, 7, 8}) || page.HasMore {
			t.Fatalf("next page: %v more %v", seqsOf(page.Items), page.HasMore)
		}
		e.do("bob", http.MethodGet, "/chats/"+g.ID+"/messages?before_seq=3", nil, &page, http.StatusOK)
		if !slices.Equal(seqsOf(page.Items), []int64{1, 2}) {
			t.Fatalf("before_seq page: %v", seqsOf(page.Items))
		}
		for _, q := range []string{"limit=0", "limit=201", "after_seq=-1", "before_seq=0", "cursor=zzz", "after_seq=x"} {
			if status, _ := e.problem("bob", http.MethodGet, "/chats/"+g.ID+"/messages?"+q, nil); status != http.StatusUnprocessableEntity && status != http.StatusBadRequest {
				t.Errorf("?%s: status %d, want 4xx", q, status)
			}
		}
		if code := bob.refused(chat.CmdSync, map[string]any{"chat_id": g.ID, "after_seq": -2}); code != "validation_failed" {
			t.Errorf("sync after_seq -2: %s", code)
		}
	})
}

func seqsOf(ms []chat.Message) []int64 {
	out := []int64{}
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

// TestE2EAuthorization: every rule of who may see and do what.
func TestE2EAuthorization(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "owner", "member", "victim", "stranger")
		g := e.group("owner", "member", "victim")
		var m chat.Message
		e.do("member", http.MethodPost, "/chats/"+g.ID+"/messages", map[string]any{"client_id": "1", "text": "x"}, &m, http.StatusCreated)
		base := "/chats/" + g.ID

		// Anonymous callers: 401.
		e.do("", http.MethodGet, "/chats", nil, nil, http.StatusUnauthorized)
		e.do("", http.MethodGet, base, nil, nil, http.StatusUnauthorized)

		// A stranger: 404 for the chat and everything in it.
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{http.MethodGet, base, nil},
			{http.MethodPatch, base, map[string]any{"title": "mine"}},
			{http.MethodDelete, base, nil},
			{http.MethodPost, base + "/members", map[string]any{"user_ids": []string{e.id("stranger")}}},
			{http.MethodDelete, base + "/members/" + e.id("member"), nil},
			{http.MethodPatch, base + "/members/" + e.id("stranger"), map[string]any{"role": "admin"}},
			{http.MethodGet, base + "/messages", nil},
			{http.MethodPost, base + "/messages", map[string]any{"client_id": "s", "text": "x"}},
			{http.MethodPatch, base + "/messages/" + m.ID, map[string]any{"text": "x"}},
			{http.MethodDelete, base + "/messages/" + m.ID, nil},
			{http.MethodPost, base + "/read", map[string]any{"seq": 1}},
			{http.MethodPost, base + "/delivered", map[string]any{"seq": 1}},
			{http.MethodGet, base + "/receipts", nil},
			{http.MethodGet, "/chats/" + unknownID, nil},
		} {
			if status, code := e.problem("stranger", tc.method, tc.path, tc.body); status != http.StatusNotFound || code != "not_found" {
				t.Errorf("stranger %s %s: %d %s, want 404 not_found", tc.method, tc.path, status, code)
			}
		}
		stranger := dial(t, e.n, e.users["stranger"], "d")
		for _, cmd := range []struct {
			typ  string
			data map[string]any
		}{
			{chat.CmdJoinChat, map[string]any{"chat_id": g.ID}},
			{chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "s", "text": "x"}},
			{chat.CmdTyping, map[string]any{"chat_id": g.ID, "typing": true}},
			{chat.CmdMessageRead, map[string]any{"chat_id": g.ID, "seq": 1}},
			{chat.CmdMessageDelivered, map[string]any{"chat_id": g.ID, "seq": 1}},
			{chat.CmdSync, map[string]any{"chat_id": g.ID, "after_seq": 0}},
		} {
			if code := stranger.refused(cmd.typ, cmd.data); code != "not_found" {
				t.Errorf("stranger %s: %s, want not_found", cmd.typ, code)
			}
		}
		if code := stranger.refused(chat.CmdSendMessage, map[string]any{"text": "no chat"}); code != "validation_failed" {
			t.Errorf("send without chat_id: %s", code)
		}
		if code := stranger.refused(chat.CmdSync, map[string]any{"chat_id": 5}); code != "bad_request" {
			t.Errorf("sync with a numeric chat_id: %s", code)
		}

		// A member who is not an admin cannot manage the group.
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPatch, base, map[string]any{"title": "renamed"}},
			{http.MethodPost, base + "/members", map[string]any{"user_ids": []string{e.id("stranger")}}},
			{http.MethodDelete, base + "/members/" + e.id("victim"), nil},
			{http.MethodPatch, base + "/members/" + e.id("member"), map[string]any{"role": "admin"}},
		} {
			if status, code := e.problem("member", tc.method, tc.path, tc.body); status != http.StatusForbidden || code != "forbidden" {
				t.Errorf("member %s %s: %d %s, want 403 forbidden", tc.method, tc.path, status, code)
			}
		}

		// A removed member stops receiving at once (live subscription included) and cannot send.
		victim := dial(t, e.n, e.users["victim"], "d")
		victim.ack(chat.CmdJoinChat, map[string]any{"chat_id": g.ID}, nil)
		var direct chat.ChatView // a chat the victim stays in, used as a barrier
		e.do("owner", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("victim")}}, &direct, http.StatusCreated)
		e.do("owner", http.MethodDelete, base+"/members/"+e.id("victim"), nil, nil, http.StatusNoContent)
		var last chat.Chat
		victim.event(chat.EventChatUpdated, &last)
		for last.ID != g.ID || slices.ContainsFunc(last.Members, func(mi chat.MemberInfo) bool { return mi.UserID == e.id("victim") }) {
			victim.event(chat.EventChatUpdated, &last)
		}
		victim.pending = nil // what came before the removal may mention the group
		owner := dial(t, e.n, e.users["owner"], "d")
		owner.ack(chat.CmdTyping, map[string]any{"chat_id": g.ID, "typing": true}, nil)
		owner.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "after", "text": "secret"}, nil)
		e.do("owner", http.MethodPatch, base, map[string]any{"title": "secret title"}, nil, http.StatusOK)
		owner.ack(chat.CmdSendMessage, map[string]any{"chat_id": direct.ID, "client_id": "barrier", "text": "b"}, nil)
		before, _ := victim.untilMessage(chat.EventMessageNew, direct.ID)
		for _, f := range before {
			if strings.Contains(string(f.Data), g.ID) {
				t.Fatalf("removed member received %s %s", f.Type, f.Data)
			}
		}
		if code := victim.refused(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "v", "text": "x"}); code != "not_found" {
			t.Fatalf("removed member sends over WebSocket: %s", code)
		}
		if status, _ := e.problem("victim", http.MethodPost, base+"/messages", map[string]any{"client_id": "v2", "text": "x"}); status != http.StatusNotFound {
			t.Fatalf("removed member sends over REST: %d", status)
		}
		if code := victim.refused(chat.CmdJoinChat, map[string]any{"chat_id": g.ID}); code != "not_found" {
			t.Fatalf("removed member joins: %s", code)
		}
		if status, _ := e.problem("victim", http.MethodGet, base+"/messages", nil); status != http.StatusNotFound {
			t.Fatalf("removed member reads history: %d", status)
		}
	})
}

// TestE2EChatManagement: the chat endpoints' shapes and status codes.
func TestE2EChatManagement(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "owner", "ann", "ben", "cat")
		g := e.group("owner", "ann")
		if g.Type != chat.Group || g.Title != "team" || len(g.Members) != 2 || g.Members[0].Role != chat.Owner || g.Members[0].UserID != e.id("owner") {
			t.Fatalf("created: %+v", g)
		}
		a := dial(t, e.n, e.users["ann"], "d")
		base := "/chats/" + g.ID
		var v chat.ChatView
		e.do("owner", http.MethodPost, base+"/members", map[string]any{"user_ids": []string{e.id("ben"), e.id("cat"), e.id("ann")}}, &v, http.StatusOK)
		if len(v.Members) != 4 {
			t.Fatalf("after adding: %+v", v.Members)
		}
		var upd chat.Chat
		a.event(chat.EventChatUpdated, &upd)
		if len(upd.Members) != 4 {
			t.Fatalf("chat_updated after adding: %+v", upd)
		}
		e.do("owner", http.MethodPatch, base, map[string]any{"title": "  renamed "}, &v, http.StatusOK)
		a.event(chat.EventChatUpdated, &upd)
		if v.Title != "renamed" || upd.Title != "renamed" {
			t.Fatalf("rename: %q, event %q", v.Title, upd.Title)
		}
		for _, tc := range []struct {
			user, method, path string
			body               any
			status             int
			code               string
		}{
			{"owner", http.MethodPost, "/chats", map[string]any{"type": "channel", "member_ids": []string{}}, http.StatusUnprocessableEntity, "validation_failed"},
			{"owner", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("ann"), e.id("ben")}}, http.StatusUnprocessableEntity, "validation_failed"},
			{"owner", http.MethodPost, "/chats", map[string]any{"type": "group", "member_ids": []string{unknownID}}, http.StatusUnprocessableEntity, "unknown_users"},
			{"owner", http.MethodPost, "/chats", map[string]any{"type": "group", "member_ids": []string{"nobody"}}, http.StatusUnprocessableEntity, "validation_failed"},
			{"owner", http.MethodPatch, base, map[string]any{"title": strings.Repeat("t", 129)}, http.StatusUnprocessableEntity, "validation_failed"},
			{"owner", http.MethodPatch, base + "/members/" + e.id("ann"), map[string]any{"role": "king"}, http.StatusUnprocessableEntity, "validation_failed"},
			{"owner", http.MethodPatch, base + "/members/" + e.id("owner"), map[string]any{"role": "member"}, http.StatusConflict, "owner_required"},
			{"owner", http.MethodDelete, base + "/members/" + unknownID, nil, http.StatusNotFound, "not_found"},
			{"owner", http.MethodDelete, base + "/members/" + e.id("owner") + "x", nil, http.StatusUnprocessableEntity, "validation_failed"},
			{"owner", http.MethodPost, base + "/messages", map[string]any{"client_id": "x", "text": "x", "attachment_ids": []string{"f"}}, http.StatusUnprocessableEntity, "invalid_attachment"},
			{"owner", http.MethodPost, base + "/messages", map[string]any{"text": "x"}, http.StatusUnprocessableEntity, "validation_failed"},
			{"owner", http.MethodPost, base + "/messages", map[string]any{"client_id": "x", "text": strings.Repeat("é", 4097)}, http.StatusUnprocessableEntity, "text_too_long"},
			{"owner", http.MethodPost, base + "/messages", map[string]any{"client_id": "x", "text": "x", "reply_to": unknownID}, http.StatusUnprocessableEntity, "reply_not_found"},
			{"owner", http.MethodPost, base + "/messages", map[string]any{"client_id": "x", "text": "x", "reply_to": "nope"}, http.StatusUnprocessableEntity, "validation_failed"},
			{"owner", http.MethodGet, "/chats?cursor=bogus", nil, http.StatusUnprocessableEntity, "validation_failed"},
		} {
			if status, code := e.problem(tc.user, tc.method, tc.path, tc.body); status != tc.status || code != tc.code {
				t.Errorf("%s %s %s: %d %s, want %d %s", tc.user, tc.method, tc.path, status, code, tc.status, tc.code)
			}
		}
		// Hand over ownership, leave, and the chat goes when the last member leaves.
		e.do("owner", http.MethodPatch, base+"/members/"+e.id("ben"), map[string]any{"role": "owner"}, &v, http.StatusOK)
		e.do("owner", http.MethodDelete, base, nil, nil, http.StatusNoContent)
		e.do("ben", http.MethodGet, base, nil, &v, http.StatusOK)
		roles := map[string]chat.Role{}
		for _, m := range v.Members {
			roles[m.UserID] = m.Role
		}
		if len(v.Members) != 3 || roles[e.id("ben")] != chat.Owner {
			t.Fatalf("after the handover and leave: %+v", v.Members)
		}
		for _, u := range []string{"ann", "ben", "cat"} {
			e.do(u, http.MethodDelete, base, nil, nil, http.StatusNoContent)
		}
		e.do("ann", http.MethodGet, base, nil, nil, http.StatusNotFound)
	})
}

// TestE2ERevokedSessionsLoseTheirSockets: logging out closes the WebSockets opened with that
// session (4003), and a password change those of the user's other sessions; the sockets of the
// sessions that stay go on.
func TestE2ERevokedSessionsLoseTheirSockets(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "hana")
		first := e.users["hana"]
		login := func() servertest.User {
			var out struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
			}
			e.do("", http.MethodPost, "/auth/login", map[string]string{"login": "hana", "password": "correct horse battery"}, &out, http.StatusOK)
			return servertest.User{ID: first.ID, Username: "hana", AccessToken: out.AccessToken, RefreshToken: out.RefreshToken}
		}
		second, third := login(), login()
		ws1 := dial(t, e.n, first, "one")
		ws2 := dial(t, e.n, second, "two")
		ws3 := dial(t, e.n, third, "three")

		e.do("", http.MethodPost, "/auth/logout", map[string]string{"refresh_token": first.RefreshToken}, nil, http.StatusNoContent)
		if code := ws1.closedWith(); code != websocket.StatusCode(realtime.CloseSessionRevoked) {
			t.Fatalf("the logged-out session's socket closed with %d, want %d", code, realtime.CloseSessionRevoked)
		}
		ws2.ack("ping", nil, nil)
		ws3.ack("ping", nil, nil)

		// A password change through the second session signs out the others: the third.
		resp := e.n.Do(t, http.MethodPut, "/api/v1/users/me/password", second.AccessToken,
			map[string]string{"current_password": "correct horse battery", "new_password": "another horse battery"}, nil)
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			t.Fatalf("password change: status %d", resp.StatusCode)
		}
		if code := ws3.closedWith(); code != websocket.StatusCode(realtime.CloseSessionRevoked) {
			t.Fatalf("another session's socket closed with %d after a password change, want %d", code, realtime.CloseSessionRevoked)
		}
		ws2.ack("ping", nil, nil)
	})
}
