package call_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
)

// waitFor bounds every wait for a frame; a passing test never comes near it.
const waitFor = 15 * time.Second

// device is one WebSocket connection of a user (its own session).
type device struct {
	t       *testing.T
	name    string
	user    servertest.User // with this device's tokens
	node    *servertest.Node
	ws      *websocket.Conn
	in      chan realtime.Frame
	pending []realtime.Frame
	seq     int
}

// login signs the user in once more: a new session, as a second device would.
func login(t *testing.T, n *servertest.Node, u servertest.User) servertest.User {
	t.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	resp := n.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"login": u.Username, "password": "correct horse battery"}, &out)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d", u.Username, resp.StatusCode)
	}
	u.AccessToken = out.AccessToken
	return u
}

func connect(t *testing.T, n *servertest.Node, u servertest.User, name string) *device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(n.URL, "http") + realtime.Path + "?token=" + url.QueryEscape(u.AccessToken)
	ws, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	ws.SetReadLimit(4 << 20)
	d := &device{t: t, name: name, user: u, node: n, ws: ws, in: make(chan realtime.Frame, 1024)}
	go func() {
		defer close(d.in)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f realtime.Frame
			if err := json.Unmarshal(b, &f); err != nil {
				return
			}
			d.in <- f
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	d.command("ping", nil) // registered with the hub once this is answered
	return d
}

func (d *device) recv() realtime.Frame {
	d.t.Helper()
	select {
	case f, ok := <-d.in:
		if !ok {
			d.t.Fatalf("%s: connection closed", d.name)
		}
		return f
	case <-time.After(waitFor):
		d.t.Fatalf("%s: nothing received in %s", d.name, waitFor)
	}
	panic("unreachable")
}

// command sends a frame and returns its answer (ack or error); other frames are kept.
func (d *device) command(typ string, data any) realtime.Frame {
	d.t.Helper()
	d.seq++
	id := strconv.Itoa(d.seq)
	b, _ := json.Marshal(map[string]any{"type": typ, "id": id, "data": data})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := d.ws.Write(ctx, websocket.MessageText, b); err != nil {
		d.t.Fatalf("%s: write: %v", d.name, err)
	}
	for {
		f := d.recv()
		if (f.Type == "ack" || f.Type == "error") && f.ID == id {
			return f
		}
		d.pending = append(d.pending, f)
	}
}

// refused runs a command that must fail and returns its error code.
func (d *device) refused(typ string, data any) string {
	d.t.Helper()
	f := d.command(typ, data)
	if f.Type != "error" {
		d.t.Fatalf("%s: %s answered %s %s, want an error", d.name, typ, f.Type, f.Data)
	}
	var e realtime.ErrorData
	json.Unmarshal(f.Data, &e)
	return e.Code
}

// event waits for the next frame of type typ (keeping the others) and decodes its data.
func (d *device) event(typ string, out any) {
	d.t.Helper()
	for i, f := range d.pending {
		if f.Type == typ {
			d.pending = slices.Delete(d.pending, i, i+1)
			decode(d.t, f, out)
			return
		}
	}
	for {
		f := d.recv()
		if f.Type == typ {
			decode(d.t, f, out)
			return
		}
		d.pending = append(d.pending, f)
	}
}

// none checks that no frame of type typ arrived before a ping's answer (frames published before
// the ping are queued ahead of its answer on this node).
func (d *device) none(types ...string) {
	d.t.Helper()
	d.command("ping", nil)
	for _, f := range d.pending {
		if slices.Contains(types, f.Type) {
			d.t.Fatalf("%s: unexpected %s %s", d.name, f.Type, f.Data)
		}
	}
}

func decode(t *testing.T, f realtime.Frame, out any) {
	t.Helper()
	if out == nil {
		return
	}
	if err := json.Unmarshal(f.Data, out); err != nil {
		t.Fatalf("%s %s: %v", f.Type, f.Data, err)
	}
}

// do calls the API as the device's session and checks the status.
func (d *device) do(method, path string, body, out any, want int) {
	d.t.Helper()
	resp := d.node.Do(d.t, method, "/api/v1"+path, d.user.AccessToken, body, out)
	if resp.StatusCode != want {
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		d.t.Fatalf("%s: %s %s: status %d, want %d: %s", d.name, method, path, resp.StatusCode, want, b[:n])
	}
}
