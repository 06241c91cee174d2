package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// The authorization matrix: every operation of the OpenAPI document (generated from the router,
// so a new route shows up by itself) times every actor, with the outcome each must get. An
// operation without a row fails the test, and so does a row for an operation that is gone.
//
// Actors, fixed once per database: the owner of a group chat, an admin and a plain member of it,
// a removed member, and a stranger (a signed-in user with no relation to anything). The owner
// also owns one of every other resource (message, file, call, location share, geofence, device).
// Anonymous (no token) is checked generically: every operation whose document entry requires
// the bearer token must answer 401. A server administrator is checked on the administration
// routes. Whatever the status, no answer to an outsider (anonymous, stranger, removed member)
// may carry the id of one of the owner's private resources the request did not name (see leaked).
//
// Cells are outcome classes:
//
//	ok      allowed: neither 401, 403 nor 404, and no 5xx (a 409 or 422 still proves the
//	        request got past authorization)
//	404     hidden: the contract answers "not found" to whoever may not see the resource
//	403     forbidden: the actor can see the resource but not do this
//	-       not exercised here (the row says why); the owning package's tests cover it
//
// Rows run in table order and, within a row, actors in the order stranger, removed member,
// member, admin, owner, so the destructive rows (the DELETEs) come last.

type cell string

const (
	allowed cell = "ok"
	hidden  cell = "404"
	forbid  cell = "403"
	skip    cell = "-"
)

// fixtures are the ids the path parameters and bodies are filled from.
type fixtures struct {
	owner, admin, member, removed, stranger servertest.User
	// extra is another member of the chat (the target of role changes and removal); invitee
	// is not in it (added by POST /chats/{id}/members).
	extra, invitee servertest.User
	sysadmin       servertest.User // a server administrator

	chat, message, file, call, share, geofence, device, session string
	// invitation and invitationAccept are the owner's invitations to two groups of extra's.
	invitation, invitationAccept string
	// attachment is a file of the owner's sent in a message of the chat: its members may
	// download it (checked after the matrix, as the file rows use file).
	attachment string
}

type authzRow struct {
	op string // "METHOD /path/template"
	// The cells for stranger, removed member, member, admin and owner.
	stranger, removed, member, admin, owner cell
	body                                    func(f *fixtures) any // nil: no body
	// sysadmin is the cell of a server administrator (auth role admin), who has no relation to
	// the chat; "" (most rows): not checked.
	sysadmin cell
}

func row(op string, stranger, removed, member, admin, owner cell, body func(f *fixtures) any) authzRow {
	return authzRow{op: op, stranger: stranger, removed: removed, member: member, admin: admin, owner: owner, body: body}
}

// serverAdmin: the server administration routes. None of the five actors is a server admin
// (403); a server admin may.
func serverAdmin(op string, body func(f *fixtures) any) authzRow {
	r := every(op, forbid, body)
	r.sysadmin = allowed
	return r
}

// every gives the same cell to all five signed-in actors (routes about the caller's own data).
func every(op string, c cell, body func(f *fixtures) any) authzRow {
	return row(op, c, c, c, c, c, body)
}

// members: the chat's current members may, the others get 404.
func members(op string, body func(f *fixtures) any) authzRow {
	return row(op, hidden, hidden, allowed, allowed, allowed, body)
}

// ownerOnly: a resource that only its owner sees; everybody else gets 404.
func ownerOnly(op string, body func(f *fixtures) any) authzRow {
	return row(op, hidden, hidden, hidden, hidden, allowed, body)
}

func obj(kv ...any) func(*fixtures) any {
	return func(*fixtures) any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
}

