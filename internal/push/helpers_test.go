package push

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/clocktest"
	"github.com/nerutalk/nerutalk/internal/push/provider"
	"github.com/nerutalk/nerutalk/internal/store"
)

// sent is one call a fakeSender saw.
type sent struct {
	Target  provider.Target
	Message provider.Message
}

// fakeSender records sends; fail, when set, decides the error per target token.
type fakeSender struct {
	mu   sync.Mutex
	sent []sent
	fail func(t provider.Target) error
}

func (f *fakeSender) Send(_ context.Context, t provider.Target, m provider.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if f.fail != nil {
		err = f.fail(t)
	}
	if err == nil {
		f.sent = append(f.sent, sent{t, m})
	}
	return err
}

func (f *fakeSender) all() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.sent...)
}

// onlineSet is a Presence.
type onlineSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (o *onlineSet) Online(u string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m[u]
}

func (o *onlineSet) set(u string, on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]bool{}
	}
	o.m[u] = on
}

// dbChats reads delivered_seq straight from chat_members, as the wiring's adapter of chat does.
type dbChats struct{ db *store.DB }

func (c dbChats) DeliveredSeq(ctx context.Context, userID, chatID string) (int64, error) {
	var seq int64
	err := c.db.R.QueryRowContext(ctx, `SELECT delivered_seq FROM chat_members WHERE chat_id = $1 AND user_id = $2`, chatID, userID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, apperr.NotFound("chat")
	}
	return seq, err
}

// accounts is auth's accounts as Accounts (what the wiring passes).
type accounts struct{}

func (accounts) MissingUsers(ctx context.Context, q Querier, ids []string) ([]string, error) {
	return auth.MissingUsers(ctx, q, ids)
}

func (accounts) DisplayNames(ctx context.Context, q Querier, ids []string) (map[string]string, error) {
	return auth.DisplayNames(ctx, q, ids)
}

func (accounts) IDsByUsername(ctx context.Context, q Querier, names []string) (map[string]string, error) {
	return auth.IDsByUsername(ctx, q, names)
}

type harness struct {
	t      *testing.T
	db     *store.DB
	clock  *clocktest.Clock
	sender *fakeSender
	online *onlineSet
	svc    *Service
}

func newHarness(t *testing.T, db *store.DB, mod ...func(*Options)) *harness {
	h := &harness{t: t, db: db, clock: clocktest.New(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)), sender: &fakeSender{}, online: &onlineSet{}}
	h.svc = h.service(mod...)
	return h
}

// service builds another Service (a worker on another node) on the same database and clock.
func (h *harness) service(mod ...func(*Options)) *Service {
	o := Options{Sender: h.sender, Presence: h.online, Chats: dbChats{h.db}, Accounts: accounts{}, Now: h.clock.Now, Rand: func() float64 { return 0.5 },
		MessageDelay: 3 * time.Second}
	for _, m := range mod {
		m(&o)
	}
	return New(h.db, o)
}

func (h *harness) exec(q string, args ...any) {
	h.t.Helper()
	if _, err := h.db.W.ExecContext(context.Background(), q, args...); err != nil {
		h.t.Fatalf("%s: %v", q, err)
	}
}

func (h *harness) user(name string) string {
	h.t.Helper()
	id := newID()
	h.exec(`INSERT INTO users (id, username, email, display_name, password_hash, username_key, display_key, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'x', $2, $2, 1, 1)`, id, strings.ToLower(name), strings.ToLower(name)+"@example.com", name)
	return id
}

func (h *harness) chat(typ, title string, members ...string) string {
	h.t.Helper()
	id := newID()
	h.exec(`INSERT INTO chats (id, type, title, created_by, created_at, updated_at, last_message_at) VALUES ($1, $2, $3, $4, 1, 1, 1)`,
		id, typ, title, members[0])
	for _, m := range members {
		h.exec(`INSERT INTO chat_members (chat_id, user_id, role, joined_at) VALUES ($1, $2, 'member', 1)`, id, m)
	}
	return id
}

func (h *harness) device(userID, platform, token string) Device {
	h.t.Helper()
	d, _, err := h.svc.RegisterDevice(context.Background(), userID, "sess-"+token, DeviceInput{Platform: platform, Token: token, Locale: "en"})
	if err != nil {
		h.t.Fatalf("register device: %v", err)
	}
	return d
}

// drain runs the worker until nothing is due.
func (h *harness) drain(svcs ...*Service) {
	h.t.Helper()
	if len(svcs) == 0 {
		svcs = []*Service{h.svc}
	}
	for i := 0; i < 100; i++ {
		total := 0
		for _, s := range svcs {
			n, err := s.RunOnce(context.Background())
			if err != nil {
				h.t.Fatalf("RunOnce: %v", err)
			}
			total += n
		}
		if total == 0 {
			return
		}
	}
	h.t.Fatal("the outbox never drained")
}

func (h *harness) tx(fn func(tx *sql.Tx) error) {
	h.t.Helper()
	if err := h.db.Tx(context.Background(), fn); err != nil {
		h.t.Fatal(err)
	}
}

// statuses counts outbox rows by "kind/status[/error_code]".
func (h *harness) statuses() map[string]int {
	h.t.Helper()
	rows, err := h.db.R.QueryContext(context.Background(), `SELECT CASE WHEN device_id IS NULL THEN 'note' ELSE 'delivery' END, status, error_code, COUNT(*)
		FROM push_outbox GROUP BY 1, 2, 3`)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var kind, st, code string
		var n int
		if err := rows.Scan(&kind, &st, &code, &n); err != nil {
			h.t.Fatal(err)
		}
		k := kind + "/" + st
		if code != "" {
			k += "/" + code
		}
		out[k] += n
	}
	return out
}

const apnsToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
