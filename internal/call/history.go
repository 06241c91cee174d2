package call

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// HistoryQuery filters GET /calls.
type HistoryQuery struct {
	ChatID string
	Status string
	Limit  int
	Cursor string
}

var errBadCursor = apperr.Invalid("query.cursor", "not a cursor of this list")

// History lists the calls the user was part of (invited included), newest first.
func (s *Service) History(ctx context.Context, userID string, q HistoryQuery) ([]Call, string, error) {
	if q.Limit <= 0 || q.Limit > 200 {
		q.Limit = 50
	}
	after := ""
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || !strings.HasPrefix(string(raw), "k1:") || !validID(string(raw[3:])) {
			return nil, "", errBadCursor
		}
		after = string(raw[3:])
	}
	if q.ChatID != "" && !validID(q.ChatID) {
		return nil, "", apperr.Invalid("query.chat_id", "not a valid id")
	}
	switch q.Status {
	case "", StatusRinging, StatusActive, StatusEnded, StatusMissed, StatusDeclined:
	default:
		return nil, "", apperr.Invalid("query.status", "ringing, active, ended, missed or declined")
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT `+prefixed("c.", callCols)+` FROM calls c
		JOIN call_participants p ON p.call_id = c.id AND p.user_id = $1
		WHERE ($2 = '' OR c.chat_id = $2) AND ($3 = '' OR c.status = $3) AND ($4 = '' OR c.id < $4)
		ORDER BY c.id DESC LIMIT $5`, userID, q.ChatID, q.Status, after, q.Limit+1)
	if err != nil {
		return nil, "", s.internal("history", err)
	}
	var calls []*Call
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			rows.Close()
			return nil, "", s.internal("history", err)
		}
		calls = append(calls, &c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", s.internal("history", err)
	}
	next := ""
	if len(calls) > q.Limit {
		calls = calls[:q.Limit]
		next = base64.RawURLEncoding.EncodeToString([]byte("k1:" + calls[len(calls)-1].ID))
	}
	if err := loadParticipants(ctx, s.db.R, calls); err != nil {
		return nil, "", s.internal("history", err)
	}
	now := s.now()
	out := make([]Call, len(calls))
	for i, c := range calls {
		c.duration(now)
		out[i] = *c
	}
	return out, next, nil
}

// Queries are the reads call exports to other features, over its own tables. They need only the
// database, so chat (built before calls) is given them at construction.
type Queries struct{ DB *store.DB }

// LiveCalls maps each of chatIDs that has a ringing or active call to the call's id (a chat's
// active_call).
func (q Queries) LiveCalls(ctx context.Context, chatIDs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(chatIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(chatIDs))
	marks := make([]string, len(chatIDs))
	for i, id := range chatIDs {
		args[i], marks[i] = id, fmt.Sprintf("$%d", i+1)
	}
	rows, err := q.DB.R.QueryContext(ctx, `SELECT chat_id, id FROM calls WHERE status IN ('ringing', 'active')
		AND chat_id IN (`+strings.Join(marks, ",")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("call: live calls: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var chatID, id string
		if err := rows.Scan(&chatID, &id); err != nil {
			return nil, fmt.Errorf("call: live calls: %w", err)
		}
		out[chatID] = id
	}
	return out, rows.Err()
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// StatsQuery is the period of GET /calls/stats: calls created in [From, To).
type StatsQuery struct {
	From, To time.Time
}

// Stats counts the calls created in the period: the user's own calls (those they were part of),
// or every call for an admin.
func (s *Service) Stats(ctx context.Context, userID string, admin bool, q StatsQuery) (Stats, error) {
	if !q.From.Before(q.To) {
		return Stats{}, apperr.Invalid("query.from", "must be before to")
	}
	st := Stats{From: q.From.UTC(), To: q.To.UTC(), Scope: "own", ByStatus: map[string]int64{}, ByKind: map[string]int64{},
		ByEndReason: map[string]int64{}}
	if admin {
		st.Scope = "all"
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT c.status, c.kind, COALESCE(c.end_reason, ''), COUNT(*),
		SUM(CASE WHEN c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL THEN 1 ELSE 0 END),
		SUM(CASE WHEN c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL THEN c.ended_at - c.answered_at ELSE 0 END)
		FROM calls c WHERE c.created_at >= $1 AND c.created_at < $2
		AND ($3 OR EXISTS (SELECT 1 FROM call_participants p WHERE p.call_id = c.id AND p.user_id = $4))
		GROUP BY c.status, c.kind, COALESCE(c.end_reason, '')`, store.Millis(q.From), store.Millis(q.To), admin, userID)
	if err != nil {
		return Stats{}, s.internal("stats", err)
	}
	defer rows.Close()
	var totalMs int64
	for rows.Next() {
		var status, kind, reason string
		var n, answered, ms int64
		if err := rows.Scan(&status, &kind, &reason, &n, &answered, &ms); err != nil {
			return Stats{}, s.internal("stats", fmt.Errorf("scan: %w", err))
		}
		st.Total += n
		st.ByStatus[status] += n
		st.ByKind[kind] += n
		if reason != "" {
			st.ByEndReason[reason] += n
		}
		st.Answered += answered
		totalMs += ms
	}
	if err := rows.Err(); err != nil {
		return Stats{}, s.internal("stats", err)
	}
	st.TotalDurationS = totalMs / 1000
	if st.Answered > 0 {
		st.AverageDurationS = float64(totalMs) / 1000 / float64(st.Answered)
	}
	return st, nil
}
