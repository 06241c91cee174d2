package chat_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/store"
)

// withInvites is the answer of POST /chats and POST /chats/{id}/members.
type withInvites struct {
	chat.ChatView
	InvitedUserIDs []string `json:"invited_user_ids"`
}

type invitationPage struct {
	Items      []chat.Invitation `json:"items"`
	NextCursor string            `json:"next_cursor"`
}

func memberIDs(v chat.ChatView) []string {
	var out []string
	for _, m := range v.Members {
		out = append(out, m.UserID)
	}
	return out
}

// TestE2EGroupAddSetting: everyone is added, contacts only by someone they share a chat with,
// nobody never directly; the others are invited (invited_user_ids, group_invitation), and join
// by accepting or drop the invitation by declining. The setting is shown to its owner only.
func TestE2EGroupAddSetting(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "owner", "evy", "con", "nob")
		var me struct {
			GroupAdds string `json:"group_adds"`
		}
		e.do("evy", http.MethodGet, "/users/me", nil, &me, http.StatusOK)
		if me.GroupAdds != "everyone" {
			t.Fatalf("default group_adds %q, want everyone", me.GroupAdds)
		}
		e.do("con", http.MethodPatch, "/users/me", map[string]any{"group_adds": "contacts"}, &me, http.StatusOK)
		if me.GroupAdds != "contacts" {
			t.Fatalf("after PATCH: group_adds %q", me.GroupAdds)
		}
		e.do("nob", http.MethodPatch, "/users/me", map[string]any{"group_adds": "nobody"}, nil, http.StatusOK)
		if st, _ := e.problem("nob", http.MethodPatch, "/users/me", map[string]any{"group_adds": "friends"}); st != http.StatusUnprocessableEntity {
			t.Fatalf("group_adds friends: %d, want 422", st)
		}
		var public json.RawMessage
		e.do("owner", http.MethodGet, "/users/"+e.id("nob"), nil, &public, http.StatusOK)
		var fields map[string]any
		json.Unmarshal(public, &fields)
		if _, ok := fields["group_adds"]; ok {
			t.Fatalf("another user's profile shows group_adds: %s", public)
		}

		con := dial(t, e.n, e.users["con"], "phone")
		nob := dial(t, e.n, e.users["nob"], "phone")
		owner := dial(t, e.n, e.users["owner"], "phone")

		// A group with all three: evy added, con (no shared chat yet) and nob invited.
		var g withInvites
		e.do("owner", http.MethodPost, "/chats", map[string]any{"type": "group", "title": "team",
			"member_ids": []string{e.id("con"), e.id("evy"), e.id("nob")}}, &g, http.StatusCreated)
		if want := []string{e.id("con"), e.id("nob")}; !slices.Equal(g.InvitedUserIDs, want) {
			t.Fatalf("invited %v, want %v (con, nob in the order asked)", g.InvitedUserIDs, want)
		}
		if got := memberIDs(g.ChatView); len(got) != 2 || !slices.Contains(got, e.id("evy")) {
			t.Fatalf("members %v, want owner and evy", got)
		}
		var inv chat.Invitation
		con.event(chat.EventGroupInvitation, &inv)
		if inv.ChatID != g.ID || inv.Inviter.UserID != e.id("owner") || inv.Title != "team" || inv.Inviter.Username != "owner" {
			t.Fatalf("con's group_invitation %+v", inv)
		}
		var nobInv chat.Invitation
		nob.event(chat.EventGroupInvitation, &nobInv)

		// invited_user_ids is always there, [] when everyone was added.
		var raw json.RawMessage
		e.do("owner", http.MethodPost, "/chats", map[string]any{"type": "group", "title": "solo", "member_ids": []string{e.id("evy")}}, &raw, http.StatusCreated)
		var rawFields map[string]json.RawMessage
		json.Unmarshal(raw, &rawFields)
		if string(rawFields["invited_user_ids"]) != "[]" {
			t.Fatalf("invited_user_ids %s, want []", rawFields["invited_user_ids"])
		}

		// Once con shares a chat with owner (a direct chat), owner adds con directly; nob still not.
		e.do("owner", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("con")}}, nil, http.StatusCreated)
		var g2 withInvites
		e.do("owner", http.MethodPost, "/chats", map[string]any{"type": "group", "title": "two", "member_ids": []string{e.id("evy")}}, &g2, http.StatusCreated)
		e.do("owner", http.MethodPost, "/chats/"+g2.ID+"/members", map[string]any{"user_ids": []string{e.id("con"), e.id("nob")}}, &g2, http.StatusOK)
		if !slices.Equal(g2.InvitedUserIDs, []string{e.id("nob")}) || !slices.Contains(memberIDs(g2.ChatView), e.id("con")) {
			t.Fatalf("add to g2: invited %v, members %v; want con added, nob invited", g2.InvitedUserIDs, memberIDs(g2.ChatView))
		}

		// nob accepts the first invitation: a member, and the group hears of it.
		var page invitationPage
		e.do("nob", http.MethodGet, "/invitations?limit=1", nil, &page, http.StatusOK)
		if len(page.Items) != 1 || page.Items[0].ID != nobInv.ID || page.NextCursor == "" {
			t.Fatalf("nob's first page %+v, want the first invitation and a cursor", page)
		}
		e.do("nob", http.MethodGet, "/invitations?cursor="+page.NextCursor, nil, &page, http.StatusOK)
		if len(page.Items) != 1 || page.Items[0].ChatID != g2.ID || page.NextCursor != "" {
			t.Fatalf("nob's second page %+v, want the g2 invitation, last page", page)
		}
		if st, _ := e.problem("con", http.MethodPost, "/invitations/"+nobInv.ID+"/accept", nil); st != http.StatusNotFound {
			t.Fatalf("someone else's invitation: %d, want 404", st)
		}
		var joined chat.ChatView
		e.do("nob", http.MethodPost, "/invitations/"+nobInv.ID+"/accept", nil, &joined, http.StatusOK)
		if !slices.Contains(memberIDs(joined), e.id("nob")) {
			t.Fatalf("after accepting, members %v lack nob", memberIDs(joined))
		}
		var upd chat.Chat
		for {
			owner.event(chat.EventChatUpdated, &upd)
			if upd.ID == g.ID && slices.ContainsFunc(upd.Members, func(m chat.MemberInfo) bool { return m.UserID == e.id("nob") }) {
				break
			}
		}
		if st, _ := e.problem("nob", http.MethodPost, "/invitations/"+nobInv.ID+"/accept", nil); st != http.StatusNotFound {
			t.Fatalf("accepting twice: %d, want 404", st)
		}
		// Adding a member again is no invitation.
		var again withInvites
		e.do("owner", http.MethodPost, "/chats/"+g.ID+"/members", map[string]any{"user_ids": []string{e.id("nob")}}, &again, http.StatusOK)
		if len(again.InvitedUserIDs) != 0 {
			t.Fatalf("re-adding a member invited %v", again.InvitedUserIDs)
		}

		// con declines: gone, not a member.
		e.do("con", http.MethodPost, "/invitations/"+inv.ID+"/decline", nil, nil, http.StatusNoContent)
		e.do("con", http.MethodGet, "/invitations", nil, &page, http.StatusOK)
		if len(page.Items) != 0 {
			t.Fatalf("con's invitations after declining: %+v", page.Items)
		}
		if st, _ := e.problem("con", http.MethodPost, "/invitations/"+inv.ID+"/accept", nil); st != http.StatusNotFound {
			t.Fatalf("accepting a declined invitation: %d, want 404", st)
		}
		if st, _ := e.problem("con", http.MethodGet, "/chats/"+g.ID, nil); st != http.StatusNotFound {
			t.Fatalf("con sees the group after declining: %d", st)
		}
	})
}

