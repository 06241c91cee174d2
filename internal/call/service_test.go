package call_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/call"
	"github.com/nerutalk/nerutalk/internal/clocktest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// fakeChats is the chat feature as calls see it.
type fakeChats struct {
	mu       sync.Mutex
	chats    map[string]fakeChat
	messages []string // chatID|sender|clientID|text, each client id once
	seen     map[string]bool
}

type fakeChat struct {
	group    bool
	members  []string
	managers map[string]bool
}

func (f *fakeChats) Membership(_ context.Context, chatID, userID string) (bool, bool, []string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.chats[chatID]
	if !ok {
		return false, false, nil, apperr.NotFound("chat")
	}
	for _, m := range c.members {
		if m == userID {
			return c.group, c.managers[userID], append([]string(nil), c.members...), nil
		}
	}
	return false, false, nil, apperr.NotFound("chat")
}

func (f *fakeChats) MembersAmong(_ context.Context, chatID string, userIDs []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, u := range userIDs {
		if slices.Contains(f.chats[chatID].members, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (f *fakeChats) PostSystem(_ context.Context, chatID, senderID, clientID, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.seen[clientID] {
		f.seen[clientID] = true
		f.messages = append(f.messages, chatID+"|"+senderID+"|"+clientID+"|"+text)
	}
	return nil
}

type published struct {
	users []string
	typ   string
	ev    call.Event
}

type fakePub struct {
	mu  sync.Mutex
	evs []published
}

func (p *fakePub) PublishUsers(_ context.Context, users []string, typ string, data any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev, _ := data.(call.Event) // signaling frames carry a call.Signal
	p.evs = append(p.evs, published{users, typ, ev})
}

func (p *fakePub) PublishSession(_ context.Context, user, session, typ string, data any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, published{[]string{user + "/" + session}, typ, call.Event{}})
}

func (p *fakePub) types() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.evs {
		out = append(out, e.typ)
	}
	return out
}

func (p *fakePub) count(typ string) int {
	n := 0
	for _, t := range p.types() {
		if t == typ {
			n++
		}
	}
	return n
}

type fakePresence struct {
	mu     sync.Mutex
	online map[string]bool
	hooks  []func(context.Context, string, bool)
	timers []func() // AfterFunc's, run by the test
}

func (p *fakePresence) OnPresence(fn func(context.Context, string, bool)) {
	p.mu.Lock()
	p.hooks = append(p.hooks, fn)
	p.mu.Unlock()
}

// offline takes the user offline and announces it, as the hub does after the presence grace.
func (p *fakePresence) offline(u string) {
	p.set(u, false)
	p.mu.Lock()
	hooks := p.hooks
	p.mu.Unlock()
	for _, fn := range hooks {
		fn(context.Background(), u, false)
	}
}

func (p *fakePresence) afterFunc(_ time.Duration, f func()) {
	p.mu.Lock()
	p.timers = append(p.timers, f)
	p.mu.Unlock()
}

// fire runs the timers started so far.
func (p *fakePresence) fire() {
	p.mu.Lock()
	ts := p.timers
	p.timers = nil
	p.mu.Unlock()
	for _, f := range ts {
		f()
	}
}

func (p *fakePresence) Online(u string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.online[u]
}

func (p *fakePresence) set(u string, on bool) {
	p.mu.Lock()
	p.online[u] = on
	p.mu.Unlock()
}

type harness struct {
	t     *testing.T
	ids   map[string]string // chat name → its id (a UUID, as the server's ids are)
	db    *store.DB
	svc   *call.Service
	chats *fakeChats
	pub   *fakePub
	clock *clocktest.Clock
	pres  *fakePresence
}

func newHarness(t *testing.T, db *store.DB) *harness {
	h := &harness{t: t, db: db, ids: map[string]string{}, chats: &fakeChats{chats: map[string]fakeChat{}, seen: map[string]bool{}}, pub: &fakePub{},
		clock: clocktest.New(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)), pres: &fakePresence{online: map[string]bool{}}}
	h.svc = h.newService()
	return h
}

