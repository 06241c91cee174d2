package push_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/push"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

const apnsToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fast makes message pushes due quickly and workers poll often, so that the tests wait little.
func fast(c *config.Config) {
	c.PushMessageDelay, c.PushPollInterval, c.SessionCacheTTL = 100*time.Millisecond, 20*time.Millisecond, 0
}

func expect(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
}

func createChat(t *testing.T, n *servertest.Node, owner servertest.User, typ string, members ...servertest.User) string {
	t.Helper()
	ids := []string{}
	for _, m := range members {
		ids = append(ids, m.ID)
	}
	var c struct {
		ID string `json:"id"`
	}
	resp := n.Do(t, http.MethodPost, "/api/v1/chats", owner.AccessToken, map[string]any{"type": typ, "member_ids": ids, "title": "Crew"}, &c)
	expect(t, resp, http.StatusCreated)
	return c.ID
}

func registerDevice(t *testing.T, n *servertest.Node, u servertest.User, body map[string]any) push.Device {
	t.Helper()
	var d push.Device
	expect(t, n.Do(t, http.MethodPost, "/api/v1/devices", u.AccessToken, body, &d), http.StatusCreated)
	return d
}

func TestE2EDevicesAndPreferences(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, fast)
			ann, bob, eve := n.Register(t, "ann"), n.Register(t, "bob"), n.Register(t, "eve")
			d1 := registerDevice(t, n, ann, map[string]any{"platform": "android", "token": "ann-fcm", "locale": "de-AT"})
			d2 := registerDevice(t, n, ann, map[string]any{"platform": "android", "token": "ann-fcm", "locale": "de"})
			if d1.ID != d2.ID || d2.Provider != "fcm" || d2.Locale != "de" {
				t.Fatalf("re-registration: %+v then %+v", d1, d2)
			}
			key := make([]byte, 65)
			key[0] = 4
			web := registerDevice(t, n, ann, map[string]any{"platform": "web", "subscription": map[string]any{
				"endpoint": "https://push.example.net/abc",
				"keys":     map[string]string{"p256dh": base64.RawURLEncoding.EncodeToString(key), "auth": base64.RawURLEncoding.EncodeToString(make([]byte, 16))},
			}})
			if web.Provider != "webpush" {
				t.Fatalf("web: %+v", web)
			}
			expect(t, n.Do(t, http.MethodPost, "/api/v1/devices", ann.AccessToken, map[string]any{"platform": "ios", "token": "not-hex"}, nil), http.StatusUnprocessableEntity)
			expect(t, n.Do(t, http.MethodPost, "/api/v1/devices", "", map[string]any{"platform": "android", "token": "x"}, nil), http.StatusUnauthorized)
			var list struct{ Items []push.Device }
			expect(t, n.Do(t, http.MethodGet, "/api/v1/devices", ann.AccessToken, nil, &list), http.StatusOK)
			if len(list.Items) != 2 {
				t.Fatalf("devices: %+v", list)
			}
			expect(t, n.Do(t, http.MethodDelete, "/api/v1/devices/"+web.ID, eve.AccessToken, nil, nil), http.StatusNotFound)
			expect(t, n.Do(t, http.MethodDelete, "/api/v1/devices/not-an-id", ann.AccessToken, nil, nil), http.StatusUnprocessableEntity)
			expect(t, n.Do(t, http.MethodDelete, "/api/v1/devices/"+web.ID, ann.AccessToken, nil, nil), http.StatusNoContent)

			var key2 push.WebPushKey
			expect(t, n.Do(t, http.MethodGet, "/api/v1/push/webpush-key", "", nil, &key2), http.StatusOK)
			if b, err := base64.RawURLEncoding.DecodeString(key2.PublicKey); err != nil || len(b) != 65 {
				t.Fatalf("webpush key %q", key2.PublicKey)
			}

			// Chat preferences: members only.
			chatID := createChat(t, n, ann, "group", bob)
			var pref push.ChatNotifications
			until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			expect(t, n.Do(t, http.MethodPut, "/api/v1/chats/"+chatID+"/notifications", bob.AccessToken,
				map[string]any{"mode": "mentions", "muted_until": until}, &pref), http.StatusOK)
			if pref.Mode != "mentions" || pref.MutedUntil == nil || !pref.MutedUntil.Equal(until) {
				t.Fatalf("pref: %+v", pref)
			}
			expect(t, n.Do(t, http.MethodGet, "/api/v1/chats/"+chatID+"/notifications", bob.AccessToken, nil, &pref), http.StatusOK)
			if pref.Mode != "mentions" {
				t.Fatalf("pref read back: %+v", pref)
			}
			expect(t, n.Do(t, http.MethodPut, "/api/v1/chats/"+chatID+"/notifications", eve.AccessToken, map[string]any{"mode": "none"}, nil), http.StatusNotFound)
			expect(t, n.Do(t, http.MethodGet, "/api/v1/chats/"+chatID+"/notifications", eve.AccessToken, nil, nil), http.StatusNotFound)
			expect(t, n.Do(t, http.MethodPut, "/api/v1/chats/"+chatID+"/notifications", bob.AccessToken, map[string]any{"mode": "loud"}, nil), http.StatusUnprocessableEntity)

			var st push.NotificationSettings
			expect(t, n.Do(t, http.MethodPut, "/api/v1/notifications/settings", bob.AccessToken,
				map[string]any{"previews": false, "dnd": map[string]string{"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}}, &st), http.StatusOK)
			if st.Previews || st.DND == nil || st.DND.Timezone != "Europe/Berlin" {
				t.Fatalf("settings: %+v", st)
			}
			expect(t, n.Do(t, http.MethodPut, "/api/v1/notifications/settings", bob.AccessToken,
				map[string]any{"dnd": map[string]string{"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}}, nil), http.StatusUnprocessableEntity)

			// Signing out removes the session's devices.
			expect(t, n.Do(t, http.MethodPost, "/api/v1/auth/logout", "", map[string]string{"refresh_token": ann.RefreshToken}, nil), http.StatusNoContent)
			var left int
			if err := n.Srv.DB.R.QueryRow(`SELECT COUNT(*) FROM push_devices WHERE user_id = $1`, ann.ID).Scan(&left); err != nil || left != 0 {
				t.Fatalf("after logout: %d devices (%v)", left, err)
			}
		})
	}
}

func TestE2EAdmin(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, fast)
	boss, joe := n.Register(t, "boss"), n.Register(t, "joe")
	if err := auth.SetRole(context.Background(), n.Srv.DB, "boss", true); err != nil {
		t.Fatal(err)
	}
	registerDevice(t, n, joe, map[string]any{"platform": "ios", "token": apnsToken, "locale": "en-GB"})
	for _, r := range []struct{ method, path string }{
		{http.MethodPost, "/notifications/send"}, {http.MethodPost, "/notifications/broadcast"}, {http.MethodGet, "/notifications/stats"},
		{http.MethodGet, "/notifications/templates"}, {http.MethodPost, "/notifications/templates"},
		{http.MethodGet, "/notifications/templates/message:en"}, {http.MethodPut, "/notifications/templates/message:de"},
		{http.MethodDelete, "/notifications/templates/message:de"},
	} {
		expect(t, n.Do(t, r.method, "/api/v1"+r.path, joe.AccessToken, map[string]any{"title": "x", "body": "y", "user_ids": []string{joe.ID}}, nil), http.StatusForbidden)
	}
	var q push.NotificationsQueued
	expect(t, n.Do(t, http.MethodPost, "/api/v1/notifications/send", boss.AccessToken, map[string]any{"user_ids": []string{joe.ID}, "title": "Hi", "body": "there"}, &q), http.StatusAccepted)
	expect(t, n.Do(t, http.MethodPost, "/api/v1/notifications/send", boss.AccessToken, map[string]any{"user_ids": []string{"nobody"}, "title": "Hi"}, nil), http.StatusUnprocessableEntity)
	expect(t, n.Do(t, http.MethodPost, "/api/v1/notifications/send", boss.AccessToken, map[string]any{"user_ids": []string{uuid.NewString()}, "title": "Hi"}, nil), http.StatusUnprocessableEntity)
	expect(t, n.Do(t, http.MethodPost, "/api/v1/notifications/broadcast", boss.AccessToken, map[string]any{"title": "All", "platform": "ios", "locale": "en"}, &q), http.StatusAccepted)
	if q.Queued != 1 {
		t.Fatalf("broadcast queued %d", q.Queued)
	}
	expect(t, n.Do(t, http.MethodPost, "/api/v1/notifications/broadcast", boss.AccessToken, map[string]any{"title": "All", "platform": "web"}, &q), http.StatusAccepted)
	if q.Queued != 0 {
		t.Fatalf("web broadcast queued %d", q.Queued)
	}
	var tpl push.NotificationTemplate
	expect(t, n.Do(t, http.MethodPost, "/api/v1/notifications/templates", boss.AccessToken, map[string]any{"type": "message", "locale": "de", "title": "{{chat}}", "body": "{{sender}}: {{preview}}"}, &tpl), http.StatusCreated)
	if tpl.ID != "message:de" || tpl.Builtin {
		t.Fatalf("created template: %+v", tpl)
	}
	expect(t, n.Do(t, http.MethodPost, "/api/v1/notifications/templates", boss.AccessToken, map[string]any{"type": "message", "locale": "de", "title": "x"}, nil), http.StatusConflict)
	expect(t, n.Do(t, http.MethodPost, "/api/v1/notifications/templates", boss.AccessToken, map[string]any{"type": "nope", "locale": "de", "title": "x"}, nil), http.StatusUnprocessableEntity)
	expect(t, n.Do(t, http.MethodPut, "/api/v1/notifications/templates/message:de", boss.AccessToken, map[string]any{"title": "{{chat}}", "body": "{{sender}} schreibt: {{preview}}"}, &tpl), http.StatusOK)
	expect(t, n.Do(t, http.MethodPut, "/api/v1/notifications/templates/message:de", boss.AccessToken, map[string]any{"title": "{{.Env}}"}, nil), http.StatusUnprocessableEntity)
	expect(t, n.Do(t, http.MethodGet, "/api/v1/notifications/templates/message:de", boss.AccessToken, nil, &tpl), http.StatusOK)
	if tpl.Body != "{{sender}} schreibt: {{preview}}" {
		t.Fatalf("stored template: %+v", tpl)
	}
	expect(t, n.Do(t, http.MethodGet, "/api/v1/notifications/templates/message:fr", boss.AccessToken, nil, nil), http.StatusNotFound)
	expect(t, n.Do(t, http.MethodGet, "/api/v1/notifications/templates/garbage", boss.AccessToken, nil, nil), http.StatusUnprocessableEntity)
	expect(t, n.Do(t, http.MethodPost, "/api/v1/notifications/templates", boss.AccessToken, map[string]any{"type": "mention", "locale": "fr", "title": "x"}, nil), http.StatusCreated)
	expect(t, n.Do(t, http.MethodDelete, "/api/v1/notifications/templates/mention:fr", boss.AccessToken, nil, nil), http.StatusNoContent)
	expect(t, n.Do(t, http.MethodDelete, "/api/v1/notifications/templates/mention:fr", boss.AccessToken, nil, nil), http.StatusNotFound)
	// Joe's two notifications are sent (through the log sender: no APNs configured).
	var stats push.NotificationStats
	waitFor(t, "two deliveries sent", func() bool {
		expect(t, n.Do(t, http.MethodGet, "/api/v1/notifications/stats", boss.AccessToken, nil, &stats), http.StatusOK)
		return stats.Deliveries.Sent == 2
	})
	if stats.ByProvider["apns"].Sent != 2 || stats.ByType["admin"].Sent != 2 || stats.Notifications.Sent != 2 {
		t.Fatalf("stats: %+v", stats)
	}
	var hist struct {
		Items      []push.NotificationItem `json:"items"`
		NextCursor string                  `json:"next_cursor"`
	}
	expect(t, n.Do(t, http.MethodGet, "/api/v1/notifications?limit=1", joe.AccessToken, nil, &hist), http.StatusOK)
	if len(hist.Items) != 1 || hist.Items[0].Title != "All" || hist.NextCursor == "" {
		t.Fatalf("history page 1: %+v", hist)
	}
	expect(t, n.Do(t, http.MethodGet, "/api/v1/notifications?limit=1&cursor="+hist.NextCursor, joe.AccessToken, nil, &hist), http.StatusOK)
	if len(hist.Items) != 1 || hist.Items[0].Title != "Hi" || hist.NextCursor != "" {
		t.Fatalf("history page 2: %+v", hist)
	}
	expect(t, n.Do(t, http.MethodGet, "/api/v1/notifications?cursor=%25%25", joe.AccessToken, nil, nil), http.StatusUnprocessableEntity)
}

// waitFor polls cond until it holds (the server's worker runs on the real clock).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connect opens a WebSocket for u and waits until the hub has registered it.
func connect(t *testing.T, n *servertest.Node, u servertest.User) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+realtime.Path+"?token="+url.QueryEscape(u.AccessToken), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","id":"p"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var f realtime.Frame
		if json.Unmarshal(b, &f) == nil && f.Type == "ack" && f.ID == "p" {
			break
		}
	}
	go func() { // drain what the hub sends, so the connection is never too slow
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
}

func history(t *testing.T, n *servertest.Node, u servertest.User) []push.NotificationItem {
	t.Helper()
	var h struct {
		Items []push.NotificationItem `json:"items"`
	}
	expect(t, n.Do(t, http.MethodGet, "/api/v1/notifications", u.AccessToken, nil, &h), http.StatusOK)
	return h.Items
}

func sendText(t *testing.T, n *servertest.Node, u servertest.User, chatID, text string) {
	t.Helper()
	expect(t, n.Do(t, http.MethodPost, "/api/v1/chats/"+chatID+"/messages", u.AccessToken,
		map[string]any{"client_id": fmt.Sprint(time.Now().UnixNano()), "text": text}, nil), http.StatusCreated)
}

// TestE2EMessagePushes: on two nodes sharing PostgreSQL and Redis, a member connected to the
// other node gets no push; an offline member gets one collapsed push for a burst; a muted
// member none.
func TestE2EMessagePushes(t *testing.T) {
	t.Parallel()
	redisURL := storetest.RedisURL(t)
	_, prefix := storetest.Redis(t)
	a := servertest.New(t, store.Postgres, func(c *config.Config) {
		fast(c)
		c.RedisURL, c.RedisPrefix = redisURL, prefix
		c.PushMessageDelay = 500 * time.Millisecond // the burst below lands within it
	})
	b := servertest.New(t, store.Postgres, func(c *config.Config) {
		fast(c)
		c.DatabaseURL, c.RedisURL, c.RedisPrefix = a.Config.DatabaseURL, redisURL, prefix
		c.PushMessageDelay = 500 * time.Millisecond
	})
	ann, off, on, mute := a.Register(t, "ann"), a.Register(t, "offline"), a.Register(t, "online"), a.Register(t, "muted")
	for _, u := range []servertest.User{off, on, mute} {
		registerDevice(t, a, u, map[string]any{"platform": "android", "token": "tok-" + u.Username})
	}
	chatID := createChat(t, a, ann, "group", off, on, mute)
	expect(t, a.Do(t, http.MethodPut, "/api/v1/chats/"+chatID+"/notifications", mute.AccessToken, map[string]any{"mode": "none"}, nil), http.StatusOK)
	connect(t, b, on) // online through the other node
	for i := 0; i < 3; i++ {
		sendText(t, a, ann, chatID, fmt.Sprint("hello ", i))
	}
	waitFor(t, "every notification decided", func() bool {
		for _, u := range []servertest.User{off, on, mute} {
			h := history(t, a, u)
			if len(h) == 0 || h[0].Status == "queued" || h[0].Status == "sending" {
				return false
			}
		}
		return true
	})
	h := history(t, b, off)
	if len(h) != 1 || h[0].Status != "sent" || h[0].Count != 3 || h[0].Body != "3 new messages" || h[0].Title != "Crew" {
		t.Fatalf("offline member: %+v", h)
	}
	if h := history(t, a, on); len(h) != 1 || h[0].Status != "skipped" || h[0].Reason != "online" {
		t.Fatalf("online member: %+v", h)
	}
	if h := history(t, a, mute); len(h) != 1 || h[0].Status != "skipped" || h[0].Reason != "muted" {
		t.Fatalf("muted member: %+v", h)
	}
}

// TestE2ECallPushes: the server wires calls to push: a call rings on the callee's phone (a
// high-priority "call" push queued in the call's transaction), and hanging up queues the
// cancelling "call_cancel" push with the same call id, on both databases.
func TestE2ECallPushes(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, fast)
			ann, bob := n.Register(t, "ann"), n.Register(t, "bob")
			registerDevice(t, n, bob, map[string]any{"platform": "android", "token": "tok-bob"})
			chatID := createChat(t, n, ann, "group", bob)
			var c struct {
				ID string `json:"id"`
			}
			expect(t, n.Do(t, http.MethodPost, "/api/v1/calls", ann.AccessToken, map[string]any{"chat_id": chatID, "kind": "video"}, &c), http.StatusCreated)
			byType := func() map[string]push.NotificationItem {
				m := map[string]push.NotificationItem{}
				for _, it := range history(t, n, bob) {
					m[it.Type] = it
				}
				return m
			}
			waitFor(t, "the ring push", func() bool { return byType()["call"].Status == "sent" })
			if it := byType()["call"]; it.Data["call_id"] != c.ID || it.Data["kind"] != "video" {
				t.Fatalf("ring push: %+v", it)
			}
			expect(t, n.Do(t, http.MethodPost, "/api/v1/calls/"+c.ID+"/end", ann.AccessToken, nil, nil), http.StatusOK)
			waitFor(t, "the cancelling push", func() bool { return byType()["call_cancel"].Status == "sent" })
			if it := byType()["call_cancel"]; it.Data["call_id"] != c.ID {
				t.Fatalf("cancel push: %+v", it)
			}
			if h := history(t, n, ann); len(h) != 0 {
				t.Errorf("the caller got pushes of their own call: %+v", h)
			}
		})
	}
}