var authzMatrix = []authzRow{
	// Public operations: no token needed, nothing to hide. Anonymous gets no 401 for them.
	every("GET /healthz", skip, nil),
	every("GET /readyz", skip, nil),
	every("POST /api/v1/auth/register", skip, nil), // covered by Register
	every("POST /api/v1/auth/login", skip, nil),
	every("POST /api/v1/auth/refresh", skip, nil),
	every("POST /api/v1/auth/logout", skip, nil),
	every("GET /api/v1/avatars/{id}", skip, nil), // avatars are public by contract
	every("GET /api/v1/avatars/{id}/thumbnail", skip, nil),
	every("HEAD /api/v1/avatars/{id}", skip, nil),
	every("HEAD /api/v1/avatars/{id}/thumbnail", skip, nil),
	every("GET /api/v1/media/builtin/{name}", skip, nil),
	every("GET /api/v1/push/webpush-key", skip, nil),

	// The caller's own data: every signed-in user may.
	every("GET /api/v1/users/me", allowed, nil),
	every("PATCH /api/v1/users/me", allowed, obj()),
	every("GET /api/v1/users", allowed, nil),
	// Password change and avatar upload change the actor itself (its sessions, its picture);
	// auth and media test them. Anonymous still gets 401.
	every("PUT /api/v1/users/me/password", skip, nil),
	every("PUT /api/v1/users/me/avatar", skip, nil),
	every("DELETE /api/v1/users/me/avatar", allowed, nil),
	every("GET /api/v1/auth/sessions", allowed, nil),
	every("GET /api/v1/chats", allowed, nil),
	every("GET /api/v1/calls", allowed, nil),
	every("GET /api/v1/calls/stats", allowed, nil),
	every("GET /api/v1/devices", allowed, nil),
	every("GET /api/v1/geofences", allowed, nil),
	every("PUT /api/v1/location", allowed, obj("lat", 38.7223, "lng", -9.1393)),
	every("GET /api/v1/location/me", allowed, nil),
	every("GET /api/v1/location/history", allowed, nil),
	// Nearby users need the caller to be discoverable, which none of the actors opted into.
	every("GET /api/v1/location/nearby", forbid, nil),
	every("PUT /api/v1/location/settings", allowed, obj()),
	every("GET /api/v1/location/shared", allowed, nil),
	every("GET /api/v1/location/shares", allowed, nil),
	every("GET /api/v1/media/gifs", allowed, nil),
	every("GET /api/v1/media/stickers", allowed, nil),
	every("GET /api/v1/media/usage", allowed, nil), // the caller's own storage use: nothing of anyone else's
	every("GET /api/v1/notifications", allowed, nil),
	every("GET /api/v1/notifications/settings", allowed, nil),
	every("PUT /api/v1/notifications/settings", allowed, obj()),
	every("GET /api/v1/ws", allowed, nil),     // not an upgrade: 426 after authentication
	every("POST /api/v1/files", allowed, nil), // a JSON body: 415 after authentication
	every("POST /api/v1/chats", allowed, obj("type", "group", "title", "own group", "member_ids", []string{})),
	every("POST /api/v1/geofences", allowed, obj("name", "mine", "center", map[string]float64{"lat": 1, "lng": 1}, "radius_m", 100)),
	every("POST /api/v1/devices", allowed, obj("platform", "android", "token", "tok-authz")),
	// Another user's public profile: any signed-in user.
	every("GET /api/v1/users/{id}", allowed, nil),
	every("GET /api/v1/invitations", allowed, nil),
	every("GET /api/v1/users/me/blocks", allowed, nil),
	// Anyone may block the owner (the owner blocking itself is 400: still ok here); the next row
	// lifts every block again, so that the rows after it run without any.
	every("POST /api/v1/users/{id}/block", allowed, nil),
	every("DELETE /api/v1/users/{id}/block", allowed, nil),
	// The owner's invitations: only the invitee sees them.
	ownerOnly("POST /api/v1/invitations/{id}/accept", nil),

	// Server administration: only a server admin.
	serverAdmin("GET /api/v1/admin/users", nil),
	serverAdmin("POST /api/v1/notifications/send", func(f *fixtures) any {
		return map[string]any{"user_ids": []string{f.member.ID}, "title": "t", "body": "b"}
	}),
	serverAdmin("POST /api/v1/notifications/broadcast", obj("title", "t", "body", "b")),
	serverAdmin("GET /api/v1/notifications/stats", nil),
	serverAdmin("GET /api/v1/notifications/templates", nil),
	serverAdmin("POST /api/v1/notifications/templates", obj("type", "message", "locale", "en")),
	serverAdmin("GET /api/v1/notifications/templates/{id}", nil),
	serverAdmin("PUT /api/v1/notifications/templates/{id}", obj()),
	serverAdmin("DELETE /api/v1/notifications/templates/{id}", nil),

	// The group chat.
	members("GET /api/v1/chats/{id}", nil),
	members("GET /api/v1/chats/{id}/members", nil),
	members("GET /api/v1/chats/{id}/messages", nil),
	members("POST /api/v1/chats/{id}/messages", obj("client_id", "c-authz", "text", "hi")),
	members("POST /api/v1/chats/{id}/read", obj("seq", 1)),
	members("POST /api/v1/chats/{id}/delivered", obj("seq", 1)),
	members("GET /api/v1/chats/{id}/receipts", nil),
	members("GET /api/v1/chats/{id}/notifications", nil),
	members("PUT /api/v1/chats/{id}/notifications", obj("mode", "all")),
	row("PATCH /api/v1/chats/{id}", hidden, hidden, forbid, allowed, allowed, obj("title", "renamed")),
	row("POST /api/v1/chats/{id}/members", hidden, hidden, forbid, allowed, allowed, func(f *fixtures) any {
		return map[string]any{"user_ids": []string{f.invitee.ID}}
	}),
	row("PATCH /api/v1/chats/{id}/members/{user_id}", hidden, hidden, forbid, forbid, allowed, obj("role", "member")),
	// The message is the owner's: only its author edits it.
	row("PATCH /api/v1/chats/{id}/messages/{msg_id}", hidden, hidden, forbid, forbid, allowed, obj("text", "edited")),

	// The owner's call in the group: its members see it.
	members("GET /api/v1/calls/{id}", nil),
	members("POST /api/v1/calls/{id}/token", nil),
	members("POST /api/v1/calls/{id}/join", nil),
	members("POST /api/v1/calls/{id}/leave", nil),
	members("POST /api/v1/calls/{id}/answer", nil),
	members("POST /api/v1/calls/{id}/decline", nil),
	members("POST /api/v1/calls", func(f *fixtures) any { return map[string]any{"chat_id": f.chat, "kind": "audio"} }),
	members("POST /api/v1/location/shares", func(f *fixtures) any {
		return map[string]any{"chat_id": f.chat, "precision": "exact"}
	}),

	// Resources only their owner sees.
	ownerOnly("GET /api/v1/files/{id}/info", nil),
	ownerOnly("GET /api/v1/files/{id}", nil),
	// A text file has no thumbnail: the owner's 404 proves nothing, so the owner is not checked.
	row("GET /api/v1/files/{id}/thumbnail", hidden, hidden, hidden, hidden, skip, nil),
	ownerOnly("HEAD /api/v1/files/{id}", nil),
	row("HEAD /api/v1/files/{id}/thumbnail", hidden, hidden, hidden, hidden, skip, nil),
	ownerOnly("GET /api/v1/geofences/{id}", nil),
	ownerOnly("PATCH /api/v1/geofences/{id}", obj("name", "renamed")),
	ownerOnly("GET /api/v1/geofences/{id}/events", nil),

	// Destructive operations last.
	row("POST /api/v1/calls/{id}/end", hidden, hidden, forbid, allowed, allowed, nil),
	ownerOnly("DELETE /api/v1/files/{id}", nil),
	ownerOnly("DELETE /api/v1/geofences/{id}", nil),
	ownerOnly("DELETE /api/v1/devices/{id}", nil),
	ownerOnly("DELETE /api/v1/location/shares/{id}", nil),
	ownerOnly("POST /api/v1/invitations/{id}/decline", nil),
	every("DELETE /api/v1/location/history", allowed, nil),
	// The owner's other session: revoking it is the owner's right, nobody else's.
	ownerOnly("DELETE /api/v1/auth/sessions/{id}", nil),
	// The admin deletes the owner's message first; the owner then finds it gone.
	row("DELETE /api/v1/chats/{id}/messages/{msg_id}", hidden, hidden, forbid, allowed, skip, nil),
	// The admin removes the extra member first; the owner then finds them gone.
	row("DELETE /api/v1/chats/{id}/members/{user_id}", hidden, hidden, forbid, allowed, skip, nil),
	// Leaving: the member was removed by the row above.
	row("DELETE /api/v1/chats/{id}", hidden, hidden, skip, allowed, allowed, nil),
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			testAuthorizationMatrix(t, d)
		})
	}
}

