package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Session is one signed-in device of the caller.
type Session struct {
	ID         string    `json:"id" doc:"Session id"`
	DeviceName string    `json:"device_name" doc:"The name the client gave, or one derived from its User-Agent" example:"Firefox on Linux"`
	UserAgent  string    `json:"user_agent" doc:"User-Agent header at sign-in"`
	IP         string    `json:"ip" doc:"Client address at sign-in"`
	CreatedAt  time.Time `json:"created_at" doc:"Sign-in time"`
	LastUsedAt time.Time `json:"last_used_at" doc:"Last refresh or authenticated request (to within a minute)"`
	ExpiresAt  time.Time `json:"expires_at" doc:"When the current refresh token expires"`
	Current    bool      `json:"current" doc:"True for the session that made this request"`
}

var (
	errRefreshInvalid = apperr.New(apperr.KindUnauthenticated, "invalid_token", "the refresh token is not valid; sign in again")
	errRefreshReused  = apperr.New(apperr.KindUnauthenticated, "refresh_token_reused",
		"this refresh token was already used; the session has been revoked for safety; sign in again")
	errSessionNotFound = apperr.NotFound("session")
)

// refreshHistoryKeep is how many rotated-out refresh tokens a session remembers for reuse
// detection: presenting one of its last refreshHistoryKeep tokens revokes the session, an older
// one is merely invalid_token. Without the bound a client refreshing in a loop grows
// refresh_history without end (issue 16). Each rotation prunes the session's rows past the
// newest refreshHistoryKeep, at most refreshHistoryPruneBatch of them, so that a session that
// grew long before the bound existed shrinks over its next rotations at a bounded cost each.
const (
	refreshHistoryKeep       = 100
	refreshHistoryPruneBatch = 1000
)

// sessions is the SQL of the sessions and refresh_history tables.
type sessions struct{ db *store.DB }

type newSession struct {
	userID, refreshHash, deviceName, userAgent, ip string
}

