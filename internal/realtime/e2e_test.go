package realtime_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// TestWholeNode drives the socket through the real server: a real account's access token, the
// real router and middleware, the metrics endpoint and the node's Shutdown.
func TestWholeNode(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, nil)
			alice := n.Register(t, "alice_ws")
			bob := n.Register(t, "bob_ws")
			wsURL := "ws" + strings.TrimPrefix(n.URL, "http") + realtime.Path
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			// A bad token never reaches the upgrade.
			_, resp, err := websocket.Dial(ctx, wsURL+"?token=not-a-token", nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("bad token: err %v, response %v; want 401", err, resp)
			}

			ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
				HTTPHeader: http.Header{"Authorization": {"Bearer " + alice.AccessToken}},
			})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer ws.CloseNow()
			if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":"1"}`)); err != nil {
				t.Fatal(err)
			}
			var f realtime.Frame
			readJSON(ctx, t, ws, &f)
			if f.Type != "ack" || f.ID != "1" {
				t.Fatalf("ping answer = %+v", f)
			}

			n.Srv.Hub.PublishUsers(ctx, []string{alice.ID, bob.ID}, "chat_updated", map[string]string{"id": "c1"})
			readJSON(ctx, t, ws, &f)
			if f.Type != "chat_updated" {
				t.Fatalf("event = %+v", f)
			}
			if !n.Srv.Hub.Online(alice.ID) || n.Srv.Hub.Online(bob.ID) {
				t.Error("Online does not match the open sockets")
			}

			resp = n.Do(t, http.MethodGet, "/metrics", "", nil, nil)
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), "nerutalk_ws_connections 1") {
				t.Errorf("/metrics lacks nerutalk_ws_connections 1")
			}
			var doc struct {
				Paths map[string]any `json:"paths"`
			}
			n.Do(t, http.MethodGet, "/openapi.json", "", nil, &doc)
			if doc.Paths[realtime.Path] == nil {
				t.Errorf("OpenAPI document lacks %s", realtime.Path)
			}

			closed := make(chan error, 1)
			go func() {
				_, _, err := ws.Read(ctx)
				closed <- err
			}()
			n.Srv.Shutdown(ctx)
			if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Errorf("after Shutdown: %v, want close 1001", err)
			}
		})
	}
}

func readJSON(ctx context.Context, t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
