package auth

import (
	"context"
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