// create stores a new session, drops the user's sessions that have expired and, when the user
// would have more than maxLive live sessions, revokes the least recently used ones (last_used_at,
// which is precise to a minute; the older id first on a tie) and returns their ids. At most
// evictBatch are revoked per sign-in.
func (s sessions) create(ctx context.Context, n newSession, now time.Time, ttl time.Duration, maxLive int) (string, []string, error) {
	id := uuid.Must(uuid.NewV7()).String()
	var evicted []string
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		evicted = nil
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND expires_at < $2`, n.userID, store.Millis(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, user_id, refresh_hash, device_name, user_agent, ip, created_at, last_used_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)`,
			id, n.userID, n.refreshHash, n.deviceName, n.userAgent, n.ip, store.Millis(now), store.Millis(now.Add(ttl)))
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE sessions SET revoked_at = $1 WHERE id IN (
			SELECT id FROM sessions WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL AND expires_at > $1
			ORDER BY last_used_at DESC, id DESC LIMIT $4 OFFSET $5) RETURNING id`,
			store.Millis(now), n.userID, id, evictBatch, maxLive-1)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e string
			if err := rows.Scan(&e); err != nil {
				return err
			}
			evicted = append(evicted, e)
		}
		return rows.Err()
	})
	if err != nil {
		return "", nil, fmt.Errorf("auth: create session: %w", err)
	}
	return id, evicted, nil
}

// evictBatch bounds the sessions one sign-in revokes for being over the cap (a user far over it,
// after the cap was lowered, comes down over several sign-ins).
const evictBatch = 1000

// rotated is the outcome of rotate.
type rotated struct {
	sessionID, userID string
	reused            bool // the token had been rotated out already: the session is now revoked
}

// idOf returns the session of a refresh token, current or already rotated (a reuse), without a
// transaction; errRefreshInvalid when it is neither.
func (s sessions) idOf(ctx context.Context, hash string) (string, error) {
	var id string
	err := s.db.R.QueryRowContext(ctx, `SELECT id FROM sessions WHERE refresh_hash = $1`, hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.db.R.QueryRowContext(ctx, `SELECT session_id FROM refresh_history WHERE hash = $1`, hash).Scan(&id)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return "", errRefreshInvalid
	}
	if err != nil {
		return "", fmt.Errorf("auth: refresh session: %w", err)
	}
	return id, nil
}

// rotate replaces the refresh token oldHash by newHash. Exactly one of several concurrent calls
// with the same oldHash succeeds: the UPDATE is conditional on the current hash and its row count
// decides. Presenting a hash that was rotated out before (found in refresh_history), or losing
// that race, is reuse: the session is revoked in the same transaction.
func (s sessions) rotate(ctx context.Context, oldHash, newHash string, now time.Time, ttl time.Duration) (rotated, error) {
	var out rotated
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		out = rotated{}
		var expires int64
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT id, user_id, expires_at, revoked_at FROM sessions WHERE refresh_hash = $1`, oldHash).
			Scan(&out.sessionID, &out.userID, &expires, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, `SELECT s.id, s.user_id FROM refresh_history h JOIN sessions s ON s.id = h.session_id WHERE h.hash = $1`, oldHash).
				Scan(&out.sessionID, &out.userID)
			if errors.Is(err, sql.ErrNoRows) {
				return errRefreshInvalid
			}
			if err != nil {
				return err
			}
			out.reused = true
			return revokeTx(ctx, tx, out.sessionID, now)
		}
		if err != nil {
			return err
		}
		if revoked.Valid || expires <= store.Millis(now) {
			return errRefreshInvalid
		}
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET refresh_hash = $1, last_used_at = $2, expires_at = $3
			WHERE id = $4 AND refresh_hash = $5 AND revoked_at IS NULL`,
			newHash, store.Millis(now), store.Millis(now.Add(ttl)), out.sessionID, oldHash)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 { // a concurrent refresh with the same token won: this one is a reuse
			out.reused = true
			return revokeTx(ctx, tx, out.sessionID, now)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO refresh_history (hash, session_id, rotated_at) VALUES ($1, $2, $3)`,
			oldHash, out.sessionID, store.Millis(now))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM refresh_history WHERE session_id = $1 AND hash IN (
			SELECT hash FROM refresh_history WHERE session_id = $1
			ORDER BY rotated_at DESC, hash DESC LIMIT $2 OFFSET $3)`,
			out.sessionID, refreshHistoryPruneBatch, refreshHistoryKeep)
		return err
	})
	if err != nil {
		if _, ok := apperr.As(err); ok {
			return out, err
		}
		return out, fmt.Errorf("auth: rotate refresh token: %w", err)
	}
	return out, nil
}

func revokeTx(ctx context.Context, tx *sql.Tx, id string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, store.Millis(now), id)
	return err
}

// revokeByToken revokes the session that issued the refresh token with this hash, current or
// rotated out, and returns its id and its user's ("" when no session knows the hash).
func (s sessions) revokeByToken(ctx context.Context, hash string, now time.Time) (id, userID string, err error) {
	err = s.db.W.QueryRowContext(ctx, `SELECT id, user_id FROM sessions WHERE refresh_hash = $1
		UNION SELECT s.id, s.user_id FROM refresh_history h JOIN sessions s ON s.id = h.session_id
		WHERE h.hash = $1`, hash).Scan(&id, &userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("auth: logout: %w", err)
	}
	if _, err := s.db.W.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, store.Millis(now), id); err != nil {
		return "", "", fmt.Errorf("auth: logout: %w", err)
	}
	return id, userID, nil
}

// revoke revokes one live session of userID; a session of someone else, or one already dead,
// is not found.
func (s sessions) revoke(ctx context.Context, userID, id string, now time.Time) error {
	res, err := s.db.W.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1
		WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL AND expires_at > $1`, store.Millis(now), id, userID)
	if err != nil {
		return fmt.Errorf("auth: revoke session: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("auth: revoke session: %w", err)
	}
	if n == 0 {
		return errSessionNotFound
	}
	return nil
}