func (h *harness) newService() *call.Service {
	svc := call.New(h.db, h.chats, h.pub, call.Options{RingTimeout: 45 * time.Second, MaxParticipants: 3,
		DisconnectGrace: 10 * time.Second, Now: h.clock.Now, AfterFunc: h.pres.afterFunc, Presence: h.pres})
	return svc
}

// chat creates a chat row (calls reference it) and its members in the fake; name stands for its id.
func (h *harness) chat(name string, group bool, members ...string) {
	h.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	h.ids[name] = id
	typ := "direct"
	if group {
		typ = "group"
	}
	if _, err := h.db.W.Exec(`INSERT INTO chats (id, type, created_by, created_at, updated_at, last_message_at) VALUES ($1, $2, $3, 0, 0, 0)`,
		id, typ, members[0]); err != nil {
		h.t.Fatal(err)
	}
	h.chats.mu.Lock()
	h.chats.chats[id] = fakeChat{group: group, members: members, managers: map[string]bool{members[0]: true}}
	h.chats.mu.Unlock()
}

// cid is the id of the chat named name.
func (h *harness) cid(name string) string { return h.ids[name] }

func (h *harness) start(user, chatName string) call.WithCredentials {
	h.t.Helper()
	chatID := h.cid(chatName)
	c, err := h.svc.Initiate(context.Background(), user, "s-"+user, call.StartInput{ChatID: chatID, Kind: "audio"})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func code(err error) string {
	if e, ok := apperr.As(err); ok {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func (h *harness) get(id string) call.Call {
	h.t.Helper()
	c, err := h.svc.Get(context.Background(), "ann", id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func TestDirectLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		h.chat("d1", false, "ann", "bob")
		c := h.start("ann", "d1")
		if c.Status != "ringing" || c.Credentials.Provider != "p2p" || c.Channel != "nerutalk-"+c.ID || len(c.Participants) != 2 {
			t.Fatalf("started %+v", c)
		}
		// One live call per chat: 409 with its id.
		_, err := h.svc.Initiate(ctx, "bob", "s", call.StartInput{ChatID: h.cid("d1"), Kind: "video"})
		if e, ok := apperr.As(err); !ok || e.Code != "call_in_progress" || e.ExistingID != c.ID {
			t.Fatalf("second call: %v", err)
		}
		// Strangers see nothing.
		if _, err := h.svc.Get(ctx, "eve", c.ID); code(err) != "not_found" {
			t.Fatalf("stranger get: %v", err)
		}
		if _, err := h.svc.Answer(ctx, "eve", "s", c.ID); code(err) != "not_found" {
			t.Fatalf("stranger answer: %v", err)
		}
		if _, err := h.svc.Token(ctx, "bob", c.ID); code(err) != "not_in_call" {
			t.Fatalf("token before answering: %v", err)
		}
		h.clock.Advance(3 * time.Second)
		a, err := h.svc.Answer(ctx, "bob", "s-bob-2", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != "active" || a.AnsweredAt == nil || a.Credentials.Channel != c.Channel {
			t.Fatalf("answered %+v", a)
		}
		if _, err := h.svc.Token(ctx, "bob", c.ID); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(65 * time.Second)
		l, err := h.svc.Leave(ctx, "bob", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l.Status != "ended" || l.EndReason != "completed" || l.DurationS != 65 {
			t.Fatalf("after leave %+v", l)
		}
		if _, err := h.svc.Token(ctx, "ann", c.ID); code(err) != "call_ended" {
			t.Fatalf("token after end: %v", err)
		}
		if _, err := h.svc.Join(ctx, "ann", "s", c.ID); code(err) != "call_ended" {
			t.Fatalf("join after end: %v", err)
		}
		want := []string{"call_initiated", "call_answered", "call_participant_left", "call_ended"}
		if got := h.pub.types(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		h.pub.mu.Lock()
		ans := h.pub.evs[1]
		for i := 1; i < len(h.pub.evs); i++ {
			if a, b := h.pub.evs[i-1].ev.Call.Version, h.pub.evs[i].ev.Call.Version; b < a || (b == a && h.pub.evs[i].typ != call.EventEnded) {
				t.Errorf("event %d (%s) version %d after %d", i, h.pub.evs[i].typ, b, a)
			}
		}
		h.pub.mu.Unlock()
		if ans.ev.UserID != "bob" || ans.ev.SessionID != "s-bob-2" || len(ans.users) != 2 {
			t.Fatalf("call_answered %+v", ans)
		}
		// A new call in the chat may start now.
		h.start("bob", "d1")
	})
}

func TestDeclineAndEnd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		h.chat("d1", false, "ann", "bob")
		c := h.start("ann", "d1")
		if _, err := h.svc.Answer(ctx, "ann", "s", c.ID); code(err) != "not_ringing" {
			t.Fatalf("caller answering: %v", err)
		}
		d, err := h.svc.Decline(ctx, "bob", c.ID)
		if err != nil || d.Status != "declined" || d.EndReason != "declined" {
			t.Fatalf("declined %+v %v", d, err)
		}
		// Group: end by the caller, by an admin; not by a member.
		h.chat("g1", true, "ann", "bob", "cat", "dan")
		g := h.start("bob", "g1")
		if _, err := h.svc.End(ctx, "cat", g.ID); code(err) != "forbidden" {
			t.Fatalf("member ending: %v", err)
		}
		if _, err := h.svc.Decline(ctx, "cat", g.ID); err != nil {
			t.Fatal(err)
		}
		if c := h.get(g.ID); c.Status != "ringing" {
			t.Fatalf("group after one decline: %s", c.Status)
		}
		e, err := h.svc.End(ctx, "ann", g.ID) // ann is the group's manager
		if err != nil || e.Status != "ended" || e.EndReason != "cancelled" || e.EndedBy != "ann" {
			t.Fatalf("admin end %+v %v", e, err)
		}
		// Group: everyone declines → declined.
		g = h.start("ann", "g1")
		for _, u := range []string{"bob", "cat", "dan"} {
			if _, err := h.svc.Decline(ctx, u, g.ID); err != nil {
				t.Fatal(err)
			}
		}
		if c := h.get(g.ID); c.Status != "declined" {
			t.Fatalf("all declined: %s", c.Status)
		}
	})
}

func TestGroupJoinLeave(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		h.chat("g1", true, "ann", "bob", "cat", "dan", "eli")
		g := h.start("ann", "g1")
		if _, err := h.svc.Answer(ctx, "bob", "s", g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Join(ctx, "cat", "s", g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Join(ctx, "dan", "s", g.ID); code(err) != "call_full" { // max 3
			t.Fatalf("fourth: %v", err)
		}
		if _, err := h.svc.Leave(ctx, "ann", g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Token(ctx, "ann", g.ID); code(err) != "not_in_call" {
			t.Fatalf("token after leaving: %v", err)
		}
		j, err := h.svc.Join(ctx, "dan", "s", g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Credentials.Channel != g.Channel {
			t.Fatal("channel")
		}
		// uids are stable: ann keeps 1 when she comes back.
		h.svc.Leave(ctx, "dan", g.ID)
		r, err := h.svc.Join(ctx, "ann", "s2", g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p := r.Participants[0]; p.UserID != "ann" || p.UID != 1 || p.SessionID != "s2" {
			t.Fatalf("ann %+v", p)
		}
		for _, u := range []string{"ann", "bob"} {
			if _, err := h.svc.Leave(ctx, u, g.ID); err != nil {
				t.Fatal(err)
			}
		}
		if c := h.get(g.ID); c.Status != "active" {
			t.Fatalf("one left in the group: %s", c.Status)
		}
		c, err := h.svc.Leave(ctx, "cat", g.ID)
		if err != nil || c.Status != "ended" || c.EndReason != "completed" {
			t.Fatalf("last leave %+v %v", c, err)
		}
	})
}

func TestRingTimeout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		h.chat("d1", false, "ann", "bob")
		h.pres.set("ann", true)
		c := h.start("ann", "d1")
		h.clock.Advance(44 * time.Second)
		if err := h.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if got := h.get(c.ID); got.Status != "ringing" {
			t.Fatalf("before the timeout: %s", got.Status)
		}
		h.clock.Advance(time.Second)
		if err := h.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		got := h.get(c.ID)
		if got.Status != "missed" || got.EndReason != "missed" || got.DurationS != 0 {
			t.Fatalf("after the timeout %+v", got)
		}
		if want := h.cid("d1") + "|ann|call-missed:" + c.ID + "|Missed audio call"; len(h.chats.messages) != 1 || h.chats.messages[0] != want {
			t.Fatalf("system messages %v", h.chats.messages)
		}
		if _, err := h.svc.Answer(ctx, "bob", "s", c.ID); code(err) != "call_ended" {
			t.Fatalf("answer after timeout: %v", err)
		}
	})
}

// TestLiveness: a participant who goes offline is taken out after the disconnect grace, by the
// node that saw it go offline (OnPresence) or, should that node have died, by the periodic scan.
func TestLiveness(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		h.chat("d1", false, "ann", "bob")
		h.chat("d2", false, "ann", "cat")
		for _, u := range []string{"ann", "bob", "cat"} {
			h.pres.set(u, true)
		}
		c := h.start("ann", "d1")
		if _, err := h.svc.Answer(ctx, "bob", "s", c.ID); err != nil {
			t.Fatal(err)
		}
		// bob drops and comes back within the grace: he stays.
		h.pres.offline("bob")
		h.pres.set("bob", true)
		h.clock.Advance(10 * time.Second)
		h.pres.fire()
		if got := h.get(c.ID); got.Status != "active" {
			t.Fatalf("back within the grace: %s", got.Status)
		}
		// bob drops for good.
		h.pres.offline("bob")
		h.clock.Advance(10 * time.Second)
		h.pres.fire()
		got := h.get(c.ID)
		if got.Status != "ended" || got.EndReason != "failed" || got.Participants[1].State != "left" {
			t.Fatalf("after the grace %+v", got)
		}
		var left call.Event
		for _, e := range h.pub.evs {
			if e.typ == call.EventParticipantLeft {
				left = e.ev
			}
		}
		if left.UserID != "bob" || left.Reason != "disconnected" {
			t.Fatalf("left event %+v", left)
		}

		// The node that saw cat go offline died before its timer: the scan of another node's
		// sweeper takes her out once two scans a grace apart saw her offline.
		c2 := h.start("ann", "d2")
		if _, err := h.svc.Answer(ctx, "cat", "s", c2.ID); err != nil {
			t.Fatal(err)
		}
		other := h.newService()
		h.pres.set("cat", false)
		for i := range 2 * 10 {
			if err := other.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if i < 10 {
				if got := h.get(c2.ID); got.Status != "active" {
					t.Fatalf("sweep %d, before the grace: %s", i, got.Status)
				}
			}
			h.clock.Advance(time.Second)
		}
		if got := h.get(c2.ID); got.Status != "ended" || got.Participants[1].State != "left" {
			t.Fatalf("after the scans %+v", got)
		}
	})
}

