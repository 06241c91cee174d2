package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nerutalk/nerutalk/internal/realtime/rfc6455"
)

// fakeCentrifugo speaks the part of Centrifugo's JSON protocol the tool uses (connect,
// subscribe, publish; replies by id, publications pushed to every subscriber of the channel with
// the channel's offset), with a switch to lose publications.
type fakeCentrifugo struct {
	mu      sync.Mutex
	subs    map[string][]*fakeCFConn // channel → subscribers
	offsets map[string]uint64
	dropTo  int // drop every dropTo-th push (0 = never)
	pushes  int
}

type fakeCFConn struct {
	mu sync.Mutex
	ws *rfc6455.Conn
}

func (c *fakeCFConn) send(v any) {
	b, _ := json.Marshal(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.WriteTexts([][]byte{b})
}

func newFakeCentrifugo(t *testing.T) (*fakeCentrifugo, *httptest.Server) {
	f := &fakeCentrifugo{subs: map[string][]*fakeCFConn{}, offsets: map[string]uint64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /connection/websocket", func(w http.ResponseWriter, r *http.Request) {
		ws, err := rfc6455.Upgrade(w, r, rfc6455.Options{})
		if err != nil {
			return
		}
		c := &fakeCFConn{ws: ws}
		defer ws.Close()
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var cmd struct {
				ID        uint32          `json:"id"`
				Connect   json.RawMessage `json:"connect"`
				Subscribe *struct {
					Channel string `json:"channel"`
				} `json:"subscribe"`
				Publish *struct {
					Channel string          `json:"channel"`
					Data    json.RawMessage `json:"data"`
				} `json:"publish"`
			}
			if json.Unmarshal(msg, &cmd) != nil {
				return
			}
			switch {
			case cmd.Subscribe != nil:
				f.mu.Lock()
				f.subs[cmd.Subscribe.Channel] = append(f.subs[cmd.Subscribe.Channel], c)
				f.mu.Unlock()
				c.send(map[string]any{"id": cmd.ID, "subscribe": map[string]any{}})
			case cmd.Publish != nil:
				ch := cmd.Publish.Channel
				f.mu.Lock()
				f.offsets[ch]++
				off, subs := f.offsets[ch], f.subs[ch]
				f.mu.Unlock()
				c.send(map[string]any{"id": cmd.ID, "publish": map[string]any{}})
				for _, s := range subs {
					f.mu.Lock()
					f.pushes++
					drop := f.dropTo > 0 && f.pushes%f.dropTo == 0
					f.mu.Unlock()
					if !drop {
						s.send(map[string]any{"push": map[string]any{"channel": ch, "pub": map[string]any{"data": cmd.Publish.Data, "offset": off}}})
					}
				}
			default:
				c.send(map[string]any{"id": cmd.ID, "connect": map[string]any{"client": "x"}})
			}
		}
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return f, ts
}

// TestCentrifugoChatScenarioAgainstFake runs the chat scenario with -target centrifugo against
// the fake: every member of each channel receives each publication once, users beyond the
// groups subscribe nowhere, and lost publications fail the run.
func TestCentrifugoChatScenarioAgainstFake(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		dropTo int
		ok     bool
	}{{"honest server", 0, true}, {"loses pushes", 29, false}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newFakeCentrifugo(t)
			f.dropTo = tt.dropTo
			// 14 users, 3 groups of 4: users 12 and 13 subscribe nowhere.
			args := append([]string{"-target", "centrifugo", "-centrifugo-secret", "s", "-scenario", "chat", "-addr", ts.URL,
				"-chat-users", "14", "-chat-groups", "3", "-chat-group-size", "4", "-chat-senders", "6", "-chat-rates", "60,120"}, quick...)
			res, raw, err := runTool(t, args...)
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			if res.OK != tt.ok || (err == nil) != tt.ok {
				t.Fatalf("ok = %v (err %v), want %v; checks %v", res.OK, err, tt.ok, res.Checks)
			}
			f.mu.Lock()
			subs := map[string]int{}
			for ch, cs := range f.subs {
				subs[ch] = len(cs)
			}
			f.mu.Unlock()
			if len(subs) != 3 {
				t.Fatalf("subscriptions %v: want 3 channels", subs)
			}
			for ch, n := range subs {
				if n != 4 {
					t.Errorf("channel %s has %d subscribers, want 4", ch, n)
				}
			}
			r := raw["results"].(map[string]any)
			if _, ok := r["storage"]; ok {
				t.Error("results carry a storage check; Centrifugo stores nothing")
			}
			steps := r["steps"].([]any)
			if len(steps) != 2 {
				t.Fatalf("%d steps, want 2", len(steps))
			}
			if !tt.ok {
				if !strings.Contains(strings.Join(res.Checks, " "), "missing") {
					t.Errorf("checks %v do not mention the missing deliveries", res.Checks)
				}
				return
			}
			d := r["delivery"].(map[string]any)
			if acked, exp := d["acked"].(float64), d["expected"].(float64); acked == 0 || exp != 4*acked {
				t.Errorf("acked %v, expected deliveries %v: want 4 per acked publish", acked, exp)
			}
			if cpu := r["cpu_per_message"].([]any); len(cpu) != 2 {
				t.Errorf("cpu_per_message has %d rows, want 2", len(cpu))
			}
		})
	}
}