// revokeOthers revokes every live session of userID except keep and returns their ids.
func (s sessions) revokeOthers(ctx context.Context, userID, keep string, now time.Time) ([]string, error) {
	rows, err := s.db.W.QueryContext(ctx, `UPDATE sessions SET revoked_at = $1
		WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL RETURNING id`, store.Millis(now), userID, keep)
	if err != nil {
		return nil, fmt.Errorf("auth: revoke other sessions: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("auth: revoke other sessions: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: revoke other sessions: %w", err)
	}
	return ids, nil
}

// list returns up to limit live sessions of userID, newest first, older than the id `before`.
func (s sessions) list(ctx context.Context, userID, before string, limit int, now time.Time) ([]Session, error) {
	q := `SELECT id, device_name, user_agent, ip, created_at, last_used_at, expires_at FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2`
	args := []any{userID, store.Millis(now), limit}
	if before != "" {
		q += ` AND id < $4`
		args = append(args, before)
	}
	rows, err := s.db.R.QueryContext(ctx, q+` ORDER BY id DESC LIMIT $3`, args...)
	if err != nil {
		return nil, fmt.Errorf("auth: list sessions: %w", err)
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		var ss Session
		var created, used, expires int64
		if err := rows.Scan(&ss.ID, &ss.DeviceName, &ss.UserAgent, &ss.IP, &created, &used, &expires); err != nil {
			return nil, fmt.Errorf("auth: list sessions: %w", err)
		}
		ss.CreatedAt, ss.LastUsedAt, ss.ExpiresAt = store.Time(created), store.Time(used), store.Time(expires)
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: list sessions: %w", err)
	}
	return out, nil
}

// sessionState is what the Authenticator needs to know about a session.
type sessionState struct {
	userID     string
	admin      bool
	live       bool // exists, not revoked, not expired at the time it was read
	expiresAt  time.Time
	lastUsedAt time.Time
}

// state reads a session with its user's role. An unknown session is returned as not live.
func (s sessions) state(ctx context.Context, id string, now time.Time) (sessionState, error) {
	var st sessionState
	var role string
	var expires, used int64
	var revoked sql.NullInt64
	err := s.db.R.QueryRowContext(ctx, `SELECT s.user_id, u.role, s.expires_at, s.last_used_at, s.revoked_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`, id).Scan(&st.userID, &role, &expires, &used, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("auth: session state: %w", err)
	}
	st.admin = role == RoleAdmin
	st.expiresAt, st.lastUsedAt = store.Time(expires), store.Time(used)
	st.live = !revoked.Valid && st.expiresAt.After(now)
	return st, nil
}

// touch records that the session was used; at most one write per session per minute reaches
// the database (the caller checks lastUsedAt first, the WHERE clause settles races).
func (s sessions) touch(ctx context.Context, id string, now time.Time) error {
	_, err := s.db.W.ExecContext(ctx, `UPDATE sessions SET last_used_at = $1 WHERE id = $2 AND last_used_at < $3`,
		store.Millis(now), id, store.Millis(now.Add(-time.Minute)))
	if err != nil {
		return fmt.Errorf("auth: touch session: %w", err)
	}
	return nil
}

// signedInFrom reports whether a session of userID was started from ip's address (IPv6 by /64,
// as the limits group addresses); the newest 100 sessions are looked at.
func (s sessions) signedInFrom(ctx context.Context, userID, ip string) (bool, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT ip FROM sessions WHERE user_id = $1 ORDER BY created_at DESC LIMIT 100`, userID)
	if err != nil {
		return false, fmt.Errorf("auth: sessions of %s: %w", userID, err)
	}
	defer rows.Close()
	want := ipKey(ip)
	for rows.Next() {
		var got string
		if err := rows.Scan(&got); err != nil {
			return false, fmt.Errorf("auth: sessions of %s: %w", userID, err)
		}
		if got != "" && ipKey(got) == want {
			return true, nil
		}
	}
	return false, rows.Err()
}
