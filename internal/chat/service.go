package chat

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Options configures a Service.
type Options struct {
	MaxGroupMembers int // most members of a group (config MaxGroupMembers); 0 = 10,000
	// LargeGroupMembers: a group with more members is large (config LargeGroupMembers; 0 = 50):
	// no automatic presence between its members, membership changes summarized for the existing
	// members, read/delivered receipts only to the connections that joined the chat.
	LargeGroupMembers int
	MaxTextChars      int // longest message text in characters (config WSMaxTextChars)
	MaxBatch          int // most ops per group-commit transaction; 0 = 256
	// CommitEvery is the least time between the starts of two group commits (config
	// ChatCommitEvery): under load, ops that arrive meanwhile join the next batch, so there are
	// fewer and larger transactions; an op that finds the writer idle for longer than this is
	// committed at once. 0 commits as soon as the previous commit ends.
	CommitEvery time.Duration
	// WriterLanes is how many group-commit transactions may be in flight at once, each for its
	// own share of the chats (see writer); 0 = 2 on PostgreSQL, where one lane's statements
	// overlap another's commit. Always 1 on SQLite, whose writes share one connection.
	WriterLanes int
	Clock       Clock
	Logger      *slog.Logger
	Registerer  prometheus.Registerer // where the chat metrics go; nil = nowhere
	Files       Files                 // the media uploads messages attach; nil = every attachment_id is refused
	// Accounts tells which user ids have an account (required).
	Accounts Accounts
	// SendHooks are called inside every group-commit transaction that stores messages, with
	// those messages (see SendHook); nil = none.
	SendHooks []SendHook
	// ActiveCalls fills active_call in GET /chats and GET /chats/{id}; nil = always null.
	ActiveCalls ActiveCalls
	// GroupLimiter counts the groups each user creates (POST /chats with type group; key
	// "chat-group:<user>"); nil = unlimited. The server passes NERUTALK_GROUPS_PER_MINUTE, in
	// Redis when configured.
	GroupLimiter ratelimit.Limiter
	// WriteLimiter counts the chat writes each user makes over REST, sends, edits, deletes, read
	// and delivered marks, chat and member changes, invitations and blocks together (key
	// "chat-write:<user>"), at the WebSocket's frame rate: most reach every member of the chat,
	// as a WebSocket command does, and the WebSocket limits those per connection; nil = unlimited.
	WriteLimiter ratelimit.Limiter
}

// Service is the chat domain: chats, members, messages, receipts and typing, over REST and over
// the WebSocket commands. See the package documentation for its goroutines and locks.
type Service struct {
	db       *store.DB
	pub      Publisher
	files    Files
	accounts Accounts
	opts     Options
	log      *slog.Logger
	metrics  *metrics

	rosters  *lazyCache[*roster]  // chat id -> members
	contacts *lazyCache[[]string] // user id -> users sharing a chat with them

	writer       *writer
	stmts        *stmtCache
	membersHooks []MembersHook // added while wiring (OnMembersChanged)
	// presenceRefresh is told whose automatic presence may have changed (OnPresenceInterest).
	presenceRefresh PresenceRefresher
	// presenceUnfollow is told, on every node, who may no longer follow whom (OnPresenceBlocked).
	presenceUnfollow PresenceUnfollower
	blocksHook       BlocksHook // set while wiring (OnBlocksChanged); nil = none
	events           pipeline
	typing           *typing

	// orderMu is held from the start of every write transaction until its events are queued, so
	// the event queue is in commit order: alone by every write (Lock), shared by the group
	// commit's lanes (RLock), whose transactions never touch the same chat.
	orderMu sync.RWMutex
	closed  bool // guarded by orderMu
}

