package realtime

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
)

func TestUpgradeRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	expired := e.token("alice", time.Now().Add(-time.Second))
	valid := e.token("alice", time.Time{})
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-WebSocket-Version": {"13"},
		"Sec-WebSocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	tests := []struct {
		name       string
		query      string
		header     http.Header
		wantStatus int
		wantCode   string
	}{
		{"no token", "", upgrade, http.StatusUnauthorized, "unauthenticated"},
		{"unknown token", "?token=nope", upgrade, http.StatusUnauthorized, "invalid_token"},
		{"unknown bearer", "", with(upgrade, "Authorization", "Bearer nope"), http.StatusUnauthorized, "invalid_token"},
		{"expired token", "?token=" + expired, upgrade, http.StatusUnauthorized, "unauthenticated"},
		{"not an upgrade", "?token=" + valid, nil, http.StatusUpgradeRequired, "upgrade_required"},
		{"old protocol version", "?token=" + valid, with(upgrade, "Sec-WebSocket-Version", "8"), http.StatusBadRequest, "bad_handshake"},
		{"bad key", "?token=" + valid, with(upgrade, "Sec-WebSocket-Key", "short"), http.StatusBadRequest, "bad_handshake"},
		{"foreign origin", "?token=" + valid, with(upgrade, "Origin", "https://evil.example"), http.StatusForbidden, "origin_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodGet, e.srv.URL+Path+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p httpapi.Problem
			body, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if resp.StatusCode != tt.wantStatus || p.Code != tt.wantCode {
				t.Errorf("got %d %q, want %d %q (%s)", resp.StatusCode, p.Code, tt.wantStatus, tt.wantCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.wantStatus == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// with returns a copy of h where k (in any spelling: the literals above are not canonical) is v.
func with(h http.Header, k, v string) http.Header {
	h = h.Clone()
	for key := range h {
		if strings.EqualFold(key, k) {
			delete(h, key)
		}
	}
	h.Set(k, v)
	return h
}

func TestTokenInQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.wsURL()+"?token="+e.token("alice", time.Time{}), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &client{t: t, ws: ws}
	defer ws.CloseNow()
	who := decodeData[map[string]string](t, c.call("whoami", "1", nil))
	if who["user_id"] != "alice" || who["ctx_user"] != "alice" || who["conn_id"] == "" {
		t.Errorf("whoami = %v", who)
	}
}

func TestOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		origins []string
		origin  string
		wantOK  bool
	}{
		{"same origin only, foreign page", nil, "https://evil.example", false},
		{"listed origin", []string{"https://app.example"}, "https://app.example", true},
		{"unlisted origin", []string{"https://app.example"}, "https://evil.example", false},
		{"any origin", []string{"*"}, "https://evil.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *config.Config) { c.CORSOrigins = tt.origins }, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, e.wsURL()+"?token="+e.token("alice", time.Time{}),
				&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {tt.origin}}})
			if tt.wantOK {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				ws.CloseNow()
				return
			}
			if err == nil {
				ws.CloseNow()
				t.Fatal("dial succeeded from a foreign origin")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("response %v, want 403", resp)
			}
			// A problem document, as every other error of the API.
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			var p struct {
				Status       int
				Code, Detail string
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("decode the 403: %v", err)
			}
			if p.Status != http.StatusForbidden || p.Code != "origin_not_allowed" || !strings.Contains(p.Detail, tt.origin) {
				t.Errorf("problem %+v, want 403 origin_not_allowed naming %s", p, tt.origin)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	tests := []struct {
		name  string
		frame string
		want  Frame // Data compared as JSON when set
	}{
		{"echo", `{"type":"echo","id":"a","data":{"x":1}}`, Frame{Type: "ack", ID: "a", Data: json.RawMessage(`{"x":1}`)}},
		{"no data", `{"type":"join","id":"b"}`, Frame{Type: "error", ID: "b", Data: json.RawMessage(`{"code":"validation_failed","detail":"data.topic: required","errors":[{"location":"data.topic","message":"required"}]}`)}},
		{"nil result", `{"type":"join","id":"c","data":{"topic":"t"}}`, Frame{Type: "ack", ID: "c", Data: json.RawMessage(`{}`)}},
		{"unknown type", `{"type":"nope","id":"d"}`, Frame{Type: "error", ID: "d", Data: json.RawMessage(`{"code":"unknown_type","detail":"unknown frame type nope"}`)}},
		{"malformed JSON", `{"type":"echo","id":"e"`, Frame{Type: "error", Data: json.RawMessage(`{"code":"bad_frame","detail":"malformed JSON"}`)}},
		{"not an object", `[1,2]`, Frame{Type: "error", Data: json.RawMessage(`{"code":"bad_frame","detail":"a frame must be a JSON object {\"type\", \"id\", \"data\"}"}`)}},
		{"data not object", `{"type":"echo","id":"f","data":[1]}`, Frame{Type: "error", ID: "f", Data: json.RawMessage(`{"code":"bad_frame","detail":"data must be a JSON object"}`)}},
		{"missing type", `{"id":"g"}`, Frame{Type: "error", ID: "g", Data: json.RawMessage(`{"code":"bad_frame","detail":"type is required"}`)}},
		{"forbidden", `{"type":"forbidden","id":"h"}`, Frame{Type: "error", ID: "h", Data: json.RawMessage(`{"code":"forbidden","detail":"not a member of this chat"}`)}},
		{"plain error", `{"type":"boom","id":"i"}`, Frame{Type: "error", ID: "i", Data: json.RawMessage(`{"code":"internal","detail":"internal error"}`)}},
		{"panic", `{"type":"panic","id":"j"}`, Frame{Type: "error", ID: "j", Data: json.RawMessage(`{"code":"internal","detail":"internal error"}`)}},
		{"unencodable result", `{"type":"unencodable","id":"k"}`, Frame{Type: "error", ID: "k", Data: json.RawMessage(`{"code":"internal","detail":"internal error"}`)}},
		{"failure without id", `{"type":"forbidden"}`, Frame{Type: "error", Data: json.RawMessage(`{"code":"forbidden","detail":"not a member of this chat"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := e.dial(t, "alice")
			c.sendRaw([]byte(tt.frame))
			got := c.read()
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(jsonEqual)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return cmp.Equal(x, y)
}

func TestSuccessWithoutIDIsSilent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dial(t, "alice")
	c.send("echo", "", map[string]int{"x": 1})
	if f := c.call("ping", "p", nil); f.Type != "ack" {
		t.Fatalf("got %+v, want the ping's ack as the first frame", f)
	}
}

func TestBinaryFrame(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dial(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	f := c.expectNext("error")
	if d := decodeData[ErrorData](t, f); d.Code != CodeBadFrame {
		t.Errorf("code = %q, want %q", d.Code, CodeBadFrame)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dial(t, "alice")
	before := time.Now().Add(-time.Second)
	f := c.call("ping", "p1", nil)
	if f.Type != "ack" {
		t.Fatalf("got %s, want ack", f.Type)
	}
	ts, err := time.Parse(time.RFC3339Nano, decodeData[PingData](t, f).TS)
	if err != nil {
		t.Fatalf("ts: %v", err)
	}
	if ts.Before(before) || ts.After(time.Now().Add(time.Second)) || ts.Location() != time.UTC {
		t.Errorf("ts = %v, want about now in UTC", ts)
	}
}

func TestServerPings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.WSPingInterval = 300 * time.Millisecond }, nil)

	// A client that reads answers the pings and stays connected.
	live := e.dial(t, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	frames := make(chan Frame, 16)
	go func() {
		for {
			_, b, err := live.ws.Read(ctx)
			if err != nil {
				close(frames)
				return
			}
			var f Frame
			_ = json.Unmarshal(b, &f)
			frames <- f
		}
	}()

	// A client that does not read never answers: it is closed with 4002.
	dead := e.dial(t, "bob")
	waitFor(t, "the ping timeout", func() bool {
		return metricValue(e.hub.metrics.closes.WithLabelValues(causePingTimeout.label)) == 1
	})
	dead.expectClose(websocket.StatusCode(ClosePingTimeout))
	time.Sleep(time.Second) // several more ping rounds for the live client

	live.send("ping", "still-there", nil)
	select {
	case f, ok := <-frames:
		if !ok || f.ID != "still-there" {
			t.Fatalf("live client got %+v (open %v), want the ping's ack", f, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("live client got no ack")
	}
	cancel()
}

func TestPublishUsersReachesEveryConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	a1, a2, b := e.dial(t, "alice"), e.dial(t, "alice"), e.dial(t, "bob")
	stranger := e.dial(t, "mallory")
	waitFor(t, "connections", func() bool {
		return e.hub.connCount("alice") == 2 && e.hub.connCount("bob") == 1 && e.hub.connCount("mallory") == 1
	})

	e.hub.PublishUsers(context.Background(), []string{"alice", "bob"}, "message_new", map[string]any{"text": "hi"})
	for _, c := range []*client{a1, a2, b} {
		f := c.expectNext("message_new")
		if got := decodeData[map[string]string](t, f)["text"]; got != "hi" || f.ID != "" {
			t.Errorf("frame %+v", f)
		}
	}
	// The stranger got nothing: its next frame is the marker sent to it alone.
	e.hub.PublishUsers(context.Background(), []string{"mallory"}, "marker", nil)
	if f := stranger.expectNext("marker"); string(f.Data) != "{}" {
		t.Errorf("marker data = %s, want {}", f.Data)
	}
	if !e.hub.Online("alice") || e.hub.Online("nobody") {
		t.Error("Online disagrees with the open connections")
	}
	if got := metricValue(e.hub.metrics.connections); got != 4 {
		t.Errorf("connections gauge = %v, want 4", got)
	}
}

func TestOrdering(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	conns := []*client{e.dial(t, "alice"), e.dial(t, "alice"), e.dial(t, "bob")}
	waitFor(t, "connections", func() bool { return e.hub.connCount("alice") == 2 && e.hub.connCount("bob") == 1 })
	const n = 500
	go func() {
		for i := range n {
			if i%2 == 0 {
				e.hub.PublishUsers(context.Background(), []string{"alice", "bob"}, "seq", map[string]int{"i": i})
			} else {
				e.hub.PublishTopic(context.Background(), "none", "other", nil, "")
				e.hub.PublishUsers(context.Background(), []string{"bob", "alice"}, "seq", map[string]int{"i": i})
			}
		}
	}()
	for ci, c := range conns {
		for i := range n {
			f := c.expectNext("seq")
			if got := decodeData[map[string]int](t, f)["i"]; got != i {
				t.Fatalf("conn %d: frame %d carries %d", ci, i, got)
			}
		}
	}
}

func TestTopics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	a1, a2, b, c := e.dial(t, "alice"), e.dial(t, "alice"), e.dial(t, "bob"), e.dialReady(t, "carol")
	for i, cl := range []*client{a1, a2, b} {
		if f := cl.call("join", fmt.Sprint("j", i), topicArgs{"chat:1"}); f.Type != "ack" {
			t.Fatalf("join: %+v", f)
		}
	}
	ctx := context.Background()
	marker := func(cl *client, user string) {
		t.Helper()
		e.hub.PublishUsers(ctx, []string{user}, "marker", nil)
		cl.expectNext("marker")
	}

	// Everyone who joined, except the excepted user.
	e.hub.PublishTopic(ctx, "chat:1", "typing_indicator", map[string]bool{"typing": true}, "bob")
	a1.expectNext("typing_indicator")
	a2.expectNext("typing_indicator")
	marker(b, "bob")
	marker(c, "carol")

	// One connection leaves by itself.
	if f := a2.call("leave", "l", topicArgs{"chat:1"}); f.Type != "ack" {
		t.Fatalf("leave: %+v", f)
	}
	e.hub.PublishTopic(ctx, "chat:1", "t2", nil, "")
	a1.expectNext("t2")
	b.expectNext("t2")
	marker(a2, "alice")
	a1.expectNext("marker")

	// Every connection of alice leaves at once.
	a2.call("join", "j-again", topicArgs{"chat:1"})
	e.hub.LeaveTopicUser(ctx, "chat:1", "alice")
	e.hub.PublishTopic(ctx, "chat:1", "t3", nil, "")
	b.expectNext("t3")
	marker(a1, "alice")
	a2.expectNext("marker")

	// Closing the last member leaves no topic behind.
	for _, cl := range []*client{a1, a2, b, c} {
		cl.ws.Close(websocket.StatusNormalClosure, "")
	}
	waitFor(t, "topics to empty", func() bool { return e.hub.topicCount() == 0 })
}

func TestOversizeFrame(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.WSMaxFrameBytes = 1024 }, nil)
	c := e.dial(t, "alice")
	c.send("echo", "small", map[string]string{"pad": strings.Repeat("x", 900)})
	c.expectNext("ack")
	c.send("echo", "big", map[string]string{"pad": strings.Repeat("x", 2000)})
	c.expectClose(websocket.StatusMessageTooBig)
}

func TestGarbageDisconnects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dial(t, "alice")
	for range maxBadFrames {
		c.sendRaw([]byte("garbage"))
	}
	frames := c.expectClose(websocket.StatusPolicyViolation)
	if len(frames) != maxBadFrames {
		t.Errorf("got %d error frames before the close, want %d", len(frames), maxBadFrames)
	}
	for _, f := range frames {
		if f.Type != "error" || decodeData[ErrorData](t, f).Code != CodeBadFrame {
			t.Errorf("frame %+v, want a bad_frame error", f)
		}
	}
}

func TestFewBadFramesAreForgiven(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dial(t, "alice")
	for i := range maxBadFrames - 2 {
		c.send("nope", fmt.Sprint(i), nil)
		c.expectNext("error")
	}
	if f := c.call("ping", "ok", nil); f.Type != "ack" {
		t.Fatalf("got %+v, want ack", f)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *config.Config) { c.WSFramesPerSecond = 5 }, nil)
		c := e.dial(t, "alice")
		for i := range 40 {
			c.send("ping", fmt.Sprint(i), nil)
		}
		frames := c.expectClose(websocket.StatusCode(CloseRateLimited))
		acks, limited := 0, 0
		for _, f := range frames {
			switch {
			case f.Type == "ack":
				acks++
			case f.Type == "error" && decodeData[ErrorData](t, f).Code == CodeRateLimited:
				limited++
			default:
				t.Errorf("unexpected frame %+v", f)
			}
		}
		// Burst of 2x5 accepted (plus refills), then refused frames until the allowance of 5 runs out.
		if acks < 10 || acks > 15 || limited < 5 {
			t.Errorf("acks = %d, rate_limited = %d; want about 10 acks and at least 5 refusals", acks, limited)
		}
	})
	t.Run("across a user's connections", func(t *testing.T) {
		t.Parallel()
		// Each connection stays within its own burst (10 at 5 a second) and sends too few to be
		// closed for refusals (5); the user's five together send 25, over the user's burst of 20
		// (twice one connection's rate).
		e := newEnv(t, func(c *config.Config) { c.WSFramesPerSecond = 5 }, nil)
		var conns []*client
		for range 5 {
			conns = append(conns, e.dial(t, "alice"))
		}
		for _, c := range conns {
			for i := range 5 {
				c.send("ping", fmt.Sprint(i), nil)
			}
		}
		acks, limited := 0, 0
		for _, c := range conns {
			for range 5 {
				switch f := c.read(); {
				case f.Type == "ack":
					acks++
				case f.Type == "error" && decodeData[ErrorData](t, f).Code == CodeRateLimited:
					limited++
				default:
					t.Fatalf("unexpected frame %+v", f)
				}
			}
		}
		if acks < 20 || acks > 23 || limited == 0 {
			t.Errorf("acks = %d, rate_limited = %d; want about 20 acks (the user's burst) and the rest refused", acks, limited)
		}
		// Another user has a budget of their own.
		if f := e.dial(t, "bob").call("ping", "b", nil); f.Type != "ack" {
			t.Errorf("bob's ping: %+v, want ack", f)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *config.Config) { c.WSFramesPerSecond = 1; c.RateLimits = false }, nil)
		c := e.dial(t, "alice")
		const n = 200
		for i := range n {
			c.send("ping", fmt.Sprint(i), nil)
		}
		for i := range n {
			if f := c.read(); f.Type != "ack" || f.ID != fmt.Sprint(i) {
				t.Fatalf("frame %d = %+v, want ack", i, f)
			}
		}
	})
}

func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.WSSendQueue = 8 }, nil)
	e.hub.closeTimeout = time.Minute     // the slow client must get to read the close frame on a loaded machine
	slow := e.dialSmallBuffer(t, "slow") // never reads until the overflow
	fast := e.dial(t, "fast")
	waitFor(t, "connections", func() bool { return e.hub.connCount("slow") == 1 && e.hub.connCount("fast") == 1 })

	pad := strings.Repeat("x", 128<<10)
	ctx := context.Background()
	published := 0
	for metricValue(e.hub.metrics.slow) == 0 {
		if published == 2000 {
			t.Fatal("the slow consumer was never disconnected")
		}
		e.hub.PublishUsers(ctx, []string{"slow", "fast"}, "bulk", map[string]any{"i": published, "pad": pad})
		if got := decodeData[map[string]any](t, fast.expectNext("bulk"))["i"]; got != float64(published) {
			t.Fatalf("fast got %v, want %d", got, published)
		}
		published++
	}
	// The slow client reads what was written before its close; the others keep receiving.
	var frames []Frame
	var slowErr error
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		frames, slowErr = slow.readUntilClose()
	}()
	for i := range 20 {
		e.hub.PublishUsers(ctx, []string{"fast", "slow"}, "after", map[string]int{"i": i})
		fast.expectNext("after")
	}
	<-slowDone
	if got := websocket.CloseStatus(slowErr); got != websocket.StatusCode(CloseTooSlow) {
		t.Fatalf("slow client: close status %d (%v), want %d", got, slowErr, CloseTooSlow)
	}
	t.Logf("slow consumer dropped after %d frames", published)
	if len(frames) >= published {
		t.Errorf("slow consumer got %d of %d frames, want fewer", len(frames), published)
	}
	for i, f := range frames {
		if f.Type != "bulk" || decodeData[map[string]any](t, f)["i"] != float64(i) {
			t.Fatalf("slow frame %d = %s, want bulk %d in order", i, f.Type, i)
		}
	}
	waitFor(t, "slow connection to go", func() bool { return e.hub.connCount("slow") == 0 })
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	c := e.dialToken(t, e.token("alice", time.Now().Add(300*time.Millisecond)))
	if f := c.call("ping", "before", nil); f.Type != "ack" {
		t.Fatalf("got %+v", f)
	}
	c.expectClose(websocket.StatusCode(CloseTokenExpired))
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	a, b := e.dial(t, "alice"), e.dial(t, "bob")
	waitFor(t, "connections", func() bool { return e.hub.connCount("alice") == 1 && e.hub.connCount("bob") == 1 })
	e.hub.PublishUsers(context.Background(), []string{"alice"}, "last", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.hub.Shutdown(ctx)
	}()
	if frames := a.expectClose(websocket.StatusGoingAway); len(frames) != 1 || frames[0].Type != "last" {
		t.Errorf("alice got %+v before the close, want the queued frame", frames)
	}
	b.expectClose(websocket.StatusGoingAway)
	<-done
	if got := metricValue(e.hub.metrics.connections); got != 0 {
		t.Errorf("connections gauge = %v after shutdown", got)
	}
	resp, err := e.srv.Client().Get(e.srv.URL + Path + "?token=" + e.token("alice", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after shutdown: status %d, want 503", resp.StatusCode)
	}
}

func TestHandlePanicsOnMisuse(t *testing.T) {
	t.Parallel()
	noop := func(context.Context, Client, json.RawMessage) (any, error) { return nil, nil }
	tests := []struct {
		name string
		do   func(h *Hub)
	}{
		{"ping is built in", func(h *Hub) { h.Handle("ping", noop) }},
		{"twice", func(h *Hub) { h.Handle("x", noop); h.Handle("x", noop) }},
		{"bad type", func(h *Hub) { h.Handle("has space", noop) }},
		{"nil handler", func(h *Hub) { h.Handle("x", nil) }},
		{"after serving", func(h *Hub) { h.serving.Store(true); h.Handle("x", noop) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := New(FromConfig(testConfig()))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.do(h)
		})
	}
}

func TestOpenAPIDocumentsTheSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	resp, err := e.srv.Client().Get(e.srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string         `json:"operationId"`
			Responses   map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	op := doc.Paths[Path]["get"]
	if op.OperationID != "websocket" || op.Responses["101"] == nil || op.Responses["401"] == nil {
		t.Errorf("operation = %+v", op)
	}
}

func TestClassifiedAuthErrorsKeepTheirStatus(t *testing.T) {
	t.Parallel()
	o := FromConfig(testConfig())
	o.Authenticate = func(context.Context, string) (identity.Principal, error) {
		return identity.Principal{}, apperr.New(apperr.KindUnavailable, "unavailable", "try later")
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, Path+"?token=x", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", rec.Code)
	}
}

// A store failure while the token is checked is the status REST gives (500), never a 401 that
// would send every connecting client back to sign in.
func TestAuthenticatorFailureIsNotUnauthenticated(t *testing.T) {
	t.Parallel()
	e := newEnvOptions(t, nil, func(o *Options) {
		o.Authenticate = func(context.Context, string) (identity.Principal, error) {
			return identity.Principal{}, errors.New("sessions: connection refused")
		}
	})
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-WebSocket-Version": {"13"},
		"Sec-WebSocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	for name, h := range map[string]http.Header{
		"query":  upgrade,
		"header": with(upgrade, "Authorization", "Bearer x"),
	} {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+Path+"?token=x", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var p httpapi.Problem
		if err := json.Unmarshal(body, &p); err != nil || resp.StatusCode != http.StatusInternalServerError || p.Code != "internal" {
			t.Errorf("%s: got %d %s, want a 500 internal problem", name, resp.StatusCode, body)
		}
		if c := resp.Header.Get("WWW-Authenticate"); c != "" {
			t.Errorf("%s: WWW-Authenticate = %q on a server failure", name, c)
		}
	}
}

// TestServerTimeoutsDoNotCutTheSocket guards against http.Server's read/write deadlines staying
// on the hijacked connection (net/http clears them at Hijack; the socket relies on it).
func TestServerTimeoutsDoNotCutTheSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil)
	ts := httptest.NewUnstartedServer(e.srv.Config.Handler)
	ts.Config.ReadTimeout = 200 * time.Millisecond
	ts.Config.WriteTimeout = 200 * time.Millisecond
	ts.Start()
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+Path+"?token="+e.token("alice", time.Time{}), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	c := &client{t: t, ws: ws}
	time.Sleep(600 * time.Millisecond)
	if f := c.call("ping", "late", nil); f.Type != "ack" {
		t.Fatalf("got %+v", f)
	}
}

// Clients that break the WebSocket protocol get the close code of RFC 6455 and lose the
// connection; the server counts the cause.
func TestProtocolViolations(t *testing.T) {
	t.Parallel()
	mask := func(op byte, payload []byte) []byte {
		f := []byte{0x80 | op, 0x80 | byte(len(payload)), 1, 2, 3, 4}
		for i, b := range payload {
			f = append(f, b^[]byte{1, 2, 3, 4}[i&3])
		}
		return f
	}
	tests := []struct {
		name  string
		frame []byte
		code  uint16
		label string
	}{
		{"unmasked frame", []byte{0x81, 0x02, '{', '}'}, 1002, causeProtocol.label},
		{"unknown opcode", mask(0x3, []byte("{}")), 1002, causeProtocol.label},
		{"text that is not utf-8", mask(0x1, []byte{'"', 0xff, '"'}), 1007, causeBadText.label},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil, nil)
			nc, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			req := "GET " + Path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
				"Authorization: Bearer " + e.token("mallory", time.Time{}) + "\r\n\r\n"
			if _, err := nc.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(nc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %v %v", resp, err)
			}
			if _, err := nc.Write(tt.frame); err != nil {
				t.Fatal(err)
			}
			// Frames until the close frame (the server has nothing else to say here).
			for {
				var h [2]byte
				if _, err := io.ReadFull(br, h[:]); err != nil {
					t.Fatalf("no close frame: %v", err)
				}
				payload := make([]byte, h[1]&0x7F)
				if _, err := io.ReadFull(br, payload); err != nil {
					t.Fatal(err)
				}
				if h[0]&0x0F != 0x8 {
					continue
				}
				if len(payload) < 2 || binary.BigEndian.Uint16(payload) != tt.code {
					t.Fatalf("close payload % x, want code %d", payload, tt.code)
				}
				break
			}
			waitFor(t, "the close to be counted", func() bool {
				return metricValue(e.hub.metrics.closes.WithLabelValues(tt.label)) == 1
			})
		})
	}
}

// TestConnectionsPerUser: with the cap at 2, a user's third upgrade is refused with 429
// too_many_connections (another user is not affected), and closing one frees its slot.
func TestConnectionsPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.WSMaxConnectionsPerUser = 2 }, nil)
	first := e.dialReady(t, "alice")
	e.dialReady(t, "alice")
	e.dialReady(t, "bob") // counted apart from alice's

	refused := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, resp, err := websocket.Dial(ctx, e.wsURL(), &websocket.DialOptions{
			HTTPHeader: http.Header{"Authorization": {"Bearer " + e.token("alice", time.Time{})}},
		})
		if err == nil {
			_ = ws.CloseNow()
			t.Fatal("third connection accepted")
		}
		if resp == nil {
			t.Fatalf("dial: %v (no response)", err)
		}
		defer resp.Body.Close()
		var p httpapi.Problem
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		if resp.StatusCode != http.StatusTooManyRequests || p.Code != "too_many_connections" {
			t.Errorf("got %d %q, want 429 too_many_connections (%s)", resp.StatusCode, p.Code, body)
		}
	}
	refused()
	if n := e.hub.connCount("alice"); n != 2 {
		t.Errorf("alice has %d connections, want 2", n)
	}

	if err := first.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitFor(t, "the closed connection's slot", func() bool {
		s := &e.hub.users[e.hub.seed.index("alice")]
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.slots["alice"] == 1
	})
	e.dialReady(t, "alice")
	refused()
}
