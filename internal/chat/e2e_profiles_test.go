package chat_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/store"
)

// putAvatar uploads a small PNG as the user's avatar and returns the profile's new avatar_url.
func (e *env) putAvatar(user string) string {
	e.t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var raw bytes.Buffer
	if err := png.Encode(&raw, img); err != nil {
		e.t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, err := mw.CreateFormFile("file", "me.png")
	if err != nil {
		e.t.Fatal(err)
	}
	w.Write(raw.Bytes())
	mw.Close()
	req, err := http.NewRequest(http.MethodPut, e.n.URL+"/api/v1/users/me/avatar", &body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+e.users[user].AccessToken)
	resp, err := e.n.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s: PUT /users/me/avatar: %d", user, resp.StatusCode)
	}
	var me struct {
		AvatarURL string `json:"avatar_url"`
	}
	e.do(user, http.MethodGet, "/users/me", nil, &me, http.StatusOK)
	if me.AvatarURL == "" {
		e.t.Fatalf("%s: no avatar_url after the upload", user)
	}
	return me.AvatarURL
}

// TestE2EChatsCarryProfiles: GET /chats and GET /chats/{id} carry every member's username,
// display_name and avatar_url, and a direct chat's peer, fresh after a profile change; GET
// /chats/{id}/members pages through them; a stranger still gets 404.
func TestE2EChatsCarryProfiles(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "ana", "bob", "cyd", "stranger")
		var direct chat.ChatView
		e.do("bob", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("ana")}}, &direct, http.StatusCreated)
		if direct.Peer == nil || direct.Peer.UserID != e.id("ana") || direct.Peer.Username != "ana" || direct.Peer.AvatarURL != nil {
			t.Fatalf("peer before any avatar: %+v", direct.Peer)
		}
		// Ana changes her name and uploads an avatar: the next GET shows them, to both sides.
		e.do("ana", http.MethodPatch, "/users/me", map[string]any{"display_name": "Ana Silva"}, nil, http.StatusOK)
		avatar := e.putAvatar("ana")
		var list struct {
			Items []chat.ChatView `json:"items"`
		}
		e.do("bob", http.MethodGet, "/chats", nil, &list, http.StatusOK)
		if len(list.Items) != 1 {
			t.Fatalf("bob's chats: %+v", list.Items)
		}
		p := list.Items[0].Peer
		if p == nil || p.UserID != e.id("ana") || p.DisplayName != "Ana Silva" || p.AvatarURL == nil || *p.AvatarURL != avatar {
			t.Fatalf("bob's peer: %+v, want Ana Silva with %s", p, avatar)
		}
		if v := list.Items[0]; v.MemberCount != 2 || v.MembersTruncated || len(v.Members) != 2 {
			t.Fatalf("direct chat members: %+v", v.Chat)
		}
		var got chat.ChatView
		e.do("ana", http.MethodGet, "/chats/"+direct.ID, nil, &got, http.StatusOK)
		if got.Peer == nil || got.Peer.UserID != e.id("bob") || got.Peer.Username != "bob" || got.Peer.AvatarURL != nil {
			t.Fatalf("ana's peer: %+v", got.Peer)
		}
		for _, m := range got.Members {
			if m.UserID == e.id("ana") && (m.DisplayName != "Ana Silva" || m.AvatarURL == nil || *m.AvatarURL != avatar) {
				t.Fatalf("ana as a member: %+v", m)
			}
		}

		// A group: names for every member, no peer; chat_updated carries the profiles too.
		cy := dial(t, e.n, e.users["cyd"], "d")
		g := e.group("bob", "ana", "cyd")
		if g.Peer != nil || g.MemberCount != 3 {
			t.Fatalf("group: peer %+v, member_count %d", g.Peer, g.MemberCount)
		}
		var upd chat.Chat
		cy.event(chat.EventChatUpdated, &upd)
		if upd.ID != g.ID || upd.MemberCount != 3 || len(upd.Members) != 3 {
			t.Fatalf("chat_updated: %+v", upd)
		}
		for _, m := range upd.Members {
			if m.Username == "" || m.DisplayName == "" || (m.UserID == e.id("ana") && (m.AvatarURL == nil || *m.AvatarURL != avatar)) {
				t.Fatalf("chat_updated member without its profile: %+v", m)
			}
		}
		e.do("cyd", http.MethodGet, "/chats/"+g.ID, nil, &got, http.StatusOK)
		names := map[string]string{}
		for _, m := range got.Members {
			names[m.UserID] = m.Username + "/" + m.DisplayName
		}
		want := map[string]string{e.id("ana"): "ana/Ana Silva", e.id("bob"): "bob/bob", e.id("cyd"): "cyd/cyd"}
		if len(names) != len(want) {
			t.Fatalf("group members: %v, want %v", names, want)
		}
		for id, n := range want {
			if names[id] != n {
				t.Fatalf("group members: %v, want %v", names, want)
			}
		}

		// The member list, a page at a time, is the same list.
		var page struct {
			Items      []chat.MemberInfo `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		var all []chat.MemberInfo
		path := "/chats/" + g.ID + "/members?limit=2"
		for range 3 {
			e.do("cyd", http.MethodGet, path, nil, &page, http.StatusOK)
			all = append(all, page.Items...)
			if page.NextCursor == "" {
				break
			}
			path = "/chats/" + g.ID + "/members?limit=2&cursor=" + page.NextCursor
		}
		if len(all) != 3 || page.NextCursor != "" {
			t.Fatalf("paged members: %+v (next %q)", all, page.NextCursor)
		}
		for i, m := range all {
			if m.UserID != got.Members[i].UserID || m.Username != got.Members[i].Username {
				t.Fatalf("paged member %d: %+v, want %+v", i, m, got.Members[i])
			}
		}

		// A stranger sees none of it.
		for _, path := range []string{"/chats/" + direct.ID, "/chats/" + g.ID, "/chats/" + g.ID + "/members"} {
			if status, code := e.problem("stranger", http.MethodGet, path, nil); status != http.StatusNotFound || code != "not_found" {
				t.Errorf("stranger GET %s: %d %s, want 404 not_found", path, status, code)
			}
		}
		if status, code := e.problem("cyd", http.MethodGet, "/chats/"+g.ID+"/members?cursor=bogus", nil); status != http.StatusUnprocessableEntity {
			t.Errorf("bogus cursor: %d %s, want 422", status, code)
		}
	})
}