// Accounts is what chat needs of the user accounts: the auth package's MissingUsers and Cards,
// adapted where the server wires the features.
type Accounts interface {
	// MissingUsers returns the ids among ids that have no account, reading with q (the caller's
	// transaction or the read pool).
	MissingUsers(ctx context.Context, q Querier, ids []string) ([]string, error)
	// Profiles returns the profiles of the accounts among ids, by id, reading with q in one
	// query per large chunk of ids (a whole page of chats costs one query); an id without an
	// account is absent from the map.
	Profiles(ctx context.Context, q Querier, ids []string) (map[string]UserProfile, error)
	// GroupAdds returns who may add each of the accounts among ids to a group directly
	// ("everyone", "contacts" or "nobody"), by id, reading with q.
	GroupAdds(ctx context.Context, q Querier, ids []string) (map[string]string, error)
}

// New starts the service's writer and event goroutines; Close stops them. o.Accounts is required.
func New(db *store.DB, pub Publisher, o Options) *Service {
	if o.Accounts == nil {
		panic("chat: Options.Accounts is required")
	}
	if o.MaxGroupMembers <= 0 {
		o.MaxGroupMembers = 10_000
	}
	if o.LargeGroupMembers <= 0 {
		o.LargeGroupMembers = 50
	}
	if o.MaxTextChars <= 0 {
		o.MaxTextChars = 4096
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	switch {
	case db.Dialect != store.Postgres:
		o.WriterLanes = 1 // the statement cache prepares on the only write connection between transactions
	case o.WriterLanes <= 0:
		o.WriterLanes = 2
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		db: db, pub: pub, files: o.Files, accounts: o.Accounts, opts: o, log: o.Logger, metrics: newMetrics(o.Registerer),
		writer: newWriter(o.WriterLanes, o.MaxBatch, o.CommitEvery),
		events: pipeline{ch: make(chan event, 4096), done: make(chan struct{}), wakeBatch: hubWakeBatch},
		stmts:  newStmtCache(db.W),
	}
	s.rosters = newLazyCache(100_000, s.loadRoster)
	// Contacts lists can be long (a member of big groups): keep fewer of them.
	s.contacts = newLazyCache(10_000, func(ctx context.Context, userID string) ([]string, error) {
		return contacts(ctx, s.db.R, userID)
	})
	s.typing = newTyping(o.Clock, func(chatID, userID string, on bool) {
		s.pub.PublishTopic(context.Background(), topic(chatID), EventTyping, TypingEvent{ChatID: chatID, UserID: userID, Typing: on}, userID)
	})
	pub.OnSignal(signalMembersChanged, s.onMembersChanged)
	pub.OnSignal(signalBlocksChanged, s.onBlocksChanged)
	for _, l := range s.writer.lanes {
		go s.runWriter(l)
	}
	go s.runPipeline()
	return s
}

// signalMembersChanged tells every node that a chat's members, roles or title changed.
const signalMembersChanged = "chat.members_changed"

// membersChanged is the payload of signalMembersChanged.
type membersChanged struct {
	ChatID  string   `json:"chat_id"`
	Touched []string `json:"touched"` // members before and after: their contact lists change
	Removed []string `json:"removed,omitempty"`
	// Presence: the chat is a direct chat or a small group (before or after the change), so the
	// automatic presence of the touched users may have changed.
	Presence bool `json:"presence,omitempty"`
}

// announceMembersChanged makes every node, this one before it returns, forget what it cached of
// the chat and its members' contacts.
func (s *Service) announceMembersChanged(ctx context.Context, c membersChanged) {
	payload, err := json.Marshal(c)
	if err != nil { // strings only: cannot fail
		panic(err)
	}
	s.pub.PublishSignal(ctx, signalMembersChanged, payload)
}

// onMembersChanged handles signalMembersChanged, from any node.
func (s *Service) onMembersChanged(ctx context.Context, payload []byte) {
	var c membersChanged
	if err := json.Unmarshal(payload, &c); err != nil || c.ChatID == "" {
		s.log.Error("chat: malformed members-changed signal", "err", err)
		return
	}
	s.rosters.invalidate(c.ChatID)
	s.contacts.invalidate(c.Touched...)
	for _, u := range c.Removed {
		s.typing.forget(c.ChatID, u)
	}
	if c.Presence && s.presenceRefresh != nil {
		s.presenceRefresh(ctx, c.Touched)
	}
}

// Close commits what is queued, publishes the last events and stops the goroutines.
func (s *Service) Close(ctx context.Context) error {
	err := s.closeWriter(ctx)
	s.orderMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.events.ch)
		s.stmts.close() // no transaction runs any more: write refuses, the writer is done
	}
	s.orderMu.Unlock()
	s.typing.stop()
	select {
	case <-s.events.done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("chat: events not drained: %w", ctx.Err()))
	}
	return err
}

