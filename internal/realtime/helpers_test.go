package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
)

// testEnv is a hub mounted on the real router over httptest, with a fake authenticator: tokens
// are issued with env.token.
type testEnv struct {
	hub *Hub
	srv *httptest.Server
	reg *prometheus.Registry

	mu     sync.Mutex
	next   int
	tokens map[string]identity.Principal

	laters chan *Later // the Laters the "later" command returned, in the order it ran
}

// fakeAudience maps a user to the users they follow automatically, who are also the users whose
// presence they may subscribe to; the key "chat/<id>" lists the members of chat <id>.
type fakeAudience map[string][]string

func (a fakeAudience) AutoPresence(_ context.Context, userID string) ([]string, error) {
	return a[userID], nil
}

func (a fakeAudience) PresenceVisible(_ context.Context, userID string, ids []string) ([]string, error) {
	out := []string{}
	for _, u := range ids {
		if slices.Contains(a[userID], u) || slices.Contains(a["visible/"+userID], u) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (a fakeAudience) ChatMembers(_ context.Context, userID, chatID string) ([]string, []string, error) {
	members, ok := a["chat/"+chatID]
	if !ok || !slices.Contains(members, userID) {
		return nil, nil, apperr.NotFound("chat")
	}
	return members, a["hidden/"+userID], nil
}

func testConfig() config.Config {
	cfg := config.Default()
	cfg.WSPingInterval = time.Minute
	return cfg
}

// withBus is the test configuration's Options on bus.
func withBus(bus Bus) Options {
	o := FromConfig(testConfig())
	o.Bus = bus
	return o
}

// newEnv starts a hub; mutate adjusts the configuration, audience may be nil.
func newEnv(t testing.TB, mutate func(*config.Config), audience PresenceAudience) *testEnv {
	t.Helper()
	return newEnvOptions(t, mutate, func(o *Options) { o.Audience = audience })
}

// newEnvOptions starts a hub; mutate adjusts the configuration, options the hub's other Options
// (Authenticate, Registerer and the limits are the env's).
func newEnvOptions(t testing.TB, mutate func(*config.Config), options func(*Options)) *testEnv {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	e := &testEnv{reg: prometheus.NewRegistry(), tokens: map[string]identity.Principal{}, laters: make(chan *Later, 64)}
	o := FromConfig(cfg)
	o.Authenticate, o.Registerer = e.authenticate, e.reg
	if options != nil {
		options(&o)
	}
	h, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	registerTestCommands(h)
	h.Handle("later", func(_ context.Context, _ Client, data json.RawMessage) (any, error) {
		// Answered when the test calls Done, with the frame's own data.
		l := NewLater(func() (any, error) { return data, nil })
		e.laters <- l
		return l, nil
	})
	api := httpapi.New(httpapi.Options{CORSOrigins: cfg.CORSOrigins, MaxBodyBytes: cfg.MaxBodyBytes})
	h.Mount(api)
	e.hub = h
	e.srv = httptest.NewServer(api.Router)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		e.srv.Close()
	})
	return e
}

func (e *testEnv) authenticate(_ context.Context, token string) (identity.Principal, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.tokens[token]
	if !ok {
		return p, apperr.New(apperr.KindUnauthenticated, "invalid_token", "invalid access token")
	}
	return p, nil
}

// token issues an access token for userID that expires at exp (zero: never).
func (e *testEnv) token(userID string, exp time.Time) string {
	return e.issue(identity.Principal{UserID: userID, ExpiresAt: exp})
}

// sessionToken issues a non-expiring access token for userID in the auth session sessionID.
func (e *testEnv) sessionToken(userID, sessionID string) string {
	return e.issue(identity.Principal{UserID: userID, SessionID: sessionID})
}

func (e *testEnv) issue(p identity.Principal) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	tok := fmt.Sprintf("tok-%s-%d", p.UserID, e.next)
	e.tokens[tok] = p
	return tok
}

func (e *testEnv) wsURL() string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + Path }

type client struct {
	t  testing.TB
	ws *websocket.Conn
}

// dial connects as userID (with a fresh, non-expiring token).
func (e *testEnv) dial(t testing.TB, userID string) *client {
	t.Helper()
	return e.dialToken(t, e.token(userID, time.Time{}))
}

// dialReady connects as userID and waits until the server has finished setting the connection up
// (presence recorded, snapshot queued): the read loop answers a ping only after that.
func (e *testEnv) dialReady(t testing.TB, userID string) *client {
	t.Helper()
	c := e.dial(t, userID)
	if f := c.call("ping", "ready", nil); f.Type != "ack" {
		t.Fatalf("ping: %+v", f)
	}
	return c
}

func (e *testEnv) dialToken(t testing.TB, token string) *client {
	t.Helper()
	return e.dialWith(t, token, nil)
}

// dialSmallBuffer connects with a small, fixed TCP receive buffer, so that a client that does not
// read backs the server up quickly.
func (e *testEnv) dialSmallBuffer(t testing.TB, userID string) *client {
	t.Helper()
	d := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(16 << 10)
		}
		return c, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return e.dialWith(t, e.token(userID, time.Time{}), &http.Client{Transport: tr})
}

