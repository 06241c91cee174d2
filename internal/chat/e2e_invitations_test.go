package chat_test

import (
	"net/http"
	"testing"

	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/store"
)

// TestE2EInvitationRechecked: accepting an invitation checks again that the group exists, that
// the inviter is still a member who may add (owner or admin) and that no block stands between
// inviter and invitee; otherwise it is 404 and the invitee does not join.
func TestE2EInvitationRechecked(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d, "own", "adm", "nob")
		e.do("nob", http.MethodPatch, "/users/me", map[string]any{"group_adds": "nobody"}, nil, http.StatusOK)
		invite := func(inviter, chatID string) string {
			t.Helper()
			e.do(inviter, http.MethodPost, "/chats/"+chatID+"/members", map[string]any{"user_ids": []string{e.id("nob")}}, nil, http.StatusOK)
			var page invitationPage
			e.do("nob", http.MethodGet, "/invitations", nil, &page, http.StatusOK)
			for _, inv := range page.Items {
				if inv.ChatID == chatID {
					return inv.ID
				}
			}
			t.Fatalf("no invitation to %s", chatID)
			return ""
		}
		withAdmin := func() chat.ChatView {
			g := e.group("own", "adm")
			e.do("own", http.MethodPatch, "/chats/"+g.ID+"/members/"+e.id("adm"), map[string]any{"role": "admin"}, nil, http.StatusOK)
			return g
		}
		for _, tc := range []struct {
			name   string
			change func() string // makes the invitation and changes the world; returns its id
			want   int
		}{
			{"unchanged", func() string { return invite("adm", withAdmin().ID) }, http.StatusOK},
			{"inviter demoted", func() string {
				g := withAdmin()
				id := invite("adm", g.ID)
				e.do("own", http.MethodPatch, "/chats/"+g.ID+"/members/"+e.id("adm"), map[string]any{"role": "member"}, nil, http.StatusOK)
				return id
			}, http.StatusNotFound},
			{"inviter removed", func() string {
				g := withAdmin()
				id := invite("adm", g.ID)
				e.do("own", http.MethodDelete, "/chats/"+g.ID+"/members/"+e.id("adm"), nil, nil, http.StatusNoContent)
				return id
			}, http.StatusNotFound},
			{"inviter blocks the invitee", func() string {
				g := e.group("own", "adm")
				id := invite("own", g.ID)
				e.do("own", http.MethodPost, "/users/"+e.id("nob")+"/block", nil, nil, http.StatusNoContent)
				return id
			}, http.StatusNotFound},
			{"group gone", func() string {
				e.do("own", http.MethodDelete, "/users/"+e.id("nob")+"/block", nil, nil, http.StatusNoContent)
				var g chat.ChatView
				e.do("adm", http.MethodPost, "/chats", map[string]any{"type": "group", "title": "alone", "member_ids": []string{e.id("nob")}}, &g, http.StatusCreated)
				var page invitationPage
				e.do("nob", http.MethodGet, "/invitations", nil, &page, http.StatusOK)
				id := ""
				for _, inv := range page.Items {
					if inv.ChatID == g.ID {
						id = inv.ID
					}
				}
				if id == "" {
					t.Fatalf("no invitation to the group")
				}
				e.do("adm", http.MethodDelete, "/chats/"+g.ID, nil, nil, http.StatusNoContent) // the last member leaves
				return id
			}, http.StatusNotFound},
		} {
			id := tc.change()
			var p struct {
				Code string `json:"code"`
			}
			resp := e.n.Do(t, http.MethodPost, "/api/v1/invitations/"+id+"/accept", e.users["nob"].AccessToken, nil, &p)
			if resp.StatusCode != tc.want || (tc.want == http.StatusNotFound && p.Code != "not_found") {
				t.Fatalf("%s: accept: %d %s, want %d", tc.name, resp.StatusCode, p.Code, tc.want)
			}
		}
	})
}