// race runs fns at the same instant and returns their errors.
func race(fns ...func() error) []error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn()
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func TestRaces(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		for i := range 8 {
			// Two devices of the callee answer at once: one wins, the other is told.
			h.chat(fmt.Sprint("a", i), false, "ann", "bob")
			c := h.start("ann", fmt.Sprint("a", i))
			errs := race(
				func() error { _, err := h.svc.Answer(ctx, "bob", "s1", c.ID); return err },
				func() error { _, err := h.svc.Answer(ctx, "bob", "s2", c.ID); return err },
			)
			if n := okCount(errs); n != 1 {
				t.Fatalf("two answers: %d succeeded (%v)", n, errs)
			}
			if got := h.get(c.ID); got.Status != "active" || got.Participants[1].State != "joined" {
				t.Fatalf("after two answers %+v", got)
			}

			// Two group members answer at once: both are in, the call went active once.
			h.chat(fmt.Sprint("g", i), true, "ann", "bob", "cat")
			g := h.start("ann", fmt.Sprint("g", i))
			errs = race(
				func() error { _, err := h.svc.Answer(ctx, "bob", "s", g.ID); return err },
				func() error { _, err := h.svc.Answer(ctx, "cat", "s", g.ID); return err },
			)
			if n := okCount(errs); n != 2 {
				t.Fatalf("two group answers: %v", errs)
			}
			if got := h.get(g.ID); got.Status != "active" || got.Participants[1].State != "joined" || got.Participants[2].State != "joined" {
				t.Fatalf("group %+v", got)
			}

			// The answer races the caller's hang-up: answered then ended, or cancelled and the
			// answer refused.
			h.chat(fmt.Sprint("h", i), false, "ann", "bob")
			c = h.start("ann", fmt.Sprint("h", i))
			errs = race(
				func() error { _, err := h.svc.Answer(ctx, "bob", "s", c.ID); return err },
				func() error { _, err := h.svc.End(ctx, "ann", c.ID); return err },
			)
			got := h.get(c.ID)
			switch {
			case errs[0] == nil && errs[1] == nil:
				if got.Status != "ended" || got.EndReason != "completed" || got.AnsweredAt == nil {
					t.Fatalf("answered then ended %+v", got)
				}
			case code(errs[0]) == "call_ended" && errs[1] == nil:
				if got.Status != "ended" || got.EndReason != "cancelled" || got.AnsweredAt != nil {
					t.Fatalf("cancelled %+v", got)
				}
			default:
				t.Fatalf("answer vs end: %v", errs)
			}
			for _, p := range got.Participants {
				if p.State == "joined" {
					t.Fatalf("joined in an ended call: %+v", got)
				}
			}
		}
	})
}

