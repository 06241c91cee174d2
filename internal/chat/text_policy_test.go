package chat

import (
	"context"
	"testing"

	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// Group titles follow usertext.Name: control, invisible and bidirectional formatting characters
// are refused, on create and on rename.
func TestTitleTextPolicy(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s, _ := newTestService(t, db, nil)
	u := addUsers(t, db, "alice", "bob")
	g := mustGroup(t, s, u[0], u[1])
	ctx := context.Background()
	for _, title := range []string{
		"a\x00b", "bell\a", "\x1b[31mred", "new\nline", "tab\there", "txt\u202Eexe.", "ad\u200Bmin",
		"ad\u200Dmin", "\uFEFFteam", "a\u061Cb", "team\U000E0041", "\u3164", "\u115F", "\uFFA0", "a\u2066b", "\xff",
	} {
		_, _, err := s.Create(ctx, u[0], CreateInput{Type: Group, MemberIDs: []string{u[1]}, Title: title})
		wantCode(t, "create with title "+title, err, "validation_failed")
		_, err = s.Update(ctx, u[0], g.ID, UpdateInput{Title: title})
		wantCode(t, "rename to "+title, err, "validation_failed")
	}
	for _, title := range []string{"Équipe 山田", "family 👨\u200D👩\u200D👧", "عمر"} {
		v, err := s.Update(ctx, u[0], g.ID, UpdateInput{Title: title})
		if err != nil || v.Title != title {
			t.Errorf("rename to %q: %q %v", title, v.Title, err)
		}
	}
}