func (e *testEnv) dialWith(t testing.TB, token string, hc *http.Client) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, e.wsURL(), &websocket.DialOptions{
		HTTPClient: hc,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: t, ws: ws}
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(typ, id string, data any) {
	c.t.Helper()
	f := map[string]any{"type": typ}
	if id != "" {
		f["id"] = id
	}
	if data != nil {
		f["data"] = data
	}
	b, err := json.Marshal(f)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

// read returns the next frame, failing the test after 5 seconds.
func (c *client) read() Frame {
	c.t.Helper()
	f, err := c.tryRead(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *client) tryRead(timeout time.Duration) (Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return Frame{}, err
	}
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// call sends a frame with an id and returns the answer to it (ack or error).
func (c *client) call(typ, id string, data any) Frame {
	c.t.Helper()
	c.send(typ, id, data)
	for {
		f := c.read()
		if f.ID == id {
			return f
		}
	}
}

// expectClose reads until the connection ends and checks the close code; it returns the frames
// read before.
func (c *client) expectClose(code websocket.StatusCode) []Frame {
	c.t.Helper()
	frames, err := c.readUntilClose()
	if got := websocket.CloseStatus(err); got != code {
		c.t.Fatalf("close status = %d (%v), want %d", got, err, code)
	}
	return frames
}

// readUntilClose reads frames until the connection ends (or 10 seconds pass without a frame) and
// returns them with the error that ended the reading. It may run on any goroutine.
func (c *client) readUntilClose() ([]Frame, error) {
	var frames []Frame
	for {
		f, err := c.tryRead(10 * time.Second)
		if err != nil {
			return frames, err
		}
		frames = append(frames, f)
	}
}

// expectNext reads the next frame and checks its type.
func (c *client) expectNext(typ string) Frame {
	c.t.Helper()
	f := c.read()
	if f.Type != typ {
		c.t.Fatalf("next frame = %s %s, want type %s", f.Type, f.Data, typ)
	}
	return f
}

func decodeData[T any](t testing.TB, f Frame) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(f.Data, &v); err != nil {
		t.Fatalf("decode %s data %s: %v", f.Type, f.Data, err)
	}
	return v
}

type topicArgs struct {
	Topic string `json:"topic"`
}

// registerTestCommands installs the commands the tests drive.
func registerTestCommands(h *Hub) {
	h.Handle("echo", func(_ context.Context, _ Client, data json.RawMessage) (any, error) {
		return data, nil
	})
	h.Handle("whoami", func(ctx context.Context, c Client, _ json.RawMessage) (any, error) {
		return map[string]string{"user_id": c.UserID(), "conn_id": c.ConnID(), "session_id": c.SessionID(), "ctx_user": identity.UserID(ctx)}, nil
	})
	h.Handle("join", func(_ context.Context, c Client, data json.RawMessage) (any, error) {
		var a topicArgs
		if err := json.Unmarshal(data, &a); err != nil || a.Topic == "" {
			return nil, apperr.Invalid("data.topic", "required")
		}
		c.Join(a.Topic)
		return nil, nil
	})
	h.Handle("leave", func(_ context.Context, c Client, data json.RawMessage) (any, error) {
		var a topicArgs
		if err := json.Unmarshal(data, &a); err != nil {
			return nil, apperr.Invalid("data.topic", "required")
		}
		c.Leave(a.Topic)
		return nil, nil
	})
	h.Handle("forbidden", func(context.Context, Client, json.RawMessage) (any, error) {
		return nil, apperr.Forbidden("not a member of this chat")
	})
	h.Handle("invalid", func(context.Context, Client, json.RawMessage) (any, error) {
		return nil, apperr.Invalid("data.text", "too long")
	})
	h.Handle("boom", func(context.Context, Client, json.RawMessage) (any, error) {
		return nil, errors.New("database exploded")
	})
	h.Handle("unencodable", func(context.Context, Client, json.RawMessage) (any, error) {
		return map[string]any{"ch": make(chan int)}, nil
	})
	h.Handle("panic", func(context.Context, Client, json.RawMessage) (any, error) {
		panic("handler bug")
	})
}

// connOf returns userID's only connection on the hub.
func (h *Hub) connOf(t testing.TB, userID string) *conn {
	t.Helper()
	s := &h.users[h.seed.index(userID)]
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.conns[userID]) != 1 {
		t.Fatalf("%s has %d connections, want 1", userID, len(s.conns[userID]))
	}
	return s.conns[userID][0]
}

// connCount is how many connections userID has on the hub.
func (h *Hub) connCount(userID string) int {
	s := &h.users[h.seed.index(userID)]
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns[userID])
}

// topicCount is how many topics have members.
func (h *Hub) topicCount() int {
	n := 0
	for i := range h.topics {
		s := &h.topics[i]
		s.mu.RLock()
		n += len(s.topics)
		s.mu.RUnlock()
	}
	return n
}

// waitFor polls cond until it holds, failing after 5 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue reads a gauge or counter.
func metricValue(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		panic(err)
	}
	if out.Gauge != nil {
		return out.Gauge.GetValue()
	}
	return out.Counter.GetValue()
}
