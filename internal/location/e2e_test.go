package location_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/location"
	"github.com/nerutalk/nerutalk/internal/location/geo"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

const waitFor = 15 * time.Second

// locationEvents are the frames these tests look at; others (presence, chat_updated) are skipped.
var locationEvents = map[string]bool{
	location.EventShareStart: true, location.EventShareStop: true, location.EventSharedUpdate: true, location.EventGeofenceEvent: true,
}

type client struct {
	t    *testing.T
	name string
	ws   *websocket.Conn
	in   chan realtime.Frame
	seq  int
	// pending are location events received while waiting for an answer.
	pending []realtime.Frame
}

func dial(t *testing.T, n *servertest.Node, u servertest.User) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+realtime.Path+"?token="+url.QueryEscape(u.AccessToken), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Username, err)
	}
	c := &client{t: t, name: u.Username, ws: ws, in: make(chan realtime.Frame, 1024)}
	go func() {
		defer close(c.in)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f realtime.Frame
			if json.Unmarshal(b, &f) == nil {
				c.in <- f
			}
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	c.command("ping", nil) // registered with the hub once this is answered
	return c
}

// command sends a frame and waits for its answer; location events met on the way are kept for next.
func (c *client) command(typ string, data any) realtime.Frame {
	c.t.Helper()
	c.seq++
	id := strconv.Itoa(c.seq)
	b, _ := json.Marshal(map[string]any{"type": typ, "id": id, "data": data})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
	for {
		f := c.recv()
		if f.ID == id {
			return f
		}
		if locationEvents[f.Type] {
			c.pending = append(c.pending, f)
		}
	}
}

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

// next returns the next location event, which must be of type typ, decoded into out.
func (c *client) next(typ string, out any) {
	c.t.Helper()
	for {
		var f realtime.Frame
		if len(c.pending) > 0 {
			f, c.pending = c.pending[0], c.pending[1:]
		} else {
			f = c.recv()
		}
		if !locationEvents[f.Type] {
			continue
		}
		if f.Type != typ {
			c.t.Fatalf("%s: got %s %s, want %s", c.name, f.Type, f.Data, typ)
		}
		if out != nil {
			if err := json.Unmarshal(f.Data, out); err != nil {
				c.t.Fatal(err)
			}
		}
		return
	}
}

type env struct {
	t     *testing.T
	a, b  *servertest.Node // b is a (on one node) or a second node
	users map[string]servertest.User
}

func (e *env) do(node *servertest.Node, who, method, path string, body, out any, want int) {
	e.t.Helper()
	resp := node.Do(e.t, method, "/api/v1"+path, e.users[who].AccessToken, body, out)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s %s: status %d, want %d", who, method, path, resp.StatusCode, want)
	}
}

func TestE2EOneNode(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, nil)
			scenario(t, n, n)
		})
	}
}

func TestE2ETwoNodes(t *testing.T) {
	t.Parallel()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	a := servertest.New(t, store.Postgres, func(c *config.Config) { c.RedisURL, c.RedisPrefix = redisURL, prefix })
	b := servertest.New(t, store.Postgres, func(c *config.Config) {
		c.DatabaseURL, c.RedisURL, c.RedisPrefix = a.Config.DatabaseURL, redisURL, prefix
	})
	scenario(t, a, b)
}

