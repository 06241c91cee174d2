package call_test

import (
	"context"
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

func (p *fakePusher) CallRinging(_ context.Context, n call.PushNotice) {
	p.add(fmt.Sprintf("ring %v %s %s", n.UserIDs, n.CallerID, n.Kind))
}

func (p *fakePusher) CallStopped(_ context.Context, n call.PushNotice) {
	p.add(fmt.Sprintf("stop %v %s %s", n.UserIDs, n.Status, n.EndReason))
}

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
		h.clock.Add(46 * time.Second)
		if err := h.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"ring [bob cat dan] ann audio",
			"stop [bob] active ",
			"stop [cat] active ",
			"stop [dan] ended completed",
			"ring [bob] ann audio",
			"stop [bob] missed missed",
		}
		if fmt.Sprint(push.log) != fmt.Sprint(want) {
			t.Fatalf("pushes\n got %q\nwant %q", push.log, want)
		}
	})
}
