package chat

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func TestMembershipAndPostSystem(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newTestService(t, db, nil)
		ids := addUsers(t, db, "owner", "ann", "eve")
		g := mustGroup(t, s, ids[0], ids[1])
		group, manager, members, err := s.Membership(ctx, g.ID, ids[0])
		if err != nil || !group || !manager || len(members) != 2 {
			t.Fatalf("owner: group %v manager %v members %v err %v", group, manager, members, err)
		}
		if _, manager, _, _ := s.Membership(ctx, g.ID, ids[1]); manager {
			t.Error("a member manages")
		}
		if _, _, _, err := s.Membership(ctx, g.ID, ids[2]); apperr.KindOf(err) != apperr.KindNotFound {
			t.Errorf("stranger: %v", err)
		}
		for range 2 { // the same client id twice: one message
			if err := s.PostSystem(ctx, g.ID, ids[0], "call-missed:x", "Missed audio call"); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.History(ctx, ids[1], g.ID, HistoryQuery{After: -1, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 || page.Items[0].Kind != KindSystem || page.Items[0].Text != "Missed audio call" {
			t.Fatalf("history %+v", page.Items)
		}
	})
}

// TestMembersHook: the hook hears every change of members once, with the members after it, who
// joined and who left; a change of title is not a change of members.
func TestMembersHook(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newTestService(t, db, nil)
		ids := addUsers(t, db, "owner", "ann", "bob", "eve")
		type call struct{ chat, members, added, removed []string }
		var got []call
		s.OnMembersChanged(func(_ context.Context, chatID string, members, added, removed []string) {
			got = append(got, call{[]string{chatID}, sorted(members), sorted(added), sorted(removed)})
		})
		g := mustGroup(t, s, ids[0], ids[1])
		got = nil // the creation: everyone joined
		if _, err := s.AddMembers(ctx, ids[0], g.ID, AddMembersInput{UserIDs: []string{ids[2], ids[3]}}); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveMember(ctx, ids[0], g.ID, ids[3]); err != nil {
			t.Fatal(err)
		}
		if err := s.Leave(ctx, ids[1], g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, ids[0], g.ID, UpdateInput{Title: "renamed"}); err != nil {
			t.Fatal(err)
		}
		want := []call{
			{[]string{g.ID}, sorted([]string{ids[0], ids[1], ids[2], ids[3]}), sorted([]string{ids[2], ids[3]}), nil},
			{[]string{g.ID}, sorted([]string{ids[0], ids[1], ids[2]}), nil, []string{ids[3]}},
			{[]string{g.ID}, sorted([]string{ids[0], ids[2]}), nil, []string{ids[1]}},
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(call{})); diff != "" {
			t.Fatalf("hook calls (-want +got):\n%s", diff)
		}
	})
}

func sorted(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
