package location

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/location/geo"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/store"
)

// The server events this package publishes.
const (
	EventShareStart    = "location_share_start"
	EventShareStop     = "location_share_stop"
	EventSharedUpdate  = "shared_location_update"
	EventGeofenceEvent = "geofence_event"
)

// Publisher delivers events to the WebSocket connections of users on every node; the realtime
// hub satisfies it. It must not block on slow connections.
type Publisher interface {
	PublishUsers(ctx context.Context, userIDs []string, typ string, data any)
}

// Chats is what location needs to know of chats; the chat service satisfies it.
type Chats interface {
	// Membership returns the chat's members if userID is one of them, else an apperr not-found
	// error. It reflects a removal at once on the node that made it and within the bus's delay on
	// others.
	Membership(ctx context.Context, chatID, userID string) (group, manager bool, members []string, err error)
	// Contacts returns the users who share at least one chat with userID.
	Contacts(ctx context.Context, userID string) ([]string, error)
}

// Blocks tells which users have a block either way with a user (chat's BlockedAmong, read from
// the database so that a block holds on every node at once): location is never exchanged between
// them — shares do not reach them, nearby leaves them out.
type Blocks interface {
	BlockedAmong(ctx context.Context, userID string, ids []string) (map[string]bool, error)
}

// Notifier reaches users outside the WebSocket (push notifications): it is told of every
// geofence event with the users allowed to know of it, and of every new share with its viewers.
// Both are called after the change is stored. It must not block for long.
type Notifier interface {
	GeofenceEvent(ctx context.Context, ev GeofenceEvent, recipients []string)
	ShareStarted(ctx context.Context, sh LocationShare, viewers []string)
}

// Clock is the time source, injected so that tests move time by hand.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Options configures a Service.
type Options struct {
	// HistoryEvery: at most one stored history point per user per this interval (config
	// LocationHistoryEvery; default 1 s). The latest position is updated by every report.
	HistoryEvery time.Duration
	// ExpiryEvery is how often the expiry job looks for shares past their end (default 1 s).
	ExpiryEvery time.Duration
	// PruneEvery is how often history past its retention is deleted (default 1 h).
	PruneEvery time.Duration
	// GeofenceMaxAccuracyM: a fix less accurate than this causes no enter/exit (default 100 m).
	GeofenceMaxAccuracyM float64
	// GeofenceExitMarginM: how far beyond the boundary a fix must be to exit (default 25 m; or the
	// fix's accuracy radius when that is larger).
	GeofenceExitMarginM float64
	Clock               Clock
	Logger              *slog.Logger
	Chats               Chats    // nil: shares with chats are refused
	Notifier            Notifier // nil: nobody besides the WebSocket
	Blocks              Blocks   // nil: no blocks
	// WriteLimiter counts the location writes each user makes over REST (position reports,
	// settings, shares, history deletion, geofence changes together; key "location-write:<user>"),
	// at the WebSocket's frame rate, which limits the location_update command per connection; nil
	// = unlimited. Each report is a write transaction that may reach every viewer of the user's
	// shares and evaluate their geofences.
	WriteLimiter ratelimit.Limiter
}

// Service is the location feature: positions, shares, nearby, history and geofences.
type Service struct {
	db    *store.DB
	pub   Publisher
	opts  Options
	log   *slog.Logger
	rules geo.Rules
	clock Clock

	fences fenceCache
	stmts  stmtCache

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// New builds the service; Start runs its background jobs.
func New(db *store.DB, pub Publisher, o Options) *Service {
	if o.HistoryEvery <= 0 {
		o.HistoryEvery = time.Second
	}
	if o.ExpiryEvery <= 0 {
		o.ExpiryEvery = time.Second
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = time.Hour
	}
	if o.GeofenceMaxAccuracyM <= 0 {
		o.GeofenceMaxAccuracyM = 100
	}
	if o.GeofenceExitMarginM <= 0 {
		o.GeofenceExitMarginM = 25
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		db: db, pub: pub, opts: o, log: o.Logger, clock: o.Clock,
		rules:  geo.Rules{MaxAccuracyM: o.GeofenceMaxAccuracyM, ExitMarginM: o.GeofenceExitMarginM},
		fences: fenceCache{m: map[fenceKey]*geo.Fence{}},
		stmts:  stmtCache{m: map[stmtKey]*sql.Stmt{}},
		stop:   make(chan struct{}),
	}
}

// Start runs the background jobs (share expiry every ExpiryEvery, history pruning every
// PruneEvery) until the returned function is called. Both are safe on many nodes: expiry is a
// conditional UPDATE (each share expires once), pruning a DELETE.
func (s *Service) Start() func(context.Context) {
	s.wg.Add(2)
	go s.every(s.opts.ExpiryEvery, func(ctx context.Context) error {
		_, err := s.ExpireDue(ctx)
		return err
	})
	go s.every(s.opts.PruneEvery, func(ctx context.Context) error {
		_, err := s.Prune(ctx)
		return err
	})
	return func(context.Context) {
		s.stopOnce.Do(func() { close(s.stop) })
		s.wg.Wait()
	}
}

// stmtCache keeps the prepared statements of the hot path (a position report): SQLite would
// otherwise parse each statement on every call. A *sql.Stmt is safe for concurrent use.
type stmtCache struct {
	mu sync.Mutex
	m  map[stmtKey]*sql.Stmt
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// prepared returns q prepared on db, preparing it on first use.
func (s *Service) prepared(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	k := stmtKey{db, q}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if st, ok := s.stmts.m[k]; ok {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.stmts.m[k] = st
	return st, nil
}

func (s *Service) queryRow(ctx context.Context, db *sql.DB, q string, args ...any) *sql.Row {
	st, err := s.prepared(ctx, db, q)
	if err != nil {
		return db.QueryRowContext(ctx, q, args...) // reports the same error through Scan
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *Service) query(ctx context.Context, db *sql.DB, q string, args ...any) (*sql.Rows, error) {
	st, err := s.prepared(ctx, db, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *Service) exec(ctx context.Context, db *sql.DB, q string, args ...any) (sql.Result, error) {
	st, err := s.prepared(ctx, db, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *Service) every(d time.Duration, job func(ctx context.Context) error) {
	defer s.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := job(ctx); err != nil {
				s.log.Error("location: background job", "err", err)
			}
			cancel()
		}
	}
}

func (s *Service) now() time.Time { return s.clock.Now() }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// validID reports whether id is a UUID, as every id here is: anything else (a NUL byte, which
// PostgreSQL refuses in text) never reaches SQL.
func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

var errBadCursor = apperr.Invalid("query.cursor", "not a cursor of this list")

func (s *Service) internal(what string, err error) error {
	if _, ok := apperr.As(err); ok {
		return err
	}
	return fmt.Errorf("location: %s: %w", what, err)
}

func nullFloat(v *float64) sql.NullFloat64 {
	if v == nil {
		return sql.NullFloat64{}
	}
	return sql.NullFloat64{Float64: *v, Valid: true}
}

func ptrFloat(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	f := v.Float64
	return &f
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.Time(v.Int64)
	return &t
}

// placeholders returns "$from, $from+1, ..." for n values.
func placeholders(from, n int) string {
	b := make([]byte, 0, n*5)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "$%d", from+i)
	}
	return string(b)
}