// TestE2EGeofencePushes: the server wires location to push: the viewer of a new share is told on
// their phone, and a viewer of the owner's exact location is told when the owner enters a
// geofence that notifies viewers; the owner, who made the move, is not.
func TestE2EGeofencePushes(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, fast)
	ann, bob := n.Register(t, "ann"), n.Register(t, "bob")
	registerDevice(t, n, bob, map[string]any{"platform": "android", "token": "tok-bob"})
	registerDevice(t, n, ann, map[string]any{"platform": "android", "token": "tok-ann"})
	expect(t, n.Do(t, http.MethodPost, "/api/v1/location/shares", ann.AccessToken,
		map[string]any{"user_id": bob.ID, "duration_s": 3600, "precision": "exact"}, nil), http.StatusCreated)
	waitFor(t, "the share push", func() bool {
		for _, it := range history(t, n, bob) {
			if it.Type == push.TypeLocation && it.Status == "sent" && it.Data["user_id"] == ann.ID {
				return true
			}
		}
		return false
	})
	var g struct {
		ID string `json:"id"`
	}
	expect(t, n.Do(t, http.MethodPost, "/api/v1/geofences", ann.AccessToken, map[string]any{
		"name": "Office", "center": map[string]any{"lat": 48.8584, "lng": 2.2945}, "radius_m": 200, "notify": "viewers",
	}, &g), http.StatusCreated)
	expect(t, n.Do(t, http.MethodPut, "/api/v1/location", ann.AccessToken,
		map[string]any{"lat": 48.8600, "lng": 2.3100, "accuracy_m": 10}, nil), http.StatusOK)
	expect(t, n.Do(t, http.MethodPut, "/api/v1/location", ann.AccessToken,
		map[string]any{"lat": 48.8584, "lng": 2.2945, "accuracy_m": 10, "recorded_at": time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)}, nil), http.StatusOK)
	var got push.NotificationItem
	waitFor(t, "the geofence push", func() bool {
		for _, it := range history(t, n, bob) {
			if it.Type == push.TypeGeofenceEnter && it.Status == "sent" {
				got = it
				return true
			}
		}
		return false
	})
	if !strings.Contains(got.Body+got.Title, "Office") {
		t.Errorf("geofence push does not name the geofence: %+v", got)
	}
	for _, it := range history(t, n, ann) {
		if strings.HasPrefix(it.Type, "geofence") {
			t.Errorf("the owner got a push of their own move: %+v", it)
		}
	}
}
