package call_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/call"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

type fakePusher struct {
	mu  sync.Mutex
	log []string
}

// CallRinging and CallStopped write a row in the transaction they are given, so the test sees
// that they run inside it (the row count equals the entries).
func (p *fakePusher) CallRinging(ctx context.Context, tx *sql.Tx, n call.PushNotice) error {
	p.add(fmt.Sprintf("ring %v %s %s", n.UserIDs, n.CallerID, n.Kind))
	_, err := tx.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, 'x')`, fmt.Sprint("push-", len(p.log)))
	return err
}

func (p *fakePusher) CallStopped(ctx context.Context, tx *sql.Tx, n call.PushNotice) error {
	p.add(fmt.Sprintf("stop %v %s", n.UserIDs, n.Reason))
	_, err := tx.ExecContext(ctx, `INSERT INTO server_settings (name, value) VALUES ($1, 'x')`, fmt.Sprint("push-", len(p.log)))
	return err
}

func (p *fakePusher) Wake(context.Context) { p.add("wake") }

func (p *fakePusher) add(s string) {
	p.mu.Lock()
	p.log = append(p.log, s)
	p.mu.Unlock()
}

// TestPusher: the push feature learns whom a call rings for and for whom it stopped ringing.
func TestPusher(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		push := &fakePusher{}
		h.svc = call.New(db, h.chats, h.pub, call.Options{Now: h.clock.Now, Pusher: push, MaxParticipants: 16})
		ctx := context.Background()
		h.chat("g1", true, "ann", "bob", "cat", "dan")
		g := h.start("ann", "g1")
		if _, err := h.svc.Answer(ctx, "bob", "s", g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Decline(ctx, "cat", g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.End(ctx, "ann", g.ID); err != nil {
			t.Fatal(err)
		}
		h.chat("d1", false, "ann", "bob")
		h.start("ann", "d1")
		h.clock.Advance(46 * time.Second)
		if err := h.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"ring [bob cat dan] ann audio", "wake",
			"stop [bob] answered", "wake",
			"stop [cat] declined", "wake",
			"stop [dan] completed", "wake",
			"ring [bob] ann audio", "wake",
			"stop [bob] missed", "wake",
		}
		if fmt.Sprint(push.log) != fmt.Sprint(want) {
			t.Fatalf("pushes\n got %q\nwant %q", push.log, want)
		}
		var rows int
		if err := db.R.QueryRow(`SELECT COUNT(*) FROM server_settings WHERE name LIKE 'push-%'`).Scan(&rows); err != nil || rows != 6 {
			t.Fatalf("%d rows written in the transactions (%v), want 6", rows, err)
		}
	})
}
