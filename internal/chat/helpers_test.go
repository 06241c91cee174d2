package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/store"
)

// published is one event a fakePublisher saw.
type published struct {
	users []string
	typ   string
	data  any
	topic string // PublishTopic only
	skip  string // PublishTopic's exceptUserID
}

// fakePublisher records what the service publishes.
type fakePublisher struct {
	localSignals
	mu     sync.Mutex
	events []published
	leaves []string // "topic user"
}

// localSignals are the signals of a single node: PublishSignal runs the handler at once, as the
// hub does on the publishing node.
type localSignals struct {
	mu       sync.Mutex
	handlers map[string]func(context.Context, []byte)
}

func (l *localSignals) OnSignal(name string, fn func(context.Context, []byte)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.handlers == nil {
		l.handlers = map[string]func(context.Context, []byte){}
	}
	l.handlers[name] = fn
}

func (l *localSignals) PublishSignal(ctx context.Context, name string, payload []byte) {
	l.mu.Lock()
	fn := l.handlers[name]
	l.mu.Unlock()
	if fn != nil {
		fn(ctx, payload)
	}
}

func (p *fakePublisher) PublishUsers(_ context.Context, users []string, typ string, data any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, published{users: append([]string(nil), users...), typ: typ, data: data})
}

func (p *fakePublisher) PublishTopic(_ context.Context, topic, typ string, data any, except string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, published{typ: typ, data: data, topic: topic, skip: except})
}

func (p *fakePublisher) LeaveTopicUser(_ context.Context, topic, user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leaves = append(p.leaves, topic+" "+user)
}

// ofType returns the recorded events of type typ, in order.
func (p *fakePublisher) ofType(typ string) []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []published
	for _, e := range p.events {
		if e.typ == typ {
			out = append(out, e)
		}
	}
	return out
}

func (p *fakePublisher) reset() {
	p.mu.Lock()
	p.events, p.leaves = nil, nil
	p.mu.Unlock()
}

// newTestService returns a service on db with a recording publisher; it is closed at the end.
func newTestService(t testing.TB, db *store.DB, mutate func(*Options)) (*Service, *fakePublisher) {
	t.Helper()
	pub := &fakePublisher{}
	o := Options{MaxGroupMembers: 1000, MaxTextChars: 4096, Accounts: accounts{}}
	if mutate != nil {
		mutate(&o)
	}
	s := New(db, pub, o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s, pub
}

// accounts is auth's accounts as the server adapts them.
type accounts struct{}

func (accounts) MissingUsers(ctx context.Context, q Querier, ids []string) ([]string, error) {
	return auth.MissingUsers(ctx, q, ids)
}

func (accounts) GroupAdds(ctx context.Context, q Querier, ids []string) (map[string]string, error) {
	return auth.GroupAdds(ctx, q, ids)
}

func (accounts) Profiles(ctx context.Context, q Querier, ids []string) (map[string]UserProfile, error) {
	cards, err := auth.Cards(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]UserProfile, len(cards))
	for id, c := range cards {
		p := UserProfile{UserID: id, Username: c.Username, DisplayName: c.DisplayName}
		if c.AvatarURL != "" {
			p.AvatarURL = &c.AvatarURL
		}
		out[id] = p
	}
	return out, nil
}

// addUsers creates accounts directly in the users table and returns their ids.
func addUsers(t testing.TB, db *store.DB, names ...string) []string {
	t.Helper()
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = newID()
		_, err := db.W.ExecContext(context.Background(), `INSERT INTO users (id, username, email, display_name, password_hash,
			username_key, display_key, created_at, updated_at) VALUES ($1, $2, $3, $2, 'x', $4, $4, 0, 0)`,
			ids[i], n+"_"+ids[i][len(ids[i])-8:], n+ids[i]+"@example.com", fmt.Sprintf("%x", n))
		if err != nil {
			t.Fatalf("add user %s: %v", n, err)
		}
	}
	return ids
}

// mustGroup creates a group owned by owner with the other members.
func mustGroup(t testing.TB, s *Service, owner string, members ...string) ChatView {
	t.Helper()
	v, created, err := s.Create(context.Background(), owner, CreateInput{Type: Group, MemberIDs: members, Title: "g"})
	if err != nil || !created {
		t.Fatalf("create group: created=%v err=%v", created, err)
	}
	return v
}

// mustSend sends a text message.
func mustSend(t testing.TB, s *Service, user, chatID, clientID string) Message {
	t.Helper()
	m, _, err := s.Send(context.Background(), user, chatID, SendInput{ClientID: clientID, Text: "hi " + clientID})
	if err != nil {
		t.Fatalf("send %s: %v", clientID, err)
	}
	return m
}

func seqsOf(msgs []Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func sortedSeqs(msgs []Message) []int64 {
	s := seqsOf(msgs)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// fakeClock is a Clock moved by hand; timers run synchronously inside Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at            time.Time
	f             func()
	done, stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.done || t.stopped {
			return false
		}
		t.stopped = true
		return true
	}
}

// Advance moves the clock by d, running every timer that falls due, earliest first.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.done && !t.stopped && !t.at.After(target) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		next.done = true
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = target
	c.mu.Unlock()
}
