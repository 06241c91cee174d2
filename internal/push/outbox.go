package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nerutalk/nerutalk/internal/store"
)

// Notification types.
const (
	TypeMessage       = "message"        // one new message
	TypeMessages      = "messages"       // several, collapsed (count > 1)
	TypeMention       = "mention"        // a message naming the user (@username)
	TypeMessageHidden = "message_hidden" // previews off
	TypeMentionHidden = "mention_hidden" // previews off
	TypeCall          = "call"           // incoming call (high priority; VoIP on iOS)
	TypeCallCancel    = "call_cancel"    // the call was answered elsewhere, declined, missed or ended
	TypeGeofenceEnter = "geofence_enter" // someone entered a geofence
	TypeGeofenceExit  = "geofence_exit"  // someone left a geofence
	TypeLocation      = "location_share" // someone started sharing their location
	TypeAdmin         = "admin"          // POST /notifications/send and /broadcast: literal title and body
)

// Payload is what a notification carries: the values its template is rendered with and the data
// handed to the app.
type Payload struct {
	SenderID string            `json:"sender_id,omitempty"` // resolved to Sender (display name) when expanded
	Sender   string            `json:"sender,omitempty"`
	Chat     string            `json:"chat,omitempty"` // chat title ("" for a direct chat: the sender's name is used)
	ChatType string            `json:"chat_type,omitempty"`
	Preview  string            `json:"preview,omitempty"`
	Title    string            `json:"title,omitempty"` // TypeAdmin: the literal texts
	Body     string            `json:"body,omitempty"`
	Priority string            `json:"priority,omitempty"` // "high" for calls
	TTL      int               `json:"ttl,omitempty"`      // seconds; 0 = the provider's default
	Data     map[string]string `json:"data,omitempty"`
}

// Notification is one notification for one user, written with Enqueue in the caller's
// transaction.
type Notification struct {
	UserID string
	Type   string
	ChatID string // messages: the chat (for the per-chat preferences and the acknowledgement check)
	Seq    int64  // messages: the latest seq it announces
	Count  int    // messages it stands for (0 = 1)
	// Mentioned marks a message that names the user (mentions-only chats still notify).
	Mentioned bool
	Payload   Payload
	// CollapseKey: a queued notification of the same user and key absorbs this one (count added,
	// payload replaced) instead of a second row. "" = never collapsed.
	CollapseKey string
	Delay       time.Duration // how long before it may be sent
	// Broadcast segments: only devices of this platform / whose locale starts with this.
	PlatformFilter, LocaleFilter string
}

type outboxRow struct {
	ID, UserID, DeviceID, ParentID, Type, ChatID string
	Seq                                          int64
	Count                                        int
	Mentioned                                    bool
	Payload                                      string
	CollapseKey, Provider                        string
	PlatformFilter, LocaleFilter                 string
	Attempts                                     int
	NextAttemptAt, CreatedAt                     int64
}

const outboxInsertCols = `id, user_id, device_id, parent_id, type, chat_id, seq, count, mentioned, payload, collapse_key,
	provider, platform_filter, locale_filter, status, attempts, next_attempt_at, created_at, updated_at`

const outboxInsertArgs = 17 // placeholders per row (status and updated_at are derived)

