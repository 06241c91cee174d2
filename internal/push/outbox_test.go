package push

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/push/provider"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func (h *harness) stored(chatID, typ, title string, members []string, msgs ...StoredMessage) {
	h.t.Helper()
	h.tx(func(tx *sql.Tx) error { return h.svc.MessagesStored(context.Background(), tx, msgs) })
}

func sm(chatID, typ, title string, members []string, m ...any) StoredMessage {
	return StoredMessage{ID: newID(), ChatID: chatID, SenderID: m[0].(string), Seq: int64(m[1].(int)), Kind: "text", Text: m[2].(string),
		ChatType: typ, ChatTitle: title, MemberIDs: members}
}

func TestMessageTriggerCollapsesABurst(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		alice, bob, carol := h.user("Alice"), h.user("Bob"), h.user("Carol")
		h.device(bob, "android", "bob-phone")
		h.device(bob, "ios", apnsToken)
		members := []string{alice, bob, carol} // carol has no device: no row for her
		c := h.chat("group", "Friends", members...)
		// Three messages in two transactions: one notification for bob, count 3.
		h.stored(c, "group", "Friends", members, sm(c, "group", "Friends", members, alice, 1, "hi"), sm(c, "group", "Friends", members, alice, 2, "there"))
		h.stored(c, "group", "Friends", members, sm(c, "group", "Friends", members, alice, 3, "{{sender}} said <b>hi</b>"))
		if got := h.statuses(); got["note/queued"] != 1 || len(got) != 1 {
			t.Fatalf("outbox: %v, want one queued notification", got)
		}
		h.drain() // not due yet: the message delay
		if n := len(h.sender.all()); n != 0 {
			t.Fatalf("sent %d before the delay", n)
		}
		h.clock.Advance(3 * time.Second)
		h.drain()
		got := h.sender.all()
		if len(got) != 2 {
			t.Fatalf("sent %d, want 2 (one per device of bob)", len(got))
		}
		for _, s := range got {
			if s.Message.Title != "Friends" || s.Message.Body != "3 new messages" || s.Message.CollapseKey != "chat:"+c ||
				s.Message.Data["chat_id"] != c || s.Message.Data["count"] != "3" || s.Message.Data["seq"] != "3" {
				t.Errorf("message: %+v", s.Message)
			}
		}
		if st := h.statuses(); st["note/sent"] != 1 || st["delivery/sent"] != 2 {
			t.Fatalf("outbox: %v", st)
		}
	})
}