// TestE2EBlocking: what a block stops between two users, and that the blocked user learns no
// more than the refusals must say.
func TestE2EBlocking(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newPresenceEnv(t, d, 50, 0, "ann", "bob", "cid")
		var dm chat.ChatView
		e.do("bob", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("ann")}}, &dm, http.StatusCreated)
		g := e.group("cid", "ann", "bob")

		// Blocking: idempotent, not yourself, not nobody.
		e.do("ann", http.MethodPost, "/users/"+e.id("bob")+"/block", nil, nil, http.StatusNoContent)
		e.do("ann", http.MethodPost, "/users/"+e.id("bob")+"/block", nil, nil, http.StatusNoContent)
		if st, _ := e.problem("ann", http.MethodPost, "/users/"+e.id("ann")+"/block", nil); st != http.StatusBadRequest {
			t.Fatalf("blocking yourself: %d, want 400", st)
		}
		if st, _ := e.problem("ann", http.MethodPost, "/users/"+unknownID+"/block", nil); st != http.StatusNotFound {
			t.Fatalf("blocking nobody: %d, want 404", st)
		}
		var blocks struct {
			Items []chat.BlockedUser `json:"items"`
		}
		e.do("ann", http.MethodGet, "/users/me/blocks", nil, &blocks, http.StatusOK)
		if len(blocks.Items) != 1 || blocks.Items[0].UserID != e.id("bob") || blocks.Items[0].Username != "bob" {
			t.Fatalf("ann's blocks %+v, want bob", blocks.Items)
		}
		e.do("bob", http.MethodGet, "/users/me/blocks", nil, &blocks, http.StatusOK)
		if len(blocks.Items) != 0 {
			t.Fatalf("bob's blocks %+v, want none", blocks.Items)
		}

		// The direct chat: neither may create it again, write in it or call there; the same
		// answer whoever blocked.
		for _, u := range []string{"bob", "ann"} {
			other := map[string]string{"bob": "ann", "ann": "bob"}[u]
			if st, code := e.problem(u, http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id(other)}}); st != http.StatusForbidden || code != "blocked" {
				t.Fatalf("%s creating the direct chat: %d %s, want 403 blocked", u, st, code)
			}
			if st, code := e.problem(u, http.MethodPost, "/chats/"+dm.ID+"/messages", map[string]any{"client_id": "x-" + u, "text": "hi"}); st != http.StatusForbidden || code != "blocked" {
				t.Fatalf("%s sending in the direct chat: %d %s, want 403 blocked", u, st, code)
			}
			if st, code := e.problem(u, http.MethodPost, "/calls", map[string]any{"chat_id": dm.ID, "kind": "audio"}); st != http.StatusForbidden || code != "blocked" {
				t.Fatalf("%s calling in the direct chat: %d %s, want 403 blocked", u, st, code)
			}
		}
		bob := dial(t, e.n, e.users["bob"], "phone")
		if code := bob.refused(chat.CmdSendMessage, map[string]any{"chat_id": dm.ID, "client_id": "ws-1", "text": "hi"}); code != "blocked" {
			t.Fatalf("send_message in the direct chat: %s, want blocked", code)
		}

		// Adding ann to a group: answered like an invitation; ann gets nothing.
		var ng withInvites
		e.do("bob", http.MethodPost, "/chats", map[string]any{"type": "group", "title": "bob's", "member_ids": []string{e.id("ann"), e.id("cid")}}, &ng, http.StatusCreated)
		if !slices.Equal(ng.InvitedUserIDs, []string{e.id("ann")}) || slices.Contains(memberIDs(ng.ChatView), e.id("ann")) {
			t.Fatalf("bob adding ann: invited %v, members %v; want ann shown as invited, not a member", ng.InvitedUserIDs, memberIDs(ng.ChatView))
		}
		var page invitationPage
		e.do("ann", http.MethodGet, "/invitations", nil, &page, http.StatusOK)
		if len(page.Items) != 0 {
			t.Fatalf("ann got invitations from a user she blocked: %+v", page.Items)
		}

		// Presence: bob does not follow ann (a connection made after the block), even by asking.
		ann := dial(t, e.n, e.users["ann"], "phone")
		bob2 := dial(t, e.n, e.users["bob"], "tablet")
		dial(t, e.n, e.users["cid"], "phone")
		var p realtime.PresenceData
		bob2.event("presence", &p) // cid, the barrier: ann came online before
		frames := append(bob2.drain(), bob2.pending...)
		if p.UserID == e.id("ann") || slices.Contains(presenceOf(t, frames), e.id("ann")) {
			t.Fatalf("bob received ann's presence after the block")
		}
		var sub realtime.PresenceSubscribed
		bob2.ack(realtime.CmdPresenceSubscribe, map[string]any{"user_ids": []string{e.id("ann")}}, &sub)
		if len(sub.UserIDs) != 0 {
			t.Fatalf("bob subscribed to ann's presence: %+v", sub)
		}
		var snap realtime.PresenceSnapshot // the blocker still sees the blocked user
		ann.event("presence_snapshot", &snap)
		if !slices.ContainsFunc(snap.Items, func(p realtime.PresenceData) bool { return p.UserID == e.id("bob") && p.Online }) {
			t.Fatalf("ann's snapshot %+v lacks bob online", snap.Items)
		}

		// A group they share still works both ways.
		var m chat.Message
		bob2.ack(chat.CmdSendMessage, map[string]any{"chat_id": g.ID, "client_id": "g-1", "text": "hello all"}, &m)
		if got := ann.message(g.ID); got.ID != m.ID {
			t.Fatalf("ann got %+v, want bob's group message", got)
		}

		// Location: no share between them, not through a group either, and not nearby.
		for _, u := range []string{"ann", "bob"} {
			other := map[string]string{"bob": "ann", "ann": "bob"}[u]
			if st, code := e.problem(u, http.MethodPost, "/location/shares", map[string]any{"user_id": e.id(other), "precision": "exact"}); st != http.StatusForbidden || code != "blocked" {
				t.Fatalf("%s sharing with %s: %d %s, want 403 blocked", u, other, st, code)
			}
			e.do(u, http.MethodPut, "/location/settings", map[string]any{"discoverable": true}, nil, http.StatusOK)
			e.do(u, http.MethodPut, "/location", map[string]any{"lat": 38.7223, "lng": -9.1393}, nil, http.StatusOK)
		}
		e.do("cid", http.MethodPut, "/location/settings", map[string]any{"discoverable": true}, nil, http.StatusOK)
		e.do("cid", http.MethodPut, "/location", map[string]any{"lat": 38.7224, "lng": -9.1394}, nil, http.StatusOK)
		var near struct {
			Items []struct {
				UserID string `json:"user_id"`
			} `json:"items"`
		}
		for _, u := range []string{"ann", "bob"} {
			e.do(u, http.MethodGet, "/location/nearby?radius_m=5000", nil, &near, http.StatusOK)
			var ids []string
			for _, it := range near.Items {
				ids = append(ids, it.UserID)
			}
			if !slices.Equal(ids, []string{e.id("cid")}) {
				t.Fatalf("%s's nearby %v, want cid only", u, ids)
			}
		}
		e.do("ann", http.MethodPost, "/location/shares", map[string]any{"chat_id": g.ID, "precision": "exact"}, nil, http.StatusCreated)
		e.do("ann", http.MethodPut, "/location", map[string]any{"lat": 38.7225, "lng": -9.1395}, nil, http.StatusOK)
		var shared struct {
			Items []struct {
				UserID string `json:"user_id"`
			} `json:"items"`
		}
		e.do("cid", http.MethodGet, "/location/shared", nil, &shared, http.StatusOK)
		if len(shared.Items) != 1 || shared.Items[0].UserID != e.id("ann") {
			t.Fatalf("cid's shared locations %+v, want ann's", shared.Items)
		}
		e.do("bob", http.MethodGet, "/location/shared", nil, &shared, http.StatusOK)
		if len(shared.Items) != 0 {
			t.Fatalf("bob sees %+v: ann's location reached him", shared.Items)
		}
		none(t, "bob", bob2.drain(), "location_share_start", "shared_location_update")

		// Unblocking: the direct chat works again.
		e.do("ann", http.MethodDelete, "/users/"+e.id("bob")+"/block", nil, nil, http.StatusNoContent)
		e.do("ann", http.MethodDelete, "/users/"+e.id("bob")+"/block", nil, nil, http.StatusNoContent)
		e.do("bob", http.MethodPost, "/chats/"+dm.ID+"/messages", map[string]any{"client_id": "after", "text": "hi again"}, nil, http.StatusCreated)
	})
}

