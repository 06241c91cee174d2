package chat

import (
	"context"
	"testing"

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
