package call

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nerutalk/nerutalk/internal/store"
)

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

const callCols = `id, chat_id, kind, status, initiator_id, provider, channel, is_group, created_at, ring_deadline,
	answered_at, ended_at, ended_by, end_reason, version`

type scanner interface{ Scan(dest ...any) error }

func scanCall(s scanner) (Call, error) {
	var c Call
	var created, deadline int64
	var answered, ended sql.NullInt64
	var endedBy, reason sql.NullString
	if err := s.Scan(&c.ID, &c.ChatID, &c.Kind, &c.Status, &c.InitiatorID, &c.Provider, &c.Channel, &c.Group,
		&created, &deadline, &answered, &ended, &endedBy, &reason, &c.Version); err != nil {
		return Call{}, err
	}
	c.CreatedAt, c.RingDeadline = store.Time(created), store.Time(deadline)
	c.AnsweredAt, c.EndedAt = optTime(answered), optTime(ended)
	c.EndedBy, c.EndReason = endedBy.String, reason.String
	c.Participants = []Participant{}
	return c, nil
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.Time(v.Int64)
	return &t
}

func optMillis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return store.Millis(*t)
}

// duration fills DurationS: from the first answer to the end, or to now while active.
func (c *Call) duration(now time.Time) {
	c.DurationS = 0
	if c.AnsweredAt == nil {
		return
	}
	end := now
	if c.EndedAt != nil {
		end = *c.EndedAt
	}
	if d := end.Sub(*c.AnsweredAt); d > 0 {
		c.DurationS = int64(d / time.Second)
	}
}

func getCall(ctx context.Context, q querier, id string) (Call, error) {
	c, err := scanCall(q.QueryRowContext(ctx, `SELECT `+callCols+` FROM calls WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Call{}, fmt.Errorf("call %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Call{}, fmt.Errorf("call %s: %w", id, err)
	}
	if err := loadParticipants(ctx, q, []*Call{&c}); err != nil {
		return Call{}, err
	}
	return c, nil
}

// lockLive is the first statement of every transition: one conditional UPDATE that takes the
// call's row lock (PostgreSQL; on SQLite the single writer serialises) and only matches a call
// that is still ringing or active. cond adds conditions, e.g. "AND ring_deadline <= $2".
func lockLive(ctx context.Context, tx *sql.Tx, id, cond string, args ...any) (Call, error) {
	c, err := scanCall(tx.QueryRowContext(ctx, `UPDATE calls SET version = version + 1
		WHERE id = $1 AND status IN ('ringing', 'active') `+cond+` RETURNING `+callCols, append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return Call{}, errNotLive
	}
	if err != nil {
		return Call{}, fmt.Errorf("lock call %s: %w", id, err)
	}
	if err := loadParticipants(ctx, tx, []*Call{&c}); err != nil {
		return Call{}, err
	}
	return c, nil
}

var errNotLive = errors.New("call: not ringing or active")

func loadParticipants(ctx context.Context, q querier, calls []*Call) error {
	if len(calls) == 0 {
		return nil
	}
	byID := make(map[string]*Call, len(calls))
	args := make([]any, len(calls))
	marks := make([]string, len(calls))
	for i, c := range calls {
		byID[c.ID] = c
		c.Participants = []Participant{}
		args[i] = c.ID
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	rows, err := q.QueryContext(ctx, `SELECT call_id, user_id, uid, state, session_id, joined_at, left_at
		FROM call_participants WHERE call_id IN (`+strings.Join(marks, ",")+`) ORDER BY call_id, uid`, args...)
	if err != nil {
		return fmt.Errorf("call participants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var callID string
		var p Participant
		var uid int64
		var joined, left sql.NullInt64
		if err := rows.Scan(&callID, &p.UserID, &uid, &p.State, &p.SessionID, &joined, &left); err != nil {
			return fmt.Errorf("call participants: %w", err)
		}
		p.UID, p.JoinedAt, p.LeftAt = uint32(uid), optTime(joined), optTime(left)
		c := byID[callID]
		c.Participants = append(c.Participants, p)
	}
	return rows.Err()
}

func insertCall(ctx context.Context, tx *sql.Tx, c *Call) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO calls (id, chat_id, kind, status, initiator_id, provider, channel,
		is_group, created_at, ring_deadline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		c.ID, c.ChatID, c.Kind, c.Status, c.InitiatorID, c.Provider, c.Channel, c.Group,
		store.Millis(c.CreatedAt), store.Millis(c.RingDeadline)); err != nil {
		return err
	}
	return insertParticipants(ctx, tx, c.ID, c.Participants)
}

// participantBatch rows per INSERT: a group call rings for up to the chat's members (1000 by
// default), 7 parameters a row, well under both engines' parameter limits.
const participantBatch = 200

// insertParticipants writes a new call's participants, participantBatch rows per statement.
func insertParticipants(ctx context.Context, tx *sql.Tx, callID string, ps []Participant) error {
	for len(ps) > 0 {
		n := min(len(ps), participantBatch)
		rows := make([]string, n)
		args := make([]any, 0, 7*n)
		for i, p := range ps[:n] {
			k := len(args)
			rows[i] = fmt.Sprintf("($%d, $%d, $%d, $%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6, k+7)
			args = append(args, callID, p.UserID, int64(p.UID), p.State, p.SessionID, optMillis(p.JoinedAt), optMillis(p.LeftAt))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO call_participants (call_id, user_id, uid, state, session_id, joined_at, left_at)
			VALUES `+strings.Join(rows, ", "), args...); err != nil {
			return err
		}
		ps = ps[n:]
	}
	return nil
}