// TestE2EBlockingMultiNode: a block made through one node holds on the other at once: no direct
// chat, no message in it (REST or WebSocket), and a connection made there follows no presence of
// the blocker.
func TestE2EBlockingMultiNode(t *testing.T) {
	t.Parallel()
	e, b := newCluster(t, "ann", "bob", "cid")
	a := e.n
	var dm chat.ChatView
	e.do("bob", http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("ann")}}, &dm, http.StatusCreated)
	e.group("cid", "ann", "bob")
	bobB := dial(t, b, e.users["bob"], "b")
	// bob writes through b before the block (anything b could have kept is now warm).
	bobB.ack(chat.CmdSendMessage, map[string]any{"chat_id": dm.ID, "client_id": "before", "text": "hi"}, nil)

	e.do("ann", http.MethodPost, "/users/"+e.id("bob")+"/block", nil, nil, http.StatusNoContent) // through a

	onB := func(method, path string, body any) (int, string) {
		var p struct {
			Code string `json:"code"`
		}
		resp := b.Do(t, method, "/api/v1"+path, e.users["bob"].AccessToken, body, &p)
		return resp.StatusCode, p.Code
	}
	if st, code := onB(http.MethodPost, "/chats", map[string]any{"type": "direct", "member_ids": []string{e.id("ann")}}); st != http.StatusForbidden || code != "blocked" {
		t.Fatalf("direct chat through b: %d %s, want 403 blocked", st, code)
	}
	if st, code := onB(http.MethodPost, "/chats/"+dm.ID+"/messages", map[string]any{"client_id": "after", "text": "hi"}); st != http.StatusForbidden || code != "blocked" {
		t.Fatalf("REST send through b: %d %s, want 403 blocked", st, code)
	}
	if code := bobB.refused(chat.CmdSendMessage, map[string]any{"chat_id": dm.ID, "client_id": "after-ws", "text": "hi"}); code != "blocked" {
		t.Fatalf("send_message through b: %s, want blocked", code)
	}
	if st, code := onB(http.MethodPost, "/calls", map[string]any{"chat_id": dm.ID, "kind": "audio"}); st != http.StatusForbidden || code != "blocked" {
		t.Fatalf("call through b: %d %s, want 403 blocked", st, code)
	}

	// Presence: a new connection of bob's on b; ann and then cid come online through a. bob
	// hears of cid (the barrier) and never of ann.
	bob2 := dial(t, b, e.users["bob"], "b2")
	dial(t, a, e.users["ann"], "a")
	dial(t, a, e.users["cid"], "a")
	before, _ := bob2.until(func(f realtime.Frame) bool {
		if f.Type != "presence" {
			return false
		}
		var p realtime.PresenceData
		decodeInto(t, f, &p)
		return p.UserID == e.id("cid")
	})
	if got := presenceOf(t, append(before, bob2.drain()...)); slices.Contains(got, e.id("ann")) {
		t.Fatalf("bob on b received ann's presence after the block: %v", got)
	}
}

