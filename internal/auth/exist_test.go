package auth

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// MissingUsers answers the ids without an account, in the order asked, on both engines.
func TestMissingUsers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s := newTestService(t, db, &testClock{t: time.Now()}, nil)
		a := mustRegister(t, s, "existing1").User.ID
		b := mustRegister(t, s, "existing2").User.ID
		ghost1, ghost2 := "0190aaaa-0000-7000-8000-000000000001", "0190aaaa-0000-7000-8000-000000000002"
		got, err := MissingUsers(ctx, db.R, []string{ghost2, a, ghost1, b})
		if err != nil || !slices.Equal(got, []string{ghost2, ghost1}) {
			t.Fatalf("MissingUsers = %v, %v; want [%s %s]", got, err, ghost2, ghost1)
		}
		if got, err := MissingUsers(ctx, db.R, []string{a, b}); err != nil || len(got) != 0 {
			t.Fatalf("MissingUsers(existing) = %v, %v; want none", got, err)
		}
		if got, err := MissingUsers(ctx, db.R, nil); err != nil || len(got) != 0 {
			t.Fatalf("MissingUsers(nil) = %v, %v; want none", got, err)
		}
	})
}

// Cards answers the names and avatar of the accounts asked for, skips ids without an account,
// and splits long id lists into several IN lists, on both engines.
func TestCards(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		s := newTestService(t, db, &testClock{t: time.Now()}, nil)
		a := mustRegister(t, s, "carda").User.ID
		b := mustRegister(t, s, "cardb").User.ID
		if _, err := db.W.ExecContext(ctx, `UPDATE users SET avatar_url = '/media/avatars/b.webp', display_name = 'Bee' WHERE id = $1`, b); err != nil {
			t.Fatal(err)
		}
		// 2.5 chunks of ids, the accounts in the first and the last chunk.
		ids := []string{a}
		for i := range 2*maxLookupIDs + maxLookupIDs/2 {
			ids = append(ids, fmt.Sprintf("0190aaaa-0000-7000-8000-%012d", i))
		}
		ids = append(ids, b)
		got, err := Cards(ctx, db.R, ids)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]Card{
			a: {Username: "carda", DisplayName: "carda"},
			b: {Username: "cardb", DisplayName: "Bee", AvatarURL: "/media/avatars/b.webp"},
		}
		if !maps.Equal(got, want) {
			t.Fatalf("Cards = %v; want %v", got, want)
		}
		if got, err := Cards(ctx, db.R, nil); err != nil || len(got) != 0 {
			t.Fatalf("Cards(nil) = %v, %v; want none", got, err)
		}
	})
}