func (s *Service) now() int64 { return store.Millis(time.Now()) }

// internal wraps an unexpected failure; httpapi logs it and answers 500.
func (s *Service) internal(op string, err error) error {
	if _, ok := apperr.As(err); ok {
		return err
	}
	return fmt.Errorf("chat: %s: %w", op, err)
}

func isNotFound(err error) bool {
	return errors.Is(err, store.ErrNotFound) || apperr.KindOf(err) == apperr.KindNotFound
}

// roster is a chat's members as the cache holds them (never modified once built).
type roster struct {
	typ     Type
	title   string
	version int64        // chats.members_version when it was read (raised by title changes too)
	infos   []MemberInfo // oldest first
	ids     []string     // the same users: the audience of the chat's events
	roles   map[string]Role
}

func (s *Service) loadRoster(ctx context.Context, chatID string) (*roster, error) {
	// One statement, so that the version and the members are of the same moment.
	rows, err := s.db.R.QueryContext(ctx, `SELECT c.type, c.title, c.members_version, m.user_id, m.role, m.joined_at FROM chats c
		JOIN chat_members m ON m.chat_id = c.id WHERE c.id = $1 ORDER BY m.joined_at, m.user_id`, chatID)
	if err != nil {
		return nil, fmt.Errorf("chat: members of %s: %w", chatID, err)
	}
	defer rows.Close()
	r := &roster{roles: map[string]Role{}}
	for rows.Next() {
		var mi MemberInfo
		var joined int64
		if err := rows.Scan(&r.typ, &r.title, &r.version, &mi.UserID, &mi.Role, &joined); err != nil {
			return nil, fmt.Errorf("chat: members of %s: %w", chatID, err)
		}
		mi.JoinedAt = store.Time(joined)
		r.infos = append(r.infos, mi)
		r.ids = append(r.ids, mi.UserID)
		r.roles[mi.UserID] = mi.Role
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chat: members of %s: %w", chatID, err)
	}
	if len(r.ids) == 0 {
		return nil, fmt.Errorf("chat %s: %w", chatID, store.ErrNotFound)
	}
	return r, nil
}

// member returns the chat's roster and userID's role in it. A chat that does not exist and a chat
// the user is not in look the same: not_found.
func (s *Service) member(ctx context.Context, chatID, userID string) (*roster, Role, error) {
	if !validID(chatID) { // never reaches SQL: see validID
		return nil, "", apperr.NotFound("chat")
	}
	r, err := s.rosters.get(ctx, chatID)
	if isNotFound(err) {
		return nil, "", apperr.NotFound("chat")
	}
	if err != nil {
		return nil, "", s.internal("members", err)
	}
	role, ok := r.roles[userID]
	if !ok {
		return nil, "", apperr.NotFound("chat")
	}
	return r, role, nil
}

// write runs fn in a transaction and queues the events it returns, in commit order.
func (s *Service) write(ctx context.Context, fn func(tx *sql.Tx) ([]event, error)) error {
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	if s.closed {
		return errClosed
	}
	s.stmts.flush(ctx)
	var evs []event
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		evs, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	s.enqueue(evs...)
	return nil
}

// Contacts returns the distinct users who share a chat with userID: the audience of their
// presence. It is cached and dropped whenever a chat of theirs changes members; the caller must
// not modify the slice.
func (s *Service) Contacts(ctx context.Context, userID string) ([]string, error) {
	ids, err := s.contacts.get(ctx, userID)
	if err != nil {
		return nil, s.internal("contacts", err)
	}
	return ids, nil
}
