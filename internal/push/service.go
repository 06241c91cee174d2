package push

import (
	"context"
	"crypto/ecdh"
	crand "crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/push/provider"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Presence tells whether a user has a connection open on any node (the realtime hub satisfies it).
type Presence interface {
	Online(userID string) bool
}

// Chats is what push needs of the chat feature: userID's delivered_seq in chatID (how far their
// devices acknowledged the chat's messages), or a not-found error when userID is not a member.
// Push uses it for membership (PUT /chats/{id}/notifications) and, when a message push is due,
// to skip a member whose devices acknowledged the message meanwhile.
type Chats interface {
	DeliveredSeq(ctx context.Context, userID, chatID string) (int64, error)
}

// Querier reads within a transaction or from a pool (*sql.Tx and *sql.DB satisfy it).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Accounts is what push needs of the accounts feature, read with q (the caller's transaction or
// a pool), so that push never names the users table.
type Accounts interface {
	// MissingUsers returns the ids among ids that have no account.
	MissingUsers(ctx context.Context, q Querier, ids []string) ([]string, error)
	// DisplayNames returns the display names of the accounts among ids, by id.
	DisplayNames(ctx context.Context, q Querier, ids []string) (map[string]string, error)
	// IDsByUsername returns the ids of the accounts named by lower-case usernames, by username.
	IDsByUsername(ctx context.Context, q Querier, usernames []string) (map[string]string, error)
}

// Signals wakes the workers of every node when this node queued notifications that are due at
// once (the realtime hub satisfies it). Optional: without it workers poll.
type Signals interface {
	OnSignal(name string, fn func(ctx context.Context, payload []byte))
	PublishSignal(ctx context.Context, name string, payload []byte)
}

const signalWake = "push.wake"

// Options configures a Service.
type Options struct {
	Sender   provider.Sender // where deliveries go; nil = provider.Log on Logger
	Presence Presence        // nil = nobody is ever online
	Chats    Chats           // nil = no membership check for chat preferences, no acknowledgement check
	Accounts Accounts        // required: names, @mentions, recipients of admin sends
	Signals  Signals         // nil = no wake-ups across nodes (workers poll)
	// MessageDelay is how long a message notification waits before it is sent, so that a
	// member whose connection receives and acknowledges the message gets no push. 0 = 3 s.
	MessageDelay time.Duration
	// PollInterval is how often an idle worker looks for due rows. 0 = 1 s.
	PollInterval time.Duration
	// Lease is how long a claimed row stays with its worker before another may take it (a node
	// that died mid-send). 0 = 1 min. It must exceed the longest send.
	Lease time.Duration
	// MaxAttempts is how many times a delivery is tried before it is dead. 0 = 5.
	MaxAttempts int
	// Backoff is the delay before the first retry; each retry doubles it (with jitter), up to
	// MaxBackoff. 0 = 5 s and 1 h.
	Backoff, MaxBackoff time.Duration
	// Batch is how many rows a worker claims at once; Concurrency how many sends it runs at once.
	// 0 = 500 and 32.
	Batch, Concurrency int
	// Retention is how long finished rows are kept (the history and stats window). 0 = 30 days.
	Retention time.Duration
	// FallbackLocale is used when no template exists for a device's locale. "" = "en".
	FallbackLocale string
	// AdminLimiter limits admin sends and broadcasts per admin; nil = 10 per minute in memory.
	AdminLimiter ratelimit.Limiter
	// VAPIDPublicKey is what GET /push/webpush-key answers ("" = 404 webpush_unavailable).
	VAPIDPublicKey string
	Logger         *slog.Logger
	Now            func() time.Time // the clock; nil = time.Now
	Rand           func() float64   // jitter in [0,1); nil = math/rand/v2
}

// Service is the push feature: devices, preferences, templates, the outbox and its workers.
type Service struct {
	db   *store.DB
	o    Options
	log  *slog.Logger
	node string // this node's worker id, for leases

	wake chan struct{}

	mu      sync.Mutex
	stop    context.CancelFunc
	done    chan struct{}
	running bool
}

// New builds the service. Start runs its worker. Options.Accounts is required.
func New(db *store.DB, o Options) *Service {
	if o.Accounts == nil {
		panic("push: Options.Accounts is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sender == nil {
		o.Sender = provider.Log{Logger: o.Logger}
	}
	if o.MessageDelay <= 0 {
		o.MessageDelay = 3 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Hour
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.FallbackLocale == "" {
		o.FallbackLocale = "en"
	}
	if o.AdminLimiter == nil {
		o.AdminLimiter = ratelimit.NewMemory(ratelimit.PerMinute(10))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	s := &Service{db: db, o: o, log: o.Logger, node: uuid.NewString(), wake: make(chan struct{}, 1)}
	if o.Signals != nil {
		o.Signals.OnSignal(signalWake, func(context.Context, []byte) { s.nudge() })
	}
	return s
}

// Start runs the outbox worker until Stop. It returns Stop, for the server's stoppers.
func (s *Service) Start() func(context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		ctx, cancel := context.WithCancel(context.Background())
		s.stop, s.done, s.running = cancel, make(chan struct{}), true
		go func() {
			defer close(s.done)
			s.run(ctx)
		}()
	}
	return s.Stop
}

// Stop ends the worker and waits for its current batch (bounded by ctx). Rows it had claimed but
// not finished are taken again by a worker when their lease runs out.
func (s *Service) Stop(ctx context.Context) {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	stop, done := s.stop, s.done
	s.mu.Unlock()
	stop()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Wake makes the workers of every node look for due rows now. Call it after committing a
// transaction that enqueued notifications due at once (calls); without it they are found at the
// next poll.
func (s *Service) Wake(ctx context.Context) {
	if s.o.Signals != nil {
		s.o.Signals.PublishSignal(ctx, signalWake, nil)
		return
	}
	s.nudge()
}

func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Service) internal(op string, err error) error {
	return fmt.Errorf("push: %s: %w", op, err)
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// FromConfig fills the outbox settings of o from the configuration.
func FromConfig(cfg config.Config, o Options) Options {
	o.MessageDelay, o.PollInterval, o.Lease = cfg.PushMessageDelay, cfg.PushPollInterval, cfg.PushLease
	o.MaxAttempts, o.Concurrency, o.FallbackLocale = cfg.PushMaxAttempts, cfg.PushConcurrency, cfg.PushFallbackLocale
	o.Retention = cfg.PushRetention
	if cfg.RateLimits {
		o.AdminLimiter = ratelimit.NewMemory(ratelimit.PerMinute(max(cfg.PushAdminSendsPerMin, 1)))
	} else {
		o.AdminLimiter = ratelimit.Noop{}
	}
	return o
}

// SessionDevicesRemover returns the auth.Options.OnSessionsRevoked hook: the devices registered
// by revoked sessions are removed. It needs only the database, so it can be wired before the
// Service exists.
func SessionDevicesRemover(db *store.DB, log *slog.Logger) func(ctx context.Context, userID string, sessionIDs []string) {
	s := &Service{db: db, log: log}
	return s.SessionsRevoked
}

// VAPIDKeys returns the Web Push VAPID key pair (base64url, as browsers and RFC 8292 want them):
// generated with generate by the first node and kept in the database, so every node and every
// restart sign with the same key and browsers' subscriptions stay valid. generate nil = P-256
// keys made here.
func VAPIDKeys(ctx context.Context, db *store.DB, generate func() (public, private string, err error)) (public, private string, err error) {
	if generate == nil {
		generate = generateVAPIDKeys
	}
	v, err := db.Setting(ctx, "webpush_vapid_keys", func() (string, error) {
		pub, priv, err := generate()
		if err != nil {
			return "", err
		}
		return pub + " " + priv, nil
	})
	if err != nil {
		return "", "", fmt.Errorf("push: vapid keys: %w", err)
	}
	public, private, ok := strings.Cut(v, " ")
	if !ok {
		return "", "", errors.New("push: vapid keys: malformed server setting webpush_vapid_keys")
	}
	return public, private, nil
}

func generateVAPIDKeys() (public, private string, err error) {
	k, err := ecdh.P256().GenerateKey(crand.Reader)
	if err != nil {
		return "", "", err
	}
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(k.Bytes()), nil
}