func okCount(errs []error) int {
	n := 0
	for _, e := range errs {
		if e == nil {
			n++
		}
	}
	return n
}

// TestSweepRaces: the ring timeout races an answer, and two nodes' sweepers race each other.
func TestSweepRaces(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		other := h.newService() // a second node on the same database
		ctx := context.Background()
		var ids []string
		for i := range 8 {
			h.chat(fmt.Sprint("t", i), false, "ann", "bob")
			ids = append(ids, h.start("ann", fmt.Sprint("t", i)).ID)
		}
		h.clock.Advance(45 * time.Second)
		answers := make([]error, len(ids))
		fns := []func() error{
			func() error { return h.svc.Sweep(ctx) },
			func() error { return other.Sweep(ctx) },
		}
		for i, id := range ids {
			fns = append(fns, func() error { _, answers[i] = h.svc.Answer(ctx, "bob", "s", id); return nil })
		}
		for _, err := range race(fns...) {
			if err != nil {
				t.Fatal(err)
			}
		}
		missed := 0
		for i, id := range ids {
			got := h.get(id)
			switch {
			case answers[i] == nil && got.Status == "active":
			case code(answers[i]) == "call_ended" && got.Status == "missed":
				missed++
			default:
				t.Fatalf("call %d: answer %v, status %s", i, answers[i], got.Status)
			}
		}
		if len(h.chats.messages) != missed || h.pub.count(call.EventEnded) != missed {
			t.Fatalf("%d missed, %d system messages, %d call_ended", missed, len(h.chats.messages), h.pub.count(call.EventEnded))
		}
	})
}

