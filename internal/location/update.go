package location

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/nerutalk/nerutalk/internal/location/geo"
	"github.com/nerutalk/nerutalk/internal/store"
)

// upsertPosition stores a report as the latest position unless a newer one is stored (then it
// returns no row), and moves history_at to it when a history point is due: retention is not 0
// and the last stored point is at least HistoryEvery older. One statement, so two nodes taking
// reports of the same user at once cannot both win nor both store a point. It also tells whether
// the user has active shares and geofences, so that a report of a user with neither costs this
// one statement.
const upsertPosition = `INSERT INTO location_users
	(user_id, has_position, lat, lng, accuracy_m, heading, speed, recorded_at, cell, history_at)
	VALUES ($1, TRUE, $2, $3, $4, $5, $6, $7, $8, $7)
	ON CONFLICT (user_id) DO UPDATE SET has_position = TRUE, lat = excluded.lat, lng = excluded.lng,
		accuracy_m = excluded.accuracy_m, heading = excluded.heading, speed = excluded.speed,
		recorded_at = excluded.recorded_at, cell = excluded.cell,
		history_at = CASE WHEN location_users.retention_days > 0 AND excluded.recorded_at - location_users.history_at >= $9
			THEN excluded.recorded_at ELSE location_users.history_at END
	WHERE NOT location_users.has_position OR location_users.recorded_at < excluded.recorded_at
	RETURNING history_at, retention_days,
		EXISTS (SELECT 1 FROM location_shares WHERE owner_id = $1 AND status = 'active'),
		EXISTS (SELECT 1 FROM geofences WHERE user_id = $1)`

const insertHistory = `INSERT INTO location_history (user_id, recorded_at, lat, lng, accuracy_m, heading, speed)
	VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`

// Update takes one position report of userID. A report older than the stored position is
// ignored (Accepted false, not an error). Otherwise it becomes the latest position (what viewers
// see: every active share's viewers get shared_location_update), is stored in the history when
// the throttle allows, and is checked against the user's geofences. prefix names the fields in
// validation errors ("body." for REST).
func (s *Service) Update(ctx context.Context, userID string, in PositionReport, prefix string) (ReportResult, error) {
	now := s.now()
	if err := in.validate(prefix, now); err != nil {
		return ReportResult{}, err
	}
	at := now
	if in.RecordedAt != nil {
		at = *in.RecordedAt
	}
	atMs := store.Millis(at)
	p := geo.Point{Lat: in.Lat, Lng: in.Lng}
	// Prepared before the transaction: on SQLite the transaction holds the only write connection.
	upsert, err := s.prepared(ctx, s.db.W, upsertPosition)
	if err != nil {
		return ReportResult{}, s.internal("store position", err)
	}
	history, err := s.prepared(ctx, s.db.W, insertHistory)
	if err != nil {
		return ReportResult{}, s.internal("store position", err)
	}
	var accepted, sharing, fenced bool
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var historyAt int64
		var retention int
		err := tx.StmtContext(ctx, upsert).QueryRowContext(ctx, userID, in.Lat, in.Lng, nullFloat(in.AccuracyM),
			nullFloat(in.Heading), nullFloat(in.Speed), atMs, geo.LeafKey(p), s.opts.HistoryEvery.Milliseconds(),
		).Scan(&historyAt, &retention, &sharing, &fenced)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		accepted = true
		if historyAt != atMs || retention == 0 {
			return nil
		}
		_, err = tx.StmtContext(ctx, history).ExecContext(ctx, userID, atMs, in.Lat, in.Lng, nullFloat(in.AccuracyM), nullFloat(in.Heading), nullFloat(in.Speed))
		return err
	})
	if err != nil {
		return ReportResult{}, s.internal("store position", err)
	}
	if !accepted {
		return ReportResult{Accepted: false}, nil
	}
	pos := Position{Lat: in.Lat, Lng: in.Lng, AccuracyM: in.AccuracyM, Heading: in.Heading, Speed: in.Speed, RecordedAt: store.Time(atMs)}
	// Without an active share nobody sees the position: no shares to read.
	aud := &audience{s: s, owner: userID, now: now, loaded: !sharing}
	if err := s.fanOut(ctx, aud, pos); err != nil {
		return ReportResult{}, err
	}
	if !fenced {
		return ReportResult{Accepted: true}, nil
	}
	acc := 0.0
	if in.AccuracyM != nil {
		acc = *in.AccuracyM
	}
	if err := s.checkFences(ctx, aud, geo.Fix{Point: p, AccuracyM: acc, At: store.Time(atMs)}); err != nil {
		return ReportResult{}, err
	}
	return ReportResult{Accepted: true}, nil
}

// audience lazily finds, once per report, who may see the owner's location.
type audience struct {
	s      *Service
	owner  string
	now    time.Time
	loaded bool
	shares []shareViewers
}

type shareViewers struct {
	LocationShare
	viewers []string
}

func (a *audience) load(ctx context.Context) ([]shareViewers, error) {
	if a.loaded {
		return a.shares, nil
	}
	shares, err := a.s.activeShares(ctx, `owner_id = $1`, a.owner, a.now)
	if err != nil {
		return nil, err
	}
	for _, sh := range shares {
		v, err := a.s.viewers(ctx, sh)
		if err != nil {
			return nil, err
		}
		if len(v) > 0 {
			a.shares = append(a.shares, shareViewers{LocationShare: sh, viewers: v})
		}
	}
	a.loaded = true
	return a.shares, nil
}

// exactViewers are the users who see the owner's exact location now.
func (a *audience) exactViewers(ctx context.Context) ([]string, error) {
	shares, err := a.load(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, sh := range shares {
		if sh.Precision != PrecisionExact {
			continue
		}
		for _, u := range sh.viewers {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out, nil
}

// fanOut sends the position to the viewers of every active share, as each share's precision
// shows it.
func (s *Service) fanOut(ctx context.Context, a *audience, pos Position) error {
	shares, err := a.load(ctx)
	if err != nil {
		return err
	}
	for _, sh := range shares {
		s.pub.PublishUsers(ctx, sh.viewers, EventSharedUpdate,
			SharedLocation{ShareID: sh.ID, UserID: sh.OwnerID, Precision: sh.Precision, Position: pos.view(sh.Precision)})
	}
	return nil
}

// latest returns userID's latest position, or nil.
func (s *Service) latest(ctx context.Context, q *sql.DB, userID string) (*Position, LocationSettings, error) {
	var has bool
	var p Position
	var acc, heading, speed sql.NullFloat64
	var at int64
	set := LocationSettings{HistoryRetentionDays: DefaultRetentionDays}
	err := q.QueryRowContext(ctx, `SELECT has_position, lat, lng, accuracy_m, heading, speed, recorded_at, discoverable, retention_days
		FROM location_users WHERE user_id = $1`, userID).Scan(&has, &p.Lat, &p.Lng, &acc, &heading, &speed, &at,
		&set.Discoverable, &set.HistoryRetentionDays)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, set, nil
	}
	if err != nil {
		return nil, set, s.internal("read position", err)
	}
	if !has {
		return nil, set, nil
	}
	p.AccuracyM, p.Heading, p.Speed, p.RecordedAt = ptrFloat(acc), ptrFloat(heading), ptrFloat(speed), store.Time(at)
	return &p, set, nil
}

// MyLocation returns the caller's latest position and settings.
func (s *Service) Me(ctx context.Context, userID string) (MyLocation, error) {
	p, set, err := s.latest(ctx, s.db.W, userID)
	return MyLocation{Location: p, LocationSettings: set}, err
}