type docOp struct {
	bearer bool
}

func testAuthorizationMatrix(t *testing.T, d store.Dialect) {
	n := servertest.New(t, d, nil)
	ops := documentOperations(t, n)

	rows := map[string]bool{}
	for _, r := range authzMatrix {
		if rows[r.op] {
			t.Errorf("matrix: two rows for %s", r.op)
		}
		rows[r.op] = true
		if _, ok := ops[r.op]; !ok {
			t.Errorf("matrix: row for %s, which the OpenAPI document does not have", r.op)
		}
	}
	var missing []string
	for op := range ops {
		if !rows[op] {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	for _, op := range missing {
		t.Errorf("matrix: no row for %s: add one to authzMatrix (see CONTRIBUTING.md)", op)
	}
	if t.Failed() {
		return
	}

	f := setUpFixtures(t, n)
	actors := []struct {
		name     string
		user     servertest.User
		cell     func(r authzRow) cell
		outsider bool // no answer to it may carry an id of the owner's private resources
	}{
		{"stranger", f.stranger, func(r authzRow) cell { return r.stranger }, true},
		{"removed member", f.removed, func(r authzRow) cell { return r.removed }, true},
		{"member", f.member, func(r authzRow) cell { return r.member }, false},
		{"admin", f.admin, func(r authzRow) cell { return r.admin }, false},
		{"owner", f.owner, func(r authzRow) cell { return r.owner }, false},
		{"server admin", f.sysadmin, func(r authzRow) cell { return r.sysadmin }, false},
	}
	for _, r := range attachmentMatrix {
		method, tmpl, _ := strings.Cut(r.op, " ")
		path := strings.Replace(tmpl, "{id}", f.attachment, 1)
		if status, _ := authzDo(t, n, method, path, "", nil); status != http.StatusUnauthorized {
			t.Errorf("LEAK? %s %s (attachment) as anonymous: %d, want 401", method, path, status)
		}
		for _, a := range actors {
			if want := a.cell(r); want != skip && want != "" {
				if status, _ := authzDo(t, n, method, path, a.user.AccessToken, nil); !outcomeMatches(want, status) {
					t.Errorf("%s %s (attachment) as %s: %d, want %s", method, path, a.name, status, want)
				}
			}
		}
	}
	for _, r := range authzMatrix {
		method, tmpl, _ := strings.Cut(r.op, " ")
		path := fillPath(tmpl, f)
		var body any
		if r.body != nil {
			body = r.body(f)
		}
		// Anonymous: 401 wherever the document asks for the token.
		status, raw := authzDo(t, n, method, path, "", body)
		leaked(t, r.op, "anonymous", raw, f, path, body)
		if ops[r.op].bearer {
			if status != http.StatusUnauthorized {
				t.Errorf("LEAK? %s as anonymous: %d, want 401", r.op, status)
			}
		} else if status >= 500 {
			t.Errorf("%s as anonymous: %d", r.op, status)
		}
		for _, a := range actors {
			want := a.cell(r)
			if want == skip || want == "" {
				continue
			}
			status, raw := authzDo(t, n, method, path, a.user.AccessToken, body)
			if !outcomeMatches(want, status) {
				t.Errorf("%s %s as %s: %d, want %s", method, path, a.name, status, want)
			}
			if a.outsider {
				leaked(t, r.op, a.name, raw, f, path, body)
			}
		}
	}
}

// attachmentMatrix: a file sent in the chat is the chat's members' to download, and nobody else's.
var attachmentMatrix = []authzRow{
	members("GET /api/v1/files/{id}/info", nil),
	members("GET /api/v1/files/{id}", nil),
	members("HEAD /api/v1/files/{id}", nil),
}

func outcomeMatches(want cell, status int) bool {
	switch want {
	case allowed:
		return status != 401 && status != 403 && status != 404 && status < 500
	case hidden:
		return status == 404
	case forbid:
		return status == 403
	}
	return false
}

// documentOperations reads GET /openapi.json: "METHOD /path" -> whether it needs the token.
func documentOperations(t *testing.T, n *servertest.Node) map[string]docOp {
	t.Helper()
	resp, err := n.Client().Get(n.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("GET /openapi.json: %v", err)
	}
	out := map[string]docOp{}
	for p, item := range doc.Paths {
		for m, raw := range item {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
			default:
				continue
			}
			var op struct {
				Security []map[string][]string `json:"security"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", m, p, err)
			}
			bearer := false
			for _, s := range op.Security {
				_, has := s["bearer"]
				bearer = bearer || (has && len(s) > 0)
			}
			// An empty requirement ({}) among the alternatives makes the token optional.
			for _, s := range op.Security {
				if len(s) == 0 {
					bearer = false
				}
			}
			out[strings.ToUpper(m)+" "+p] = docOp{bearer: bearer}
		}
	}
	return out
}

func fillPath(tmpl string, f *fixtures) string {
	byPrefix := []struct{ prefix, id string }{
		{"/api/v1/chats/", f.chat},
		{"/api/v1/calls/", f.call},
		{"/api/v1/files/", f.file},
		{"/api/v1/geofences/", f.geofence},
		{"/api/v1/devices/", f.device},
		{"/api/v1/location/shares/", f.share},
		{"/api/v1/auth/sessions/", f.session},
		{"/api/v1/users/", f.owner.ID},
		{"/api/v1/invitations/", f.invitation},
		{"/api/v1/avatars/", f.owner.ID},
		{"/api/v1/notifications/templates/", "message.en"},
	}
	id := ""
	for _, b := range byPrefix {
		if strings.HasPrefix(tmpl, b.prefix) {
			id = b.id
			break
		}
	}
	if strings.HasSuffix(tmpl, "/accept") && strings.HasPrefix(tmpl, "/api/v1/invitations/") {
		id = f.invitationAccept
	}
	return strings.NewReplacer(
		"{id}", id,
		"{user_id}", f.extra.ID,
		"{msg_id}", f.message,
		"{name}", "heart.png",
	).Replace(tmpl)
}

// authzDo sends one request and returns its status and body.
func authzDo(t *testing.T, n *servertest.Node, method, path, token string, body any) (int, []byte) {
	t.Helper()
	resp := n.Do(t, method, path, token, body, nil)
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// leaked fails the test when an answer to an outsider (anonymous, a stranger, a removed member)
// carries the id of one of the owner's private resources that the request itself did not name:
// a list or a search that lets it through is a leak even with a 200.
func leaked(t *testing.T, op, actor string, raw []byte, f *fixtures, path string, body any) {
	t.Helper()
	sent, _ := json.Marshal(body)
	for _, secret := range []struct{ what, id string }{
		{"chat", f.chat}, {"message", f.message}, {"file", f.file}, {"call", f.call},
		{"location share", f.share}, {"geofence", f.geofence}, {"device", f.device}, {"session", f.session},
		{"attachment", f.attachment}, {"invitation", f.invitation}, {"invitation", f.invitationAccept},
	} {
		if secret.id == "" || strings.Contains(path, secret.id) || bytes.Contains(sent, []byte(secret.id)) {
			continue
		}
		if bytes.Contains(raw, []byte(secret.id)) {
			t.Errorf("LEAK: %s as %s: the answer carries the owner's %s id: %.300s", op, actor, secret.what, raw)
		}
	}
}

func setUpFixtures(t testing.TB, n *servertest.Node) *fixtures {
	t.Helper()
	f := &fixtures{
		owner:    n.Register(t, "authz_owner"),
		admin:    n.Register(t, "authz_admin"),
		member:   n.Register(t, "authz_member"),
		removed:  n.Register(t, "authz_removed"),
		stranger: n.Register(t, "authz_stranger"),
		extra:    n.Register(t, "authz_extra"),
		invitee:  n.Register(t, "authz_invitee"),
		sysadmin: n.Register(t, "authz_sysadmin"),
	}
	if err := auth.SetRole(context.Background(), n.Srv.DB, "authz_sysadmin", true); err != nil {
		t.Fatalf("fixture: SetRole: %v", err)
	}
	must := func(method, path, token string, body any, want int, out any) {
		t.Helper()
		resp := n.Do(t, method, path, token, body, out)
		if resp.StatusCode != want {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("fixture %s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
		}
	}
	owner := f.owner.AccessToken
	var chat struct {
		ID string `json:"id"`
	}
	must("POST", "/api/v1/chats", owner, map[string]any{
		"type": "group", "title": "authz", "member_ids": []string{f.admin.ID, f.member.ID, f.removed.ID, f.extra.ID},
	}, http.StatusCreated, &chat)
	f.chat = chat.ID
	must("PATCH", "/api/v1/chats/"+f.chat+"/members/"+f.admin.ID, owner, map[string]any{"role": "admin"}, http.StatusOK, nil)
	must("DELETE", "/api/v1/chats/"+f.chat+"/members/"+f.removed.ID, owner, nil, http.StatusNoContent, nil)

	var msg struct {
		ID string `json:"id"`
	}
	must("POST", "/api/v1/chats/"+f.chat+"/messages", owner, map[string]any{"client_id": "c-fixture", "text": "hello"}, http.StatusCreated, &msg)
	f.message = msg.ID

	f.file = uploadFile(t, n, owner)

	f.attachment = uploadFile(t, n, owner)
	must("POST", "/api/v1/chats/"+f.chat+"/messages", owner, map[string]any{
		"client_id": "c-attachment", "kind": "file", "attachment_ids": []string{f.attachment},
	}, http.StatusCreated, nil)

	var call struct {
		ID string `json:"id"`
	}
	must("POST", "/api/v1/calls", owner, map[string]any{"chat_id": f.chat, "kind": "audio"}, http.StatusCreated, &call)
	f.call = call.ID

	var share struct {
		ID string `json:"id"`
	}
	must("POST", "/api/v1/location/shares", owner, map[string]any{"chat_id": f.chat, "precision": "exact"}, http.StatusCreated, &share)
	f.share = share.ID

	var fence struct {
		ID string `json:"id"`
	}
	must("POST", "/api/v1/geofences", owner, map[string]any{
		"name": "home", "center": map[string]float64{"lat": 38.7, "lng": -9.1}, "radius_m": 200,
	}, http.StatusCreated, &fence)
	f.geofence = fence.ID

	var dev struct {
		ID string `json:"id"`
	}
	must("POST", "/api/v1/devices", owner, map[string]any{"platform": "android", "token": "tok-owner"}, http.StatusCreated, &dev)
	f.device = dev.ID

	// A second session of the owner's, to be revoked by the matrix.
	var login struct {
		RefreshToken string `json:"refresh_token"`
	}
	must("POST", "/api/v1/auth/login", "", map[string]string{"login": "authz_owner", "password": "correct horse battery"}, http.StatusOK, &login)
	var sessions struct {
		Items []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"items"`
	}
	must("GET", "/api/v1/auth/sessions", owner, nil, http.StatusOK, &sessions)
	for _, s := range sessions.Items {
		if !s.Current {
			f.session = s.ID
		}
	}
	if f.session == "" {
		t.Fatalf("fixture: no second session of the owner in %+v", sessions.Items)
	}

	// Two invitations of the owner's: extra adds the owner to two groups while the owner lets
	// nobody add them.
	must("PATCH", "/api/v1/users/me", owner, map[string]any{"group_adds": "nobody"}, http.StatusOK, nil)
	for _, title := range []string{"invites 1", "invites 2"} {
		must("POST", "/api/v1/chats", f.extra.AccessToken, map[string]any{
			"type": "group", "title": title, "member_ids": []string{f.owner.ID},
		}, http.StatusCreated, nil)
	}
	must("PATCH", "/api/v1/users/me", owner, map[string]any{"group_adds": "everyone"}, http.StatusOK, nil)
	var invs struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	must("GET", "/api/v1/invitations", owner, nil, http.StatusOK, &invs)
	if len(invs.Items) != 2 {
		t.Fatalf("fixture: the owner has %d invitations, want 2", len(invs.Items))
	}
	f.invitation, f.invitationAccept = invs.Items[0].ID, invs.Items[1].ID
	return f
}

func uploadFile(t testing.TB, n *servertest.Node, token string) string {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, err := mw.CreateFormFile("file", "notes.txt")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("private notes"))
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, n.URL+"/api/v1/files", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := n.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("fixture upload: %d: %s", resp.StatusCode, raw)
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.ID == "" {
		t.Fatalf("fixture upload: %s: %v", raw, err)
	}
	return out.ID
}