func TestHistoryAndStats(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		h.chat("d1", false, "ann", "bob")
		h.chat("d2", false, "ann", "cat")
		var ids []string
		for i := range 5 {
			chat := "d1"
			if i%2 == 1 {
				chat = "d2"
			}
			c := h.start("ann", chat)
			ids = append(ids, c.ID)
			callee := "bob"
			if chat == "d2" {
				callee = "cat"
			}
			if i < 3 {
				h.svc.Answer(ctx, callee, "s", c.ID)
				h.clock.Advance(10 * time.Second)
				h.svc.Leave(ctx, callee, c.ID)
			} else {
				h.svc.Decline(ctx, callee, c.ID)
			}
			h.clock.Advance(time.Second)
		}
		var all []string
		cursor := ""
		for {
			items, next, err := h.svc.History(ctx, "ann", call.HistoryQuery{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range items {
				all = append(all, c.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(all) != fmt.Sprint([]string{ids[4], ids[3], ids[2], ids[1], ids[0]}) {
			t.Fatalf("history %v, want newest first of %v", all, ids)
		}
		items, _, _ := h.svc.History(ctx, "bob", call.HistoryQuery{})
		if len(items) != 3 {
			t.Fatalf("bob sees %d calls", len(items))
		}
		items, _, _ = h.svc.History(ctx, "ann", call.HistoryQuery{ChatID: h.cid("d2")})
		if len(items) != 2 {
			t.Fatalf("d2 has %d calls", len(items))
		}
		if _, _, err := h.svc.History(ctx, "ann", call.HistoryQuery{Cursor: "!!"}); code(err) != "validation_failed" {
			t.Fatalf("bad cursor: %v", err)
		}
		q := call.StatsQuery{From: h.clock.Now().Add(-time.Hour), To: h.clock.Now().Add(time.Hour)}
		st, err := h.svc.Stats(ctx, "bob", false, q)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 3 || st.ByStatus["ended"] != 2 || st.ByStatus["declined"] != 1 || st.Answered != 2 ||
			st.TotalDurationS != 20 || st.AverageDurationS != 10 || st.ByKind["audio"] != 3 || st.Scope != "own" {
			t.Fatalf("bob's stats %+v", st)
		}
		st, _ = h.svc.Stats(ctx, "eve", true, q)
		if st.Total != 5 || st.Answered != 3 || st.TotalDurationS != 30 || st.ByEndReason["declined"] != 2 || st.Scope != "all" {
			t.Fatalf("admin stats %+v", st)
		}
	})
}

// A large group's call writes its participants in several statements: every member is invited,
// with the uids in order, and the last one can answer.
func TestLargeGroupParticipants(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		members := []string{"ann"}
		for i := 1; i < 450; i++ {
			members = append(members, fmt.Sprintf("m%03d", i))
		}
		h.chat("big", true, members...)
		c := h.start("ann", "big")
		got := h.get(c.ID)
		if len(got.Participants) != len(members) {
			t.Fatalf("%d participants, want %d", len(got.Participants), len(members))
		}
		for i, p := range got.Participants {
			wantState := call.StateInvited
			if i == 0 {
				wantState = call.StateJoined
			}
			if p.UID != uint32(i+1) || p.UserID != members[i] || p.State != wantState {
				t.Fatalf("participant %d: %+v", i, p)
			}
		}
		if _, err := h.svc.Answer(context.Background(), "m449", "s-m449", c.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// Relay reads only the two participants' states; who may signal whom stays as before.
func TestRelayAccess(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		h.chat("g", true, "ann", "bob", "cat")
		c := h.start("ann", "g")
		h.chats.mu.Lock() // dan joins the chat after the call started: a member, not a participant
		fc := h.chats.chats[h.cid("g")]
		fc.members = append(fc.members, "dan")
		h.chats.chats[h.cid("g")] = fc
		h.chats.mu.Unlock()
		if _, err := h.svc.Decline(ctx, "bob", c.ID); err != nil {
			t.Fatal(err)
		}
		sig := func(from, to string) string {
			return code(h.svc.Relay(ctx, from, "s-"+from, call.CmdOffer, call.Signal{CallID: c.ID, ToUserID: to, SDP: "x"}))
		}
		for _, tc := range []struct{ from, to, want string }{
			{"ann", "cat", ""},
			{"cat", "ann", ""},
			{"ann", "bob", "not_found"},   // declined
			{"bob", "ann", "not_in_call"}, // declined
			{"dan", "ann", "not_in_call"}, // a member, not in the call
			{"eve", "ann", "not_found"},   // a stranger
			{"ann", "ann", "not_found"},   // to oneself without a session
		} {
			if got := sig(tc.from, tc.to); got != tc.want {
				t.Errorf("%s → %s: %q, want %q", tc.from, tc.to, got, tc.want)
			}
		}
		other := uuid.Must(uuid.NewV7()).String()
		if err := h.svc.Relay(ctx, "ann", "s", call.CmdOffer, call.Signal{CallID: other, ToUserID: "cat", SDP: "x"}); code(err) != "not_found" {
			t.Fatalf("no such call: %v", err)
		}
		if _, err := h.svc.End(ctx, "ann", c.ID); err != nil {
			t.Fatal(err)
		}
		if got := sig("cat", "ann"); got != "call_ended" {
			t.Fatalf("after the end: %q", got)
		}
	})
}