func insertParticipant(ctx context.Context, tx *sql.Tx, callID string, p Participant) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO call_participants (call_id, user_id, uid, state, session_id, joined_at, left_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, callID, p.UserID, int64(p.UID), p.State, p.SessionID,
		optMillis(p.JoinedAt), optMillis(p.LeftAt))
	return err
}

// liveCallOfChat returns the id of the chat's ringing or active call.
func liveCallOfChat(ctx context.Context, q querier, chatID string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM calls WHERE chat_id = $1 AND status IN ('ringing', 'active')`, chatID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", store.ErrNotFound
	}
	return id, err
}

// setParticipant changes one participant's row, only from one of the states in from (the
// transition's condition).
func setParticipant(ctx context.Context, tx *sql.Tx, callID string, p Participant, from ...string) (bool, error) {
	marks := make([]string, len(from))
	args := []any{callID, p.UserID, p.State, p.SessionID, optMillis(p.JoinedAt), optMillis(p.LeftAt)}
	for i, s := range from {
		marks[i] = fmt.Sprintf("$%d", len(args)+1)
		args = append(args, s)
	}
	res, err := tx.ExecContext(ctx, `UPDATE call_participants SET state = $3, session_id = $4, joined_at = $5, left_at = $6
		WHERE call_id = $1 AND user_id = $2 AND state IN (`+strings.Join(marks, ",")+`)`, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// setCall writes the call's status columns, only while it is still live (the transition holds
// the row lock already; the condition keeps the statement honest on its own).
func setCall(ctx context.Context, tx *sql.Tx, c *Call) error {
	var endedBy any
	if c.EndedBy != "" {
		endedBy = c.EndedBy
	}
	var reason any
	if c.EndReason != "" {
		reason = c.EndReason
	}
	res, err := tx.ExecContext(ctx, `UPDATE calls SET status = $2, answered_at = $3, ended_at = $4, ended_by = $5, end_reason = $6
		WHERE id = $1 AND status IN ('ringing', 'active')`,
		c.ID, c.Status, optMillis(c.AnsweredAt), optMillis(c.EndedAt), endedBy, reason)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("call %s: status update matched %d rows: %w", c.ID, n, err)
	}
	return nil
}
