package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// fakeServer is a small stand-in for NeruTalk that speaks the part of the API contract the tool
// uses, with switches to misbehave, so the tool's measurements and checks can be tested on their
// own. (The end-to-end test against the real server lives in e2e_test.go.)
type fakeServer struct {
	mu       sync.Mutex
	users    map[string]string // token → user id
	byName   map[string]string // username → user id
	chats    map[string]*fakeChat
	conns    map[string][]*websocket.Conn // user id → connections
	nextID   int
	dropTo   int  // drop every dropTo-th delivery (0 = never)
	dupTo    int  // deliver every dupTo-th delivery twice (0 = never)
	skipSeq  int  // skip this seq number once (a gap), 0 = never
	silent   bool // never answer send_message
	deliverN int
}

type fakeChat struct {
	id      string
	members []string
	msgs    []map[string]any
	seq     int64
}

func newFakeServer(t *testing.T) (*fakeServer, *httptest.Server) {
	f := &fakeServer{users: map[string]string{}, byName: map[string]string{}, chats: map[string]*fakeChat{},
		conns: map[string][]*websocket.Conn{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		n := 0
		for _, cs := range f.conns {
			n += len(cs)
		}
		f.mu.Unlock()
		fmt.Fprintf(w, "go_goroutines %d\ngo_memstats_heap_inuse_bytes %d\nprocess_resident_memory_bytes %d\ngo_info{version=\"fake\"} 1\n",
			10+2*n, 1<<20+n*8192, 10<<20+n*20000)
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		paths := map[string]any{}
		for _, p := range []string{"/auth/register", "/auth/login", "/auth/refresh", "/chats", "/chats/{id}",
			"/chats/{id}/members", "/chats/{id}/messages"} {
			paths["/api/v1"+p] = map[string]any{}
		}
		json.NewEncoder(w).Encode(map[string]any{"paths": paths})
	})
	auth := func(w http.ResponseWriter, r *http.Request, status int, id, name string) {
		tok := "tok-" + id + "-" + strconv.Itoa(f.nextID)
		f.users[tok] = id
		f.nextID++
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"user": map[string]string{"id": id, "username": name},
			"access_token": tok, "refresh_token": "r" + tok, "token_type": "Bearer", "expires_in": 900})
	}
	mux.HandleFunc("POST /api/v1/auth/register", func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		json.NewDecoder(r.Body).Decode(&b)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.nextID++
		id := "u" + strconv.Itoa(f.nextID)
		f.byName[b["username"]] = id
		auth(w, r, http.StatusCreated, id, b["username"])
	})
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		json.NewDecoder(r.Body).Decode(&b)
		f.mu.Lock()
		defer f.mu.Unlock()
		id, ok := f.byName[b["login"]]
		if !ok {
			http.Error(w, `{"code":"invalid_credentials"}`, http.StatusUnauthorized)
			return
		}
		auth(w, r, http.StatusOK, id, b["login"])
	})
	mux.HandleFunc("POST /api/v1/auth/refresh", func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		json.NewDecoder(r.Body).Decode(&b)
		f.mu.Lock()
		defer f.mu.Unlock()
		id, ok := f.users[strings.TrimPrefix(b["refresh_token"], "r")]
		if !ok {
			http.Error(w, `{"code":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		delete(f.users, strings.TrimPrefix(b["refresh_token"], "r"))
		auth(w, r, http.StatusOK, id, "")
	})
	caller := func(r *http.Request) string {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.users[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	}
	mux.HandleFunc("POST /api/v1/chats", func(w http.ResponseWriter, r *http.Request) {
		me := caller(r)
		var b struct {
			Type      string   `json:"type"`
			MemberIDs []string `json:"member_ids"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.nextID++
		c := &fakeChat{id: "c" + strconv.Itoa(f.nextID), members: append([]string{me}, b.MemberIDs...)}
		f.chats[c.id] = c
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": c.id, "type": b.Type})
	})
	mux.HandleFunc("POST /api/v1/chats/{id}/members", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			UserIDs []string `json:"user_ids"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		f.mu.Lock()
		defer f.mu.Unlock()
		c := f.chats[r.PathValue("id")]
		c.members = append(c.members, b.UserIDs...)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/v1/chats/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		c := f.chats[r.PathValue("id")]
		json.NewEncoder(w).Encode(map[string]any{"id": c.id, "last_seq": c.seq})
	})
	mux.HandleFunc("GET /api/v1/chats/{id}/messages", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		c := f.chats[r.PathValue("id")]
		after, _ := strconv.ParseInt(r.URL.Query().Get("after_seq"), 10, 64)
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		items := []map[string]any{}
		if after == 0 && r.URL.Query().Get("after_seq") == "" {
			items = c.msgs[max(0, len(c.msgs)-limit):]
		} else {
			for _, m := range c.msgs {
				if m["seq"].(int64) > after && len(items) < limit {
					items = append(items, m)
				}
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"items": items})
	})
	mux.HandleFunc("GET /api/v1/ws", func(w http.ResponseWriter, r *http.Request) {
		me := caller(r)
		if me == "" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[me] = append(f.conns[me], ws)
		f.mu.Unlock()
		f.serveWS(r.Context(), me, ws)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return f, ts
}

func (f *fakeServer) serveWS(ctx context.Context, me string, ws *websocket.Conn) {
	defer ws.CloseNow()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var env struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Data struct {
				ChatID   string `json:"chat_id"`
				ClientID string `json:"client_id"`
				Text     string `json:"text"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &env) != nil {
			continue
		}
		write := func(c *websocket.Conn, v any) {
			b, _ := json.Marshal(v)
			_ = c.Write(ctx, websocket.MessageText, b)
		}
		switch env.Type {
		case "ping":
			write(ws, map[string]any{"type": "ack", "id": env.ID, "data": map[string]any{}})
		case "send_message":
			f.mu.Lock()
			if f.silent {
				f.mu.Unlock()
				continue
			}
			c := f.chats[env.Data.ChatID]
			c.seq++
			if f.skipSeq > 0 && c.seq == int64(f.skipSeq) {
				c.seq++
				f.skipSeq = 0
			}
			m := map[string]any{"id": "m" + strconv.FormatInt(c.seq, 10), "chat_id": c.id, "seq": c.seq,
				"sender_id": me, "client_id": env.Data.ClientID, "kind": "text", "text": env.Data.Text}
			c.msgs = append(c.msgs, m)
			var targets []*websocket.Conn
			for _, u := range c.members {
				for _, conn := range f.conns[u] {
					f.deliverN++
					if f.dropTo > 0 && f.deliverN%f.dropTo == 0 {
						continue
					}
					targets = append(targets, conn)
					if f.dupTo > 0 && f.deliverN%f.dupTo == 0 {
						targets = append(targets, conn)
					}
				}
			}
			f.mu.Unlock()
			write(ws, map[string]any{"type": "ack", "id": env.ID, "data": m})
			for _, conn := range targets {
				write(conn, map[string]any{"type": "message_new", "data": m})
			}
		}
	}
}

