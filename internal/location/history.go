package location

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// SetSettings changes the caller's settings; absent fields keep their value. Lowering the
// retention deletes the points past it at once (0: every point).
func (s *Service) SetSettings(ctx context.Context, userID string, in LocationSettingsInput) (LocationSettings, error) {
	if in.HistoryRetentionDays != nil && (*in.HistoryRetentionDays < 0 || *in.HistoryRetentionDays > MaxRetentionDays) {
		return LocationSettings{}, apperr.Invalid("body.history_retention_days", "must be from 0 to 365")
	}
	var out LocationSettings
	err := s.db.W.QueryRowContext(ctx, `INSERT INTO location_users (user_id, discoverable, retention_days)
		VALUES ($1, COALESCE($2, FALSE), COALESCE($3, 7))
		ON CONFLICT (user_id) DO UPDATE SET discoverable = COALESCE($2, location_users.discoverable),
			retention_days = COALESCE($3, location_users.retention_days)
		RETURNING discoverable, retention_days`, userID, in.Discoverable, in.HistoryRetentionDays).
		Scan(&out.Discoverable, &out.HistoryRetentionDays)
	if err != nil {
		return LocationSettings{}, s.internal("settings", err)
	}
	if in.HistoryRetentionDays != nil {
		cutoff := store.Millis(s.now()) - int64(out.HistoryRetentionDays)*int64(24*time.Hour/time.Millisecond)
		if out.HistoryRetentionDays == 0 {
			cutoff = 1<<63 - 1
		}
		if _, err := s.db.W.ExecContext(ctx, `DELETE FROM location_history WHERE user_id = $1 AND recorded_at < $2`, userID, cutoff); err != nil {
			return LocationSettings{}, s.internal("settings", err)
		}
	}
	return out, nil
}

// HistoryQuery selects stored points by recorded_at.
type HistoryQuery struct {
	From, To time.Time // zero: unbounded
	Limit    int
	Cursor   string
}

// History returns the caller's own stored points in the range, oldest first, and the cursor of
// the next page ("" at the end).
func (s *Service) History(ctx context.Context, userID string, q HistoryQuery) ([]Position, string, error) {
	from, to := int64(-1<<63), int64(1<<63-1)
	if !q.From.IsZero() {
		from = store.Millis(q.From)
	}
	if !q.To.IsZero() {
		to = store.Millis(q.To)
	}
	if from > to {
		return nil, "", apperr.Invalid("query.from", "must not be after to")
	}
	if q.Cursor != "" {
		c, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil {
			return nil, "", errBadCursor
		}
		from = max(from, c+1)
	}
	limit := q.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT recorded_at, lat, lng, accuracy_m, heading, speed FROM location_history
		WHERE user_id = $1 AND recorded_at >= $2 AND recorded_at <= $3 ORDER BY recorded_at LIMIT $4`, userID, from, to, limit+1)
	if err != nil {
		return nil, "", s.internal("history", err)
	}
	defer rows.Close()
	out := []Position{}
	for rows.Next() {
		var p Position
		var at int64
		var acc, heading, speed sql.NullFloat64
		if err := rows.Scan(&at, &p.Lat, &p.Lng, &acc, &heading, &speed); err != nil {
			return nil, "", s.internal("history", err)
		}
		p.AccuracyM, p.Heading, p.Speed, p.RecordedAt = ptrFloat(acc), ptrFloat(heading), ptrFloat(speed), store.Time(at)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.internal("history", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(store.Millis(out[limit-1].RecordedAt), 10)
	}
	return out, next, nil
}

// DeleteHistory deletes every stored point of the caller.
func (s *Service) DeleteHistory(ctx context.Context, userID string) error {
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM location_history WHERE user_id = $1`, userID); err != nil {
		return s.internal("delete history", err)
	}
	return nil
}

// Keep ended shares and geofence events this long.
const keepEnded = 30 * 24 * time.Hour

// Prune deletes the history points past their owner's retention, and ended shares and geofence
// events older than 30 days. It is a set of DELETEs in batches: running it on several nodes at
// once is harmless.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	now := store.Millis(s.now())
	var total int64
	for {
		res, err := s.db.W.ExecContext(ctx, `DELETE FROM location_history WHERE (user_id, recorded_at) IN (
			SELECT h.user_id, h.recorded_at FROM location_history h JOIN location_users u ON u.user_id = h.user_id
			WHERE h.recorded_at < $1 - u.retention_days * CAST(86400000 AS BIGINT) LIMIT 5000)`, now)
		if err != nil {
			return total, s.internal("prune history", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < 5000 {
			break
		}
	}
	old := now - keepEnded.Milliseconds()
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM location_shares WHERE status <> 'active' AND ended_at < $1`, old); err != nil {
		return total, s.internal("prune shares", err)
	}
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM geofence_events WHERE at < $1`, old); err != nil {
		return total, s.internal("prune geofence events", err)
	}
	return total, nil
}