// scenario: the owner (on a) shares with a friend exactly and with a chat approximately; every
// viewer (on b) gets exactly what their share allows, a stranger and a removed member nothing.
func scenario(t *testing.T, a, b *servertest.Node) {
	e := &env{t: t, a: a, b: b, users: map[string]servertest.User{}}
	for _, name := range []string{"owner", "friend", "member", "leaver", "stranger"} {
		e.users[name] = a.Register(t, name)
	}
	id := func(name string) string { return e.users[name].ID }
	var chat struct {
		ID string `json:"id"`
	}
	e.do(a, "owner", http.MethodPost, "/chats", map[string]any{"type": "group", "member_ids": []string{id("member"), id("leaver")}, "title": "g"}, &chat, http.StatusCreated)

	owner := dial(t, a, e.users["owner"])
	friend := dial(t, b, e.users["friend"])
	member := dial(t, b, e.users["member"])
	leaver := dial(t, b, e.users["leaver"])
	stranger := dial(t, b, e.users["stranger"])

	home := geo.Point{Lat: -33.8568, Lng: 151.2153}
	if f := owner.command(location.CmdLocationUpdate, map[string]any{"lat": home.Lat, "lng": home.Lng, "accuracy_m": 5}); f.Type != "ack" || !strings.Contains(string(f.Data), `"accepted":true`) {
		t.Fatalf("location_update: %s %s", f.Type, f.Data)
	}
	if f := owner.command(location.CmdLocationUpdate, map[string]any{"lat": 91, "lng": 0}); f.Type != "error" {
		t.Fatalf("bad location_update: %s %s", f.Type, f.Data)
	}
	var direct, group location.LocationShare
	e.do(a, "owner", http.MethodPost, "/location/shares", map[string]any{"user_id": id("friend"), "duration_s": 3600, "precision": "exact"}, &direct, http.StatusCreated)
	e.do(a, "owner", http.MethodPost, "/location/shares", map[string]any{"chat_id": chat.ID, "precision": "approximate"}, &group, http.StatusCreated)
	e.do(a, "stranger", http.MethodPost, "/location/shares", map[string]any{"chat_id": chat.ID, "precision": "exact"}, nil, http.StatusNotFound)
	e.do(a, "owner", http.MethodPost, "/location/shares", map[string]any{"user_id": id("friend"), "duration_s": 60, "precision": "exact"}, nil, http.StatusUnprocessableEntity)

	var start location.LocationShareStart
	friend.next(location.EventShareStart, &start)
	if start.ID != direct.ID || start.Location == nil || start.Location.Lat != home.Lat {
		t.Fatalf("friend's start: %+v", start)
	}
	snapped := geo.Snap(home)
	for _, c := range []*client{member, leaver} {
		c.next(location.EventShareStart, &start)
		if start.ID != group.ID || start.Location == nil || start.Location.Lat != snapped.Lat || start.Location.Lng != snapped.Lng {
			t.Fatalf("%s's start: %+v", c.name, start.Location)
		}
	}

	// A geofence around home, told to viewers: the exact viewer learns of it, the approximate
	// viewers do not (it would tell them more than the grid cell).
	var fence location.Geofence
	e.do(a, "owner", http.MethodPost, "/geofences", map[string]any{"name": "home", "center": home, "radius_m": 100, "notify": "viewers"}, &fence, http.StatusCreated)
	e.do(a, "stranger", http.MethodGet, "/geofences/"+fence.ID, nil, nil, http.StatusNotFound)
	e.do(a, "owner", http.MethodGet, "/geofences/not-an-id", nil, nil, http.StatusUnprocessableEntity)
	e.do(a, "owner", http.MethodPost, "/geofences", map[string]any{"name": "a\u0000b", "center": home, "radius_m": 100}, nil, http.StatusUnprocessableEntity)

	away := geo.Point{Lat: -33.87, Lng: 151.21}
	for i, p := range []geo.Point{away, home} {
		at := time.Now().Add(time.Duration(i+1) * time.Second).UTC().Format(time.RFC3339Nano)
		owner.command(location.CmdLocationUpdate, map[string]any{"lat": p.Lat, "lng": p.Lng, "accuracy_m": 5, "recorded_at": at})
		var upd location.SharedLocation
		friend.next(location.EventSharedUpdate, &upd)
		if upd.Lat != p.Lat || upd.ShareID != direct.ID || upd.UserID != id("owner") {
			t.Fatalf("friend's update: %+v", upd)
		}
		for _, c := range []*client{member, leaver} {
			c.next(location.EventSharedUpdate, &upd)
			if s := geo.Snap(p); upd.Lat != s.Lat || upd.Lng != s.Lng || upd.Heading != nil {
				t.Fatalf("%s's update: %+v, want the cell center %v", c.name, upd, s)
			}
		}
	}
	var gev location.GeofenceEvent
	for _, c := range []*client{owner, friend} {
		c.next(location.EventGeofenceEvent, &gev)
		if gev.Type != "enter" || gev.GeofenceID != fence.ID || gev.UserID != id("owner") {
			t.Fatalf("%s's geofence event: %+v", c.name, gev)
		}
	}
	var events struct {
		Items []location.GeofenceEvent `json:"items"`
	}
	e.do(a, "owner", http.MethodGet, "/geofences/"+fence.ID+"/events", nil, &events, http.StatusOK)
	if len(events.Items) != 1 || events.Items[0].Type != "enter" {
		t.Fatalf("stored events: %+v", events)
	}

	// The leaver is removed from the chat: told at once, then nothing more.
	e.do(a, "owner", http.MethodDelete, "/chats/"+chat.ID+"/members/"+id("leaver"), nil, nil, http.StatusNoContent)
	var stop location.LocationShareStop
	leaver.next(location.EventShareStop, &stop)
	if stop.ShareID != group.ID || stop.Reason != location.ReasonLeftChat {
		t.Fatalf("leaver's stop: %+v", stop)
	}
	owner.command(location.CmdLocationUpdate, map[string]any{"lat": home.Lat, "lng": home.Lng + 0.0001, "accuracy_m": 5,
		"recorded_at": time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)})
	friend.next(location.EventSharedUpdate, nil)
	member.next(location.EventSharedUpdate, nil)

	// The friend's share stopped: told, then nothing more.
	e.do(a, "stranger", http.MethodDelete, "/location/shares/"+direct.ID, nil, nil, http.StatusNotFound)
	e.do(a, "friend", http.MethodDelete, "/location/shares/"+direct.ID, nil, nil, http.StatusNotFound)
	e.do(a, "owner", http.MethodDelete, "/location/shares/"+direct.ID, nil, nil, http.StatusNoContent)
	friend.next(location.EventShareStop, &stop)
	if stop.Reason != location.ReasonStopped {
		t.Fatalf("friend's stop: %+v", stop)
	}
	owner.command(location.CmdLocationUpdate, map[string]any{"lat": home.Lat, "lng": home.Lng + 0.0002, "accuracy_m": 5,
		"recorded_at": time.Now().Add(4 * time.Second).UTC().Format(time.RFC3339Nano)})
	member.next(location.EventSharedUpdate, nil)

	// REST views: what each may see.
	var shared struct {
		Items []location.SharedLocation `json:"items"`
	}
	for who, want := range map[string]int{"friend": 0, "stranger": 0, "leaver": 0, "member": 1} {
		e.do(b, who, http.MethodGet, "/location/shared", nil, &shared, http.StatusOK)
		if len(shared.Items) != want {
			t.Fatalf("%s's shared: %+v, want %d", who, shared.Items, want)
		}
	}
	e.do(b, "member", http.MethodGet, "/location/shared", nil, &shared, http.StatusOK)
	if s := geo.Snap(geo.Point{Lat: home.Lat, Lng: home.Lng + 0.0002}); shared.Items[0].Lat != s.Lat || shared.Items[0].Lng != s.Lng {
		t.Fatalf("member's shared position %+v, want the cell center", shared.Items[0])
	}

	// Barriers: a new share with the stranger, the friend and the leaver, from the owner's node.
	// Their first location event since must be its start: nothing of the owner's reached them
	// before (a node's events keep their order on the bus).
	for _, who := range []string{"stranger", "friend", "leaver"} {
		e.do(a, "owner", http.MethodPost, "/location/shares", map[string]any{"user_id": id(who), "precision": "approximate"}, nil, http.StatusCreated)
	}
	for _, c := range []*client{stranger, friend, leaver} {
		c.next(location.EventShareStart, &start)
	}
	// The owner's own view.
	var me location.MyLocation
	e.do(a, "owner", http.MethodGet, "/location/me", nil, &me, http.StatusOK)
	if me.Location == nil || me.Location.Lng != home.Lng+0.0002 || me.HistoryRetentionDays != 7 {
		t.Fatalf("me: %+v", me)
	}
	var hist struct {
		Items []location.Position `json:"items"`
	}
	e.do(a, "owner", http.MethodGet, "/location/history", nil, &hist, http.StatusOK)
	if len(hist.Items) == 0 {
		t.Fatal("no history")
	}
	e.do(a, "owner", http.MethodDelete, "/location/history", nil, nil, http.StatusNoContent)
	e.do(a, "owner", http.MethodGet, "/location/history", nil, &hist, http.StatusOK)
	if len(hist.Items) != 0 {
		t.Fatalf("history after delete: %+v", hist.Items)
	}
	e.do(a, "owner", http.MethodGet, "/location/nearby?radius_m=1000", nil, nil, http.StatusForbidden)
	e.do(a, "owner", http.MethodPut, "/location", map[string]any{"lat": 0, "lng": 200}, nil, http.StatusUnprocessableEntity)
}