// runTool runs the tool against a server and returns its result line and error.
func runTool(t *testing.T, args ...string) (*result, map[string]any, error) {
	t.Helper()
	var out, errOut strings.Builder
	err := run(args, &out, &errOut)
	if testing.Verbose() {
		t.Log(errOut.String())
	}
	line := strings.TrimSpace(out.String())
	if line == "" {
		return nil, nil, err
	}
	var res result
	var raw map[string]any
	if jerr := json.Unmarshal([]byte(line), &res); jerr != nil {
		t.Fatalf("result is not JSON: %v\n%s", jerr, line)
	}
	json.Unmarshal([]byte(line), &raw)
	return &res, raw, err
}

var quick = []string{"-warmup", "200ms", "-window", "700ms", "-runs", "1", "-drain", "3s", "-backlog-limit", "15s", "-setup-workers", "4", "-dial-workers", "4"}

func TestChatScenarioAgainstFake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		misdo   func(f *fakeServer)
		ok      bool
		failure string
	}{
		{"honest server", func(*fakeServer) {}, true, ""},
		{"loses deliveries", func(f *fakeServer) { f.dropTo = 37 }, false, "missing"},
		{"duplicates deliveries", func(f *fakeServer) { f.dupTo = 41 }, false, "duplicate"},
		{"leaves a seq gap", func(f *fakeServer) { f.skipSeq = 3 }, false, "storage"},
		{"never answers", func(f *fakeServer) { f.silent = true }, false, "never answered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newFakeServer(t)
			tt.misdo(f)
			args := append([]string{"-scenario", "chat", "-addr", ts.URL, "-chat-users", "12", "-chat-groups", "3",
				"-chat-group-size", "4", "-chat-senders", "6", "-chat-rates", "60,120", "-history-rate", "10"}, quick...)
			res, raw, err := runTool(t, args...)
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			if res.OK != tt.ok || (err == nil) != tt.ok {
				t.Fatalf("ok = %v (err %v), want %v; checks %v", res.OK, err, tt.ok, res.Checks)
			}
			if !tt.ok && !strings.Contains(strings.Join(res.Checks, " "), tt.failure) {
				t.Errorf("checks %v do not mention %q", res.Checks, tt.failure)
			}
			r := raw["results"].(map[string]any)
			steps := r["steps"].([]any)
			if len(steps) == 0 {
				t.Fatal("no steps")
			}
			if f.silent {
				return
			}
			s0 := steps[0].(map[string]any)
			acked := s0["acked_per_s"].(map[string]any)["median"].(float64)
			deliv := s0["deliveries_per_s"].(map[string]any)["median"].(float64)
			// Rates depend on the machine; what is fixed is that each acked message reaches the
			// 4 members of its group (both are counted by send time, so the ratio is exact).
			if acked <= 0 {
				t.Errorf("acked %v/s", acked)
			}
			if tt.ok && math.Abs(deliv-4*acked) > 0.01 { // both rounded to 3 decimals
				t.Errorf("deliveries %v/s for %v acked/s into groups of 4", deliv, acked)
			}
			if h := s0["history_p99_ms"]; h == nil {
				t.Error("no history latency")
			}
			if tt.ok {
				st := r["storage"].(map[string]any)
				if st["acked"].(float64) == 0 || st["acked"] != st["stored"] {
					t.Errorf("storage %v", st)
				}
			}
		})
	}
}

