package location

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/clocktest"
	"github.com/nerutalk/nerutalk/internal/store"
)

type published struct {
	users []string
	typ   string
	data  any
}

// fakePub records what would be published.
type fakePub struct {
	mu  sync.Mutex
	evs []published
}

func (p *fakePub) PublishUsers(_ context.Context, users []string, typ string, data any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, published{slices.Clone(users), typ, data})
}

// take returns and forgets the events of type typ.
func (p *fakePub) take(typ string) []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out, rest []published
	for _, e := range p.evs {
		if e.typ == typ {
			out = append(out, e)
		} else {
			rest = append(rest, e)
		}
	}
	p.evs = rest
	return out
}

// to returns the data of the events of type typ that user received, and forgets nothing.
func (p *fakePub) to(user, typ string) []any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []any
	for _, e := range p.evs {
		if e.typ == typ && slices.Contains(e.users, user) {
			out = append(out, e.data)
		}
	}
	return out
}

func (p *fakePub) reset() {
	p.mu.Lock()
	p.evs = nil
	p.mu.Unlock()
}

// fakeChats is a chat membership table.
type fakeChats struct {
	mu      sync.Mutex
	members map[string][]string
}

func (c *fakeChats) Membership(_ context.Context, chatID, userID string) (bool, bool, []string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[chatID]
	if !ok || !slices.Contains(m, userID) {
		return false, false, nil, apperr.NotFound("chat")
	}
	return true, false, slices.Clone(m), nil
}

func (c *fakeChats) Contacts(_ context.Context, userID string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.members {
		if slices.Contains(m, userID) {
			for _, u := range m {
				if u != userID && !slices.Contains(out, u) {
					out = append(out, u)
				}
			}
		}
	}
	return out, nil
}

func (c *fakeChats) set(chatID string, members ...string) {
	c.mu.Lock()
	c.members[chatID] = members
	c.mu.Unlock()
}

type harness struct {
	*Service
	db    *store.DB
	pub   *fakePub
	chats *fakeChats
	clock *clocktest.Clock
}

func newHarness(t *testing.T, db *store.DB) *harness {
	h := &harness{db: db, pub: &fakePub{}, chats: &fakeChats{members: map[string][]string{}},
		clock: clocktest.New(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))}
	h.Service = New(db, h.pub, Options{Clock: h.clock, Chats: h.chats})
	return h
}

// users creates accounts directly in the users table.
func (h *harness) users(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID()
		_, err := h.db.W.ExecContext(context.Background(), `INSERT INTO users (id, username, email, display_name, password_hash,
			username_key, display_key, created_at, updated_at) VALUES ($1, $1, $2, 'u', 'x', $1, 'u', 0, 0)`, ids[i], ids[i]+"@example.com")
		if err != nil {
			t.Fatalf("add user: %v", err)
		}
	}
	return ids
}

// chat creates a chat row (for the shares' foreign key) and its members in the fake.
func (h *harness) chat(t *testing.T, members ...string) string {
	t.Helper()
	id := newID()
	_, err := h.db.W.ExecContext(context.Background(), `INSERT INTO chats (id, type, created_by, created_at, updated_at, last_message_at)
		VALUES ($1, 'group', $2, 0, 0, 0)`, id, members[0])
	if err != nil {
		t.Fatalf("add chat: %v", err)
	}
	h.chats.set(id, members...)
	return id
}

// at reports a position of user recorded now (by the fake clock).
func (h *harness) at(t *testing.T, user string, lat, lng float64) ReportResult {
	t.Helper()
	now := h.clock.Now()
	r, err := h.Update(context.Background(), user, PositionReport{Lat: lat, Lng: lng, RecordedAt: &now}, "")
	if err != nil {
		t.Fatalf("update %s: %v", user, err)
	}
	return r
}

func f64(v float64) *float64 { return &v }

func wantKind(t *testing.T, err error, kind apperr.Kind, what string) {
	t.Helper()
	if err == nil || apperr.KindOf(err) != kind {
		t.Fatalf("%s: err = %v (kind %v), want kind %v", what, err, apperr.KindOf(err), kind)
	}
}

func sharedOf(t *testing.T, data any) SharedLocation {
	t.Helper()
	l, ok := data.(SharedLocation)
	if !ok {
		t.Fatalf("data is %T, want SharedLocation", data)
	}
	return l
}

var _ = fmt.Sprintf