func TestMessageTriggerSkips(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		alice := h.user("Alice")
		users := map[string]string{}
		for _, n := range []string{"online", "acked", "muted", "mentions", "mentioned", "dnd", "hidden", "plain"} {
			users[n] = h.user(n + "user")
			h.device(users[n], "android", "tok-"+n)
		}
		members := []string{alice}
		for _, u := range users {
			members = append(members, u)
		}
		c := h.chat("group", "Team", members...)
		h.online.set(users["online"], true)
		if _, err := h.svc.SetChatPref(ctx, users["muted"], c, ChatNotificationsInput{Mode: ModeAll, MutedUntil: ptr(h.clock.Now().Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"mentions", "mentioned"} {
			if _, err := h.svc.SetChatPref(ctx, users[n], c, ChatNotificationsInput{Mode: ModeMentions}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.svc.SetSettings(ctx, users["dnd"], NotificationSettingsInput{DND: &DND{Start: "11:00", End: "13:00", Timezone: "UTC"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.SetSettings(ctx, users["hidden"], NotificationSettingsInput{Previews: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		h.stored(c, "group", "Team", members, sm(c, "group", "Team", members, alice, 1, "secret plan, ask @mentioneduser"))
		// acked's connection received it and said so before the delay ran out.
		h.exec(`UPDATE chat_members SET delivered_seq = 1 WHERE chat_id = $1 AND user_id = $2`, c, users["acked"])
		h.clock.Advance(3 * time.Second)
		h.drain()
		byToken := map[string]provider.Message{}
		for _, s := range h.sender.all() {
			byToken[s.Target.Token] = s.Message
		}
		if len(byToken) != 3 {
			t.Fatalf("sent to %v, want mentioned, hidden and plain", byToken)
		}
		if m := byToken["tok-mentioned"]; m.Body != "Alice mentioned you: secret plan, ask @mentioneduser" {
			t.Errorf("mention: %+v", m)
		}
		if m := byToken["tok-hidden"]; m.Body != "New message from Alice" || m.Data["chat_id"] != c {
			t.Errorf("hidden preview: %+v", m)
		}
		if m := byToken["tok-plain"]; m.Title != "Team" || m.Body != "Alice: secret plan, ask @mentioneduser" {
			t.Errorf("plain: %+v", m)
		}
		st := h.statuses()
		for _, k := range []string{"note/skipped/online", "note/skipped/acknowledged", "note/skipped/muted", "note/skipped/mentions_only", "note/skipped/dnd"} {
			if st[k] != 1 {
				t.Errorf("%s = %d (all: %v)", k, st[k], st)
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db, func(o *Options) { o.MaxAttempts = 3; o.Backoff = 10 * time.Second })
		ctx := context.Background()
		u := h.user("Dana")
		h.device(u, "android", "dead-token")
		h.device(u, "android", "flaky")
		h.device(u, "ios", apnsToken)
		if _, _, err := h.svc.RegisterDevice(ctx, u, "s-web", DeviceInput{Platform: "web", Subscription: webSub()}); err != nil {
			t.Fatal(err)
		}
		calls := map[string]int{}
		var mu sync.Mutex
		h.sender.fail = func(t provider.Target) error {
			mu.Lock()
			defer mu.Unlock()
			calls[t.Token]++
			switch t.Token {
			case "dead-token":
				return fmt.Errorf("fcm: %w", provider.ErrInvalidToken)
			case "flaky":
				return &provider.RetryableError{Status: 503, RetryAfter: 30 * time.Second}
			case apnsToken:
				if calls[t.Token] == 1 {
					return &provider.RetryableError{Status: 429}
				}
			default:
				return errors.New("400 bad request")
			}
			return nil
		}
		if _, err := h.svc.Send(ctx, "admin", AdminSendInput{UserIDs: []string{u}, Title: "T", Body: "B"}); err != nil {
			t.Fatal(err)
		}
		h.drain()
		// apns: first try 429 -> retry after backoff (10 s * jitter 0.75 = 7.5 s); flaky honours Retry-After 30 s.
		h.clock.Advance(8 * time.Second)
		h.drain()
		if calls[apnsToken] != 2 || calls["flaky"] != 1 {
			t.Fatalf("calls after 8 s: %v", calls)
		}
		for i := 0; i < 5; i++ {
			h.clock.Advance(time.Hour)
			h.drain()
		}
		if calls["flaky"] != 3 || calls["dead-token"] != 1 {
			t.Fatalf("calls: %v", calls)
		}
		st := h.statuses()
		want := map[string]int{"note/sent": 1, "delivery/sent": 1, "delivery/failed/invalid_token": 1, "delivery/dead/retries_exhausted": 1,
			"delivery/failed/permanent": 1}
		for k, v := range want {
			if st[k] != v {
				t.Errorf("%s = %d, want %d (all %v)", k, st[k], v, st)
			}
		}
		ds, _ := h.svc.Devices(ctx, u)
		for _, d := range ds {
			if d.Token == "dead-token" {
				t.Error("the invalid token's device was not removed")
			}
		}
		stats, err := h.svc.Stats(ctx, h.clock.Now().Add(-24*time.Hour), h.clock.Now().Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if stats.Deliveries.InvalidTokensRemoved != 1 || stats.Deliveries.Dead != 1 || stats.ByProvider["apns"].Sent != 1 ||
			stats.ByType[TypeAdmin].Failed != 2 || stats.Notifications.Sent != 1 {
			t.Errorf("stats: %+v", stats)
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	s := New(nil, Options{Accounts: accounts{}, Backoff: time.Second, MaxBackoff: 10 * time.Second, Rand: func() float64 { return 0.999 }})
	for _, tc := range []struct {
		attempt int
		after   time.Duration
		lo, hi  time.Duration
	}{
		{1, 0, 500 * time.Millisecond, time.Second},
		{2, 0, time.Second, 2 * time.Second},
		{4, 0, 4 * time.Second, 8 * time.Second},
		{10, 0, 5 * time.Second, 10 * time.Second},
		{1, time.Minute, time.Minute, time.Minute},
	} {
		if d := s.backoff(tc.attempt, tc.after); d < tc.lo || d > tc.hi {
			t.Errorf("backoff(%d, %s) = %s, want in [%s, %s]", tc.attempt, tc.after, d, tc.lo, tc.hi)
		}
	}
}

// TestTwoWorkersNoDuplicates runs two workers (two nodes) on one PostgreSQL database at once:
// every delivery is sent exactly once.
func TestTwoWorkersNoDuplicates(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	h := newHarness(t, db, func(o *Options) { o.Batch = 7 })
	ctx := context.Background()
	const users = 60
	var ids []string
	for i := 0; i < users; i++ {
		u := h.user(fmt.Sprintf("user%02d", i))
		ids = append(ids, u)
		h.device(u, "android", fmt.Sprintf("a-%d", i))
		h.device(u, "ios", fmt.Sprintf("%064x", i))
	}
	if _, err := h.svc.Send(ctx, "admin", AdminSendInput{UserIDs: ids, Title: "hello", Body: "all"}); err != nil {
		t.Fatal(err)
	}
	other := h.service(func(o *Options) { o.Batch = 7 })
	var wg sync.WaitGroup
	for _, s := range []*Service{h.svc, other} {
		wg.Add(1)
		go func(s *Service) {
			defer wg.Done()
			for idle := 0; idle < 3; {
				n, err := s.RunOnce(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					idle++
				} else {
					idle = 0
				}
			}
		}(s)
	}
	wg.Wait()
	h.drain(h.svc, other)
	seen := map[string]int{}
	for _, s := range h.sender.all() {
		seen[s.Target.Token]++
	}
	if len(seen) != 2*users {
		t.Fatalf("sent to %d devices, want %d", len(seen), 2*users)
	}
	for tok, n := range seen {
		if n != 1 {
			t.Errorf("%s got %d pushes", tok, n)
		}
	}
}

// TestRestartResendsAfterLease: a worker claims rows and dies before sending; once the lease has
// run out another worker sends them. Nothing is lost.
func TestRestartResendsAfterLease(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db, func(o *Options) { o.Lease = time.Minute })
		ctx := context.Background()
		u := h.user("Eve")
		h.device(u, "android", "eve-phone")
		if _, err := h.svc.Send(ctx, "admin", AdminSendInput{UserIDs: []string{u}, Title: "T", Body: "B"}); err != nil {
			t.Fatal(err)
		}
		h.drain() // the notification becomes a delivery and is sent
		if _, err := h.svc.Send(ctx, "admin", AdminSendInput{UserIDs: []string{u}, Title: "T2", Body: "B2"}); err != nil {
			t.Fatal(err)
		}
		h.sender.mu.Lock()
		h.sender.sent = nil
		h.sender.mu.Unlock()
		dead := h.service()
		rows, err := dead.claim(ctx, 10) // the doomed node takes the notification and dies
		if err != nil || len(rows) != 1 {
			t.Fatalf("claim: %v %v", rows, err)
		}
		next := h.service()
		h.drain(next)
		if n := len(h.sender.all()); n != 0 {
			t.Fatalf("sent %d while the lease holds", n)
		}
		h.clock.Advance(61 * time.Second)
		h.drain(next)
		got := h.sender.all()
		if len(got) != 1 || got[0].Message.Title != "T2" {
			t.Fatalf("after the lease: %+v", got)
		}
		// The dead worker's late answer changes nothing.
		if ok, err := func() (bool, error) {
			var ok bool
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				var err error
				ok, err = dead.applyFinish(ctx, tx, finish{id: rows[0].ID, status: "failed"}, 0)
				return err
			})
			return ok, err
		}(); ok || err != nil {
			t.Fatalf("stale finish applied: %v %v", ok, err)
		}
	})
}

func TestCalls(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		caller, a, b := h.user("Caller"), h.user("Ann"), h.user("Ben")
		if _, _, err := h.svc.RegisterDevice(ctx, a, "sa", DeviceInput{Platform: "ios", Token: apnsToken, VoIPToken: apnsToken[:40]}); err != nil {
			t.Fatal(err)
		}
		h.device(b, "android", "ben-phone")
		h.online.set(a, true) // calls ring even online
		c := h.chat("group", "G", caller, a, b)
		call := Call{ID: "call-1", ChatID: c, Kind: "video", CallerID: caller}
		h.tx(func(tx *sql.Tx) error { return h.svc.CallRinging(ctx, tx, call, []string{caller, a, b}) })
		h.drain()
		got := h.sender.all()
		if len(got) != 2 {
			t.Fatalf("ring: %+v", got)
		}
		for _, s := range got {
			m := s.Message
			if m.Priority != provider.PriorityHigh || m.Data["call_id"] != "call-1" || m.Title != "Caller" || m.Body != "Incoming video call" {
				t.Errorf("ring: %+v", m)
			}
			if (s.Target.Platform == "ios") != (m.PushType == "voip") {
				t.Errorf("push type %q on %s", m.PushType, s.Target.Platform)
			}
		}
		// Answered by Ann: Ben's devices get the cancel (data-only on Android).
		h.tx(func(tx *sql.Tx) error { return h.svc.CallEnded(ctx, tx, call, []string{b}, "answered_elsewhere") })
		h.drain()
		got = h.sender.all()[2:]
		if len(got) != 1 || got[0].Target.Token != "ben-phone" || got[0].Message.PushType != "background" ||
			got[0].Message.Data["reason"] != "answered_elsewhere" || got[0].Message.CollapseKey != "call:call-1" {
			t.Fatalf("cancel: %+v", got)
		}
		// A call that ends before its ring went out: no ring, no cancel.
		call2 := Call{ID: "call-2", ChatID: c, Kind: "audio", CallerID: caller}
		h.tx(func(tx *sql.Tx) error {
			if err := h.svc.CallRinging(ctx, tx, call2, []string{a, b}); err != nil {
				return err
			}
			return h.svc.CallEnded(ctx, tx, call2, nil, "ended")
		})
		h.drain()
		if n := len(h.sender.all()); n != 3 {
			t.Fatalf("sent %d, want 3", n)
		}
	})
}

func TestGeofenceEvent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		kid, mum := h.user("Kid"), h.user("Mum")
		h.device(mum, "android", "mum-phone")
		h.tx(func(tx *sql.Tx) error {
			return h.svc.GeofenceEvent(ctx, tx, Geofence{ID: "g1", Name: "School", SubjectID: kid, Entered: true}, []string{mum, kid})
		})
		h.drain()
		got := h.sender.all()
		if len(got) != 1 || got[0].Message.Title != "School" || got[0].Message.Body != "Kid arrived" || got[0].Message.Data["event"] != "enter" {
			t.Fatalf("geofence: %+v", got)
		}
	})
}

func TestSweepKeepsUnfinishedRows(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db, func(o *Options) { o.Retention = 24 * time.Hour })
		ctx := context.Background()
		u := h.user("Old")
		h.device(u, "android", "old-phone")
		if _, err := h.svc.Send(ctx, "admin", AdminSendInput{UserIDs: []string{u}, Title: "T"}); err != nil {
			t.Fatal(err)
		}
		h.drain()
		c := h.chat("direct", "", u, h.user("Other"))
		h.tx(func(tx *sql.Tx) error {
			return h.svc.Enqueue(ctx, tx, []Notification{{UserID: u, Type: TypeMessage, ChatID: c, Delay: 48 * time.Hour}})
		})
		h.clock.Advance(25 * time.Hour)
		if err := h.svc.sweep(ctx, 1); err != nil { // batches of one row: the notification and its delivery go in turns
			t.Fatal(err)
		}
		if st := h.statuses(); len(st) != 1 || st["note/queued"] != 1 {
			t.Fatalf("after the sweep: %v", st)
		}
	})
}