func TestFanoutScenarioAgainstFake(t *testing.T) {
	t.Parallel()
	_, ts := newFakeServer(t)
	args := append([]string{"-scenario", "fanout", "-addr", ts.URL, "-fanout-sizes", "5,15", "-fanout-rates", "300,600"}, quick...)
	res, raw, err := runTool(t, args...)
	if err != nil || !res.OK {
		t.Fatalf("err %v, checks %v", err, res)
	}
	sizes := raw["results"].(map[string]any)["sizes"].([]any)
	if len(sizes) != 2 {
		t.Fatalf("sizes: %v", sizes)
	}
	steps := sizes[1].(map[string]any)["steps"].([]any)
	s0 := steps[0].(map[string]any)
	if got := s0["target_deliveries_per_s"].(float64); got != 300 {
		t.Errorf("target deliveries %v, want 300", got)
	}
	acked := s0["acked_per_s"].(map[string]any)["median"].(float64)
	if got := s0["deliveries_per_s"].(map[string]any)["median"].(float64); acked <= 0 || math.Abs(got-15*acked) > 0.01 {
		t.Errorf("deliveries %v/s for %v acked/s to 15 members", got, acked)
	}
}

func TestIdleScenarioAgainstFake(t *testing.T) {
	t.Parallel()
	_, ts := newFakeServer(t)
	args := append([]string{"-scenario", "idle", "-addr", ts.URL, "-idle-conns", "10,30", "-settle", "100ms", "-idle-group-size", "5"}, quick...)
	res, raw, err := runTool(t, args...)
	if err != nil || !res.OK {
		t.Fatalf("err %v, result %+v", err, res)
	}
	levels := raw["results"].(map[string]any)["levels"].([]any)
	if len(levels) != 2 {
		t.Fatalf("levels: %v", levels)
	}
	top := levels[1].(map[string]any)
	if got := top["rss_bytes_per_conn"].(map[string]any)["median"].(float64); got != 20000 {
		t.Errorf("RSS per connection %v, want 20000 (the fake's)", got)
	}
	if got := top["goroutines_per_conn"].(map[string]any)["median"].(float64); got != 2 {
		t.Errorf("goroutines per connection %v, want 2", got)
	}
	if top["alive"] != top["alive_checked"] || top["alive"].(float64) != 30 {
		t.Errorf("alive %v of %v", top["alive"], top["alive_checked"])
	}
	if len(res.Targets) != 1 || !res.Targets[0].Met {
		t.Errorf("targets %+v", res.Targets)
	}
}

