package chat

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// A big group lists MaxListedMembers members in GET /chats, owner and admins first, with
// member_count and members_truncated; GET /chats/{id} lists all of them; Members pages through
// the same list; every listed member carries a profile.
func TestListTruncatesBigGroups(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s, _ := newTestService(t, db, nil)
		names := make([]string, MaxListedMembers+5)
		for i := range names {
			names[i] = fmt.Sprintf("m%03d", i)
		}
		users := addUsers(t, db, names...)
		owner, others := users[0], users[1:]
		g := mustGroup(t, s, owner, others...)
		// The member who joined last becomes an admin: listed second, before older members.
		admin := others[len(others)-1]
		if _, err := s.SetRole(ctx, owner, g.ID, admin, RoleInput{Role: Admin}); err != nil {
			t.Fatal(err)
		}
		small := mustGroup(t, s, owner, others[0])

		list, _, err := s.List(ctx, others[0], 50, "")
		if err != nil || len(list) != 2 {
			t.Fatalf("List = %d chats, %v", len(list), err)
		}
		for _, v := range list {
			switch v.ID {
			case g.ID:
				if len(v.Members) != MaxListedMembers || !v.MembersTruncated || v.MemberCount != len(users) {
					t.Fatalf("big group: %d members, truncated %v, count %d", len(v.Members), v.MembersTruncated, v.MemberCount)
				}
				if v.Members[0].UserID != owner || v.Members[1].UserID != admin || v.Members[2].UserID != others[0] {
					t.Fatalf("big group lists %s, %s, %s first; want the owner, the admin, the oldest member",
						v.Members[0].UserID, v.Members[1].UserID, v.Members[2].UserID)
				}
			case small.ID:
				if len(v.Members) != 2 || v.MembersTruncated || v.MemberCount != 2 {
					t.Fatalf("small group: %+v", v.Chat)
				}
			}
			for _, m := range v.Members {
				if m.Username == "" || m.DisplayName == "" || m.AvatarURL != nil {
					t.Fatalf("member without its profile: %+v", m)
				}
			}
		}

		full, err := s.Get(ctx, others[0], g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(full.Members) != len(users) || full.MembersTruncated || full.MemberCount != len(users) {
			t.Fatalf("Get: %d members, truncated %v", len(full.Members), full.MembersTruncated)
		}
		var paged []MemberInfo
		cursor := ""
		for pages := 0; ; pages++ {
			page, next, err := s.Members(ctx, admin, g.ID, 40, cursor)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page...)
			if next == "" {
				break
			}
			if pages > 3 {
				t.Fatal("Members does not end")
			}
			cursor = next
		}
		if !slices.Equal(paged, full.Members) {
			t.Fatalf("paged members differ from Get's: %d vs %d", len(paged), len(full.Members))
		}
		if _, _, err := s.Members(ctx, newID(), g.ID, 10, ""); !isNotFound(err) {
			t.Fatalf("a stranger's Members: %v, want not found", err)
		}
	})
}

// A page of the member list goes on after the member it ended with, also once that member has
// left, and does not skip anyone who joined in the same millisecond.
func TestMemberIndexAfter(t *testing.T) {
	t.Parallel()
	at := func(ms int64) MemberInfo { return MemberInfo{JoinedAt: store.Time(ms)} }
	infos := []MemberInfo{at(1), at(2), at(2), at(3)}
	infos[0].UserID, infos[1].UserID, infos[2].UserID, infos[3].UserID = "a", "b", "d", "c"
	for _, tc := range []struct {
		name string
		c    memberCursor
		want int
	}{
		{"after the first", memberCursor{1, "a"}, 1},
		{"after a tie", memberCursor{2, "b"}, 2},
		{"after the last", memberCursor{3, "c"}, 4},
		{"gone, tie before", memberCursor{2, "c"}, 2},
		{"gone, earlier", memberCursor{0, "z"}, 0},
		{"gone, later", memberCursor{9, "a"}, 4},
	} {
		if got := memberIndexAfter(infos, tc.c); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestPeerID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ key, self, want string }{
		{"a:b", "a", "b"},
		{"a:b", "b", "a"},
		{"", "a", ""},
	} {
		if got := peerID(tc.key, tc.self); got != tc.want {
			t.Errorf("peerID(%q, %q) = %q, want %q", tc.key, tc.self, got, tc.want)
		}
	}
}