// TestInvitationsBounded: a user holds at most chat.MaxPendingInvitations pending invitations
// (further adds are answered as invited but not stored), and an invitation expires
// chat.InvitationTTL after it was made.
func TestInvitationsBounded(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newPresenceEnv(t, d, 50, 0, "spam", "nob")
		e.do("nob", http.MethodPatch, "/users/me", map[string]any{"group_adds": "nobody"}, nil, http.StatusOK)
		for i := range chat.MaxPendingInvitations + 1 {
			var g withInvites
			e.do("spam", http.MethodPost, "/chats", map[string]any{"type": "group", "title": "spam",
				"member_ids": []string{e.id("nob")}}, &g, http.StatusCreated)
			if !slices.Equal(g.InvitedUserIDs, []string{e.id("nob")}) {
				t.Fatalf("group %d: invited %v, want nob", i, g.InvitedUserIDs)
			}
		}
		var page invitationPage
		e.do("nob", http.MethodGet, "/invitations?limit=200", nil, &page, http.StatusOK)
		if len(page.Items) != chat.MaxPendingInvitations {
			t.Fatalf("nob holds %d invitations, want %d", len(page.Items), chat.MaxPendingInvitations)
		}
		first := page.Items[0]
		if got := first.ExpiresAt.Sub(first.CreatedAt); got != chat.InvitationTTL {
			t.Fatalf("an invitation lasts %s, want %s", got, chat.InvitationTTL)
		}

		// Expired (moved into the past by hand): gone from the list, cannot be accepted.
		if _, err := e.n.Srv.DB.W.Exec(`UPDATE group_invitations SET expires_at = 1 WHERE id = $1`, first.ID); err != nil {
			t.Fatal(err)
		}
		if st, _ := e.problem("nob", http.MethodPost, "/invitations/"+first.ID+"/accept", nil); st != http.StatusNotFound {
			t.Fatalf("accepting an expired invitation: %d, want 404", st)
		}
		e.do("nob", http.MethodGet, "/invitations?limit=200", nil, &page, http.StatusOK)
		if len(page.Items) != chat.MaxPendingInvitations-1 || slices.ContainsFunc(page.Items, func(i chat.Invitation) bool { return i.ID == first.ID }) {
			t.Fatalf("after expiry: %d invitations, want %d without the expired one", len(page.Items), chat.MaxPendingInvitations-1)
		}
		// The room the expired one left takes a new invitation.
		e.do("spam", http.MethodPost, "/chats", map[string]any{"type": "group", "title": "spam", "member_ids": []string{e.id("nob")}}, nil, http.StatusCreated)
		e.do("nob", http.MethodGet, "/invitations?limit=200", nil, &page, http.StatusOK)
		if len(page.Items) != chat.MaxPendingInvitations {
			t.Fatalf("after a new add: %d invitations, want %d", len(page.Items), chat.MaxPendingInvitations)
		}
		// Blocking the sender drops its invitations.
		e.do("nob", http.MethodPost, "/users/"+e.id("spam")+"/block", nil, nil, http.StatusNoContent)
		e.do("nob", http.MethodGet, "/invitations", nil, &page, http.StatusOK)
		if len(page.Items) != 0 {
			t.Fatalf("after blocking spam: %d invitations, want 0", len(page.Items))
		}
	})
}