// execer is a transaction or a database.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// insertOutbox writes rows in multi-row statements. With collapse, a row meeting a queued
// notification of the same user and collapse key merges into it. Rows of one call must not
// share (user, collapse key).
//
// Statements carry at most insertChunk rows: SQLite looks up each $N parameter by name in a list
// (linear), so a statement with thousands of parameters costs quadratic time to prepare; the
// statement of a full chunk is prepared once per call.
func insertOutbox(ctx context.Context, ex execer, rows []outboxRow, collapse bool) error {
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for len(rows) > 0 {
		n := min(len(rows), insertChunk)
		args := make([]any, 0, n*outboxInsertArgs)
		for _, r := range rows[:n] {
			args = append(args, r.ID, r.UserID, nullable(r.DeviceID), nullable(r.ParentID), r.Type, nullable(r.ChatID), r.Seq,
				max(r.Count, 1), r.Mentioned, r.Payload, nullable(r.CollapseKey), r.Provider, r.PlatformFilter, r.LocaleFilter,
				r.Attempts, r.NextAttemptAt, r.CreatedAt)
		}
		var err error
		if n == insertChunk && len(rows) > insertChunk {
			if full == nil {
				if full, err = ex.PrepareContext(ctx, insertSQL(n, collapse)); err != nil {
					return fmt.Errorf("push: outbox insert: %w", err)
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = ex.ExecContext(ctx, insertSQL(n, collapse), args...)
		}
		if err != nil {
			return fmt.Errorf("push: outbox insert: %w", err)
		}
		rows = rows[n:]
	}
	return nil
}

const insertChunk = 50

func insertSQL(n int, collapse bool) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO push_outbox (` + outboxInsertCols + `) VALUES `)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		p := i * outboxInsertArgs
		fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, 'queued', $%d, $%d, $%d, $%d)",
			p+1, p+2, p+3, p+4, p+5, p+6, p+7, p+8, p+9, p+10, p+11, p+12, p+13, p+14, p+15, p+16, p+17, p+17)
	}
	if collapse {
		b.WriteString(` ON CONFLICT (user_id, collapse_key) WHERE status = 'queued' AND device_id IS NULL DO UPDATE SET
			count = push_outbox.count + excluded.count,
			seq = CASE WHEN excluded.seq > push_outbox.seq THEN excluded.seq ELSE push_outbox.seq END,
			mentioned = (push_outbox.mentioned OR excluded.mentioned),
			payload = excluded.payload, type = excluded.type, updated_at = excluded.updated_at`)
	}
	return b.String()
}

// Enqueue records notifications in tx, the transaction that stores their cause: they exist if
// and only if it commits. Notifications with a collapse key merge into a queued one of the same
// user and key. Due-at-once notifications are found at the workers' next poll; call Wake after
// the commit to send them sooner.
func (s *Service) Enqueue(ctx context.Context, tx *sql.Tx, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	now := s.o.Now()
	nowMs := store.Millis(now)
	rows := make([]outboxRow, 0, len(ns))
	seen := make(map[[2]string]int, len(ns))
	for _, n := range ns {
		p, err := json.Marshal(n.Payload)
		if err != nil {
			return fmt.Errorf("push: enqueue: %w", err)
		}
		r := outboxRow{ID: newID(), UserID: n.UserID, Type: n.Type, ChatID: n.ChatID, Seq: n.Seq, Count: max(n.Count, 1),
			Mentioned: n.Mentioned, Payload: string(p), CollapseKey: n.CollapseKey, PlatformFilter: n.PlatformFilter,
			LocaleFilter: n.LocaleFilter, NextAttemptAt: store.Millis(now.Add(n.Delay)), CreatedAt: nowMs}
		if n.CollapseKey != "" {
			k := [2]string{n.UserID, n.CollapseKey}
			if i, ok := seen[k]; ok { // merge here: one statement may not touch a row twice
				prev := &rows[i]
				prev.Count += r.Count
				prev.Mentioned = prev.Mentioned || r.Mentioned
				if r.Seq >= prev.Seq {
					prev.Seq, prev.Payload, prev.Type = r.Seq, r.Payload, r.Type
				}
				continue
			}
			seen[k] = len(rows)
		}
		rows = append(rows, r)
	}
	var plain, collapsing []outboxRow
	for _, r := range rows {
		if r.CollapseKey == "" {
			plain = append(plain, r)
		} else {
			collapsing = append(collapsing, r)
		}
	}
	if err := insertOutbox(ctx, tx, plain, false); err != nil {
		return err
	}
	return insertOutbox(ctx, tx, collapsing, true)
}

// claimed is a row a worker holds.
type claimed struct {
	outboxRow
}

// claim takes up to limit due rows (queued and due, or sending with an expired lease) for this
// worker. On PostgreSQL the rows are locked with SKIP LOCKED, so concurrent workers on any node
// take disjoint sets; on SQLite the single write connection serialises claims.
func (s *Service) claim(ctx context.Context, limit int) ([]claimed, error) {
	now := store.Millis(s.o.Now())
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	rows, err := s.db.W.QueryContext(ctx, `UPDATE push_outbox SET status = 'sending', lease_owner = $1, lease_until = $2,
		attempts = attempts + 1, updated_at = $3
		WHERE id IN (SELECT id FROM push_outbox
			WHERE (status = 'queued' AND next_attempt_at <= $3) OR (status = 'sending' AND lease_until < $3)
			ORDER BY next_attempt_at LIMIT $4`+lock+`)
		RETURNING id, user_id, COALESCE(device_id, ''), COALESCE(parent_id, ''), type, COALESCE(chat_id, ''), seq, count,
			mentioned, payload, COALESCE(collapse_key, ''), provider, platform_filter, locale_filter, attempts, next_attempt_at, created_at`,
		s.node, now+s.o.Lease.Milliseconds(), now, limit)
	if err != nil {
		return nil, fmt.Errorf("push: claim: %w", err)
	}
	defer rows.Close()
	var out []claimed
	for rows.Next() {
		var c claimed
		if err := rows.Scan(&c.ID, &c.UserID, &c.DeviceID, &c.ParentID, &c.Type, &c.ChatID, &c.Seq, &c.Count, &c.Mentioned,
			&c.Payload, &c.CollapseKey, &c.Provider, &c.PlatformFilter, &c.LocaleFilter, &c.Attempts, &c.NextAttemptAt, &c.CreatedAt); err != nil {
			return nil, fmt.Errorf("push: claim: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("push: claim: %w", err)
	}
	return out, nil
}

// finish records the outcome of a claimed row, if this worker still holds it.
type finish struct {
	id, status, errorCode string
	nextAttemptAt         int64 // status queued: when to retry
	removeDevice          string
}

func (s *Service) applyFinish(ctx context.Context, tx *sql.Tx, f finish, now int64) (bool, error) {
	owned, err := s.applyFinishes(ctx, tx, []finish{f}, now)
	return owned[f.id], err
}

// applyFinishes records outcomes in as few statements as it can: rows with the same outcome are
// updated together (UPDATE ... WHERE id IN (...) RETURNING id). It returns the rows this worker
// still held, the only ones changed; the devices of those with removeDevice are deleted.
func (s *Service) applyFinishes(ctx context.Context, tx *sql.Tx, fs []finish, now int64) (map[string]bool, error) {
	type outcome struct {
		status, code string
		next         int64
	}
	groups := map[outcome][]string{}
	var order []outcome
	for _, f := range fs {
		if f.id == "" {
			continue
		}
		k := outcome{f.status, f.errorCode, f.nextAttemptAt}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], f.id)
	}
	owned := make(map[string]bool, len(fs))
	for _, k := range order {
		ids := groups[k]
		for len(ids) > 0 {
			n := min(len(ids), 200)
			ph, args := inList(6, ids[:n])
			rows, err := tx.QueryContext(ctx, `UPDATE push_outbox SET status = $1, error_code = $2,
				next_attempt_at = CASE WHEN CAST($3 AS BIGINT) > 0 THEN CAST($3 AS BIGINT) ELSE next_attempt_at END,
				lease_owner = '', lease_until = 0, updated_at = $4
				WHERE lease_owner = $5 AND status = 'sending' AND id IN (`+ph+`) RETURNING id`,
				append([]any{k.status, k.code, k.next, now, s.node}, args...)...)
			if err != nil {
				return nil, fmt.Errorf("push: finish: %w", err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, fmt.Errorf("push: finish: %w", err)
				}
				owned[id] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("push: finish: %w", err)
			}
			ids = ids[n:]
		}
	}
	var gone []string
	for _, f := range fs {
		if f.removeDevice != "" && owned[f.id] {
			gone = append(gone, f.removeDevice)
		}
	}
	if gone = uniq(gone); len(gone) > 0 {
		ph, args := inList(1, gone)
		if _, err := tx.ExecContext(ctx, `DELETE FROM push_devices WHERE id IN (`+ph+`)`, args...); err != nil {
			return nil, fmt.Errorf("push: remove devices: %w", err)
		}
	}
	return owned, nil
}

// RunOnce claims one batch of due rows and handles it: notifications are expanded into
// deliveries (or skipped), deliveries are sent. It returns how many rows it claimed.
func (s *Service) RunOnce(ctx context.Context) (int, error) {
	rows, err := s.claim(ctx, s.o.Batch)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	var notes, deliveries []claimed
	for _, r := range rows {
		if r.DeviceID == "" {
			notes = append(notes, r)
		} else {
			deliveries = append(deliveries, r)
		}
	}
	if len(notes) > 0 {
		if err := s.expand(ctx, notes); err != nil {
			return len(rows), err
		}
	}
	if len(deliveries) > 0 {
		if err := s.deliver(ctx, deliveries); err != nil {
			return len(rows), err
		}
	}
	return len(rows), nil
}

// run is the worker loop: a batch after another while there is work, else wait for a wake-up
// or the poll interval. Once an hour it also deletes finished rows older than Retention.
func (s *Service) run(ctx context.Context) {
	t := time.NewTimer(s.o.PollInterval)
	defer t.Stop()
	var lastSweep time.Time
	for {
		if now := s.o.Now(); now.Sub(lastSweep) >= time.Hour {
			lastSweep = now
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "push: outbox sweep", "err", err)
			}
		}
		n, err := s.RunOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.ErrorContext(ctx, "push: outbox worker", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		t.Reset(s.o.PollInterval) // Go ≥ 1.23: no stale tick survives Reset or Stop
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// Sweep deletes finished rows (sent, failed, dead, skipped) created more than Retention ago:
// the history and statistics reach that far back. Any node may run it at any time: it deletes
// only rows no worker touches any more, in batches of sweepBatch, so that an hour of a busy
// outbox is not one long statement holding locks.
func (s *Service) Sweep(ctx context.Context) error { return s.sweep(ctx, sweepBatch) }

const sweepBatch = 1000

func (s *Service) sweep(ctx context.Context, batch int) error {
	before := store.Millis(s.o.Now().Add(-s.o.Retention))
	for {
		res, err := s.db.W.ExecContext(ctx, `DELETE FROM push_outbox WHERE id IN (SELECT id FROM push_outbox
			WHERE created_at < $1 AND status IN ('sent', 'failed', 'dead', 'skipped') LIMIT $2)`, before, batch)
		if err != nil {
			return fmt.Errorf("push: sweep: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n < int64(batch) {
			return err
		}
	}
}

// backoff is the delay before retry number attempt (1 = the first retry): Backoff doubled each
// time up to MaxBackoff, with full jitter over its upper half, and never before retryAfter.
func (s *Service) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := s.o.Backoff
	for i := 1; i < attempt && d < s.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.o.MaxBackoff)
	d = d/2 + time.Duration(s.o.Rand()*float64(d/2))
	return max(d, retryAfter)
}