func TestAuthScenarioAgainstFake(t *testing.T) {
	t.Parallel()
	_, ts := newFakeServer(t)
	args := append([]string{"-scenario", "auth", "-addr", ts.URL, "-auth-users", "3", "-auth-workers", "2"}, quick...)
	res, raw, err := runTool(t, args...)
	if err != nil || !res.OK {
		t.Fatalf("err %v, result %+v", err, res)
	}
	r := raw["results"].(map[string]any)
	for _, phase := range []string{"login", "refresh"} {
		if got := r[phase].(map[string]any)["per_s"].(map[string]any)["median"].(float64); got <= 0 {
			t.Errorf("%s: %v/s", phase, got)
		}
	}
}

func TestAllMessagesPages(t *testing.T) {
	t.Parallel()
	f, ts := newFakeServer(t)
	ctx := context.Background()
	api := newAPIClient(ts.URL, 2)
	a, err := api.register(ctx, "reader", "password-123")
	if err != nil {
		t.Fatal(err)
	}
	u := &user{id: a.User.ID, access: a.AccessToken, refresh: a.RefreshToken}
	ch, err := api.createChat(ctx, u, "group", "g", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	c := f.chats[ch.ID]
	for range 450 {
		c.seq++
		c.msgs = append(c.msgs, map[string]any{"seq": c.seq, "client_id": strconv.FormatInt(c.seq, 10)})
	}
	f.mu.Unlock()
	msgs, err := api.allMessages(ctx, u, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 450 || msgs[0].Seq != 1 || msgs[449].Seq != 450 {
		t.Errorf("read %d messages (first %v, last %v), want seq 1..450", len(msgs), msgs[0], msgs[len(msgs)-1])
	}
	latest, err := api.history(ctx, u, ch.ID, -1, 50)
	if err != nil || len(latest.Items) != 50 || latest.Items[0].Seq != 401 {
		t.Errorf("latest 50: %d items from %v, %v; want seq 401..450", len(latest.Items), latest.Items[0], err)
	}
}

func TestRefusesMissingEndpoints(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openapi.json" {
			w.Write([]byte(`{"paths":{"/api/v1/auth/register":{}}}`))
			return
		}
		w.Write([]byte("ok"))
	}))
	defer ts.Close()
	_, _, err := runTool(t, "-scenario", "chat", "-addr", ts.URL)
	if err == nil || !strings.Contains(err.Error(), "does not serve") {
		t.Errorf("err = %v, want a missing-endpoint error", err)
	}
}

func TestLoopbackScenario(t *testing.T) {
	t.Parallel()
	// No server: both ends of the connections are the tool's own.
	args := append([]string{"-scenario", "loopback", "-addr", "127.0.0.1:1", "-loopback-conns", "20",
		"-loopback-rates", "500,1k", "-loopback-frame", "64"}, quick...)
	res, raw, err := runTool(t, args...)
	if err != nil || !res.OK {
		t.Fatalf("err %v, result %+v", err, res)
	}
	r := raw["results"].(map[string]any)
	if r["conns"].(float64) != 20 || r["frame_bytes"].(float64) != 64 {
		t.Errorf("results %v", r)
	}
	steps := r["steps"].([]any)
	if len(steps) != 2 {
		t.Fatalf("%d steps, want 2", len(steps))
	}
	for _, s := range steps {
		st := s.(map[string]any)
		for _, k := range []string{"frames_per_s", "cores", "cpu_us_per_frame"} {
			if got := st[k].(map[string]any)["median"].(float64); got <= 0 {
				t.Errorf("step %v: %s = %v", st["target_frames_per_s"], k, got)
			}
		}
	}
}
