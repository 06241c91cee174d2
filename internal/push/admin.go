package push

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// AdminSendInput is the body of POST /notifications/send.
type AdminSendInput struct {
	UserIDs []string          `json:"user_ids" minItems:"1" maxItems:"1000" doc:"The recipients"`
	Title   string            `json:"title,omitempty" maxLength:"200"`
	Body    string            `json:"body,omitempty" maxLength:"1000"`
	Data    map[string]string `json:"data,omitempty" doc:"Handed to the app as it is (at most 20 keys)"`
}

// AdminBroadcastInput is the body of POST /notifications/broadcast.
type AdminBroadcastInput struct {
	Title    string            `json:"title,omitempty" maxLength:"200"`
	Body     string            `json:"body,omitempty" maxLength:"1000"`
	Data     map[string]string `json:"data,omitempty" doc:"Handed to the app as it is (at most 20 keys)"`
	Platform string            `json:"platform,omitempty" enum:"android,ios,web" doc:"Only devices of this platform"`
	Locale   string            `json:"locale,omitempty" maxLength:"35" doc:"Only devices whose locale is this or a variant of it (de matches de-AT)"`
}

// NotificationsQueued is the answer of a send or broadcast.
type NotificationsQueued struct {
	Queued int `json:"queued" doc:"Notifications queued: one per user, expanded to their devices by the workers"`
}

func checkAdminText(title, body string, data map[string]string) error {
	if strings.TrimSpace(title) == "" && strings.TrimSpace(body) == "" {
		return apperr.Invalid("body.title", "title and body cannot both be empty")
	}
	if controlChar(title, false) {
		return apperr.Invalid("body.title", "no control characters")
	}
	if controlChar(body, true) {
		return apperr.Invalid("body.body", "no control characters but newlines and tabs")
	}
	if len(data) > 20 {
		return apperr.Invalid("body.data", "at most 20 keys")
	}
	for k, v := range data {
		if k == "" || len(k) > 64 || len(v) > 1024 || controlChar(k, false) || controlChar(v, true) {
			return apperr.Invalid("body.data", "keys of 1 to 64 bytes, values of at most 1024, no control characters")
		}
	}
	return nil
}

func (s *Service) limitAdmin(ctx context.Context, adminID string) error {
	ok, retry, err := s.o.AdminLimiter.Allow(ctx, "push-admin:"+adminID)
	if err != nil {
		return s.internal("rate limit", err)
	}
	if !ok {
		return apperr.RateLimited(retry)
	}
	return nil
}

// Send queues an admin notification to the given users.
func (s *Service) Send(ctx context.Context, adminID string, in AdminSendInput) (NotificationsQueued, error) {
	if err := checkAdminText(in.Title, in.Body, in.Data); err != nil {
		return NotificationsQueued{}, err
	}
	ids := uniq(in.UserIDs)
	if len(ids) == 0 {
		return NotificationsQueued{}, apperr.Invalid("body.user_ids", "at least one user id")
	}
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return NotificationsQueued{}, apperr.Invalid("body.user_ids", "not a user id: "+strconv.Quote(id))
		}
	}
	missing, err := s.o.Accounts.MissingUsers(ctx, s.db.R, ids)
	if err != nil {
		return NotificationsQueued{}, s.internal("send", err)
	}
	if len(missing) > 0 {
		return NotificationsQueued{}, apperr.Invalid("body.user_ids", "unknown user "+missing[0])
	}
	if err := s.limitAdmin(ctx, adminID); err != nil {
		return NotificationsQueued{}, err
	}
	ns := make([]Notification, len(ids))
	for i, u := range ids {
		ns[i] = Notification{UserID: u, Type: TypeAdmin, Payload: Payload{Title: in.Title, Body: in.Body, Data: in.Data}}
	}
	if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return s.Enqueue(ctx, tx, ns) }); err != nil {
		return NotificationsQueued{}, s.internal("send", err)
	}
	s.Wake(ctx)
	return NotificationsQueued{Queued: len(ns)}, nil
}

// Broadcast queues an admin notification to every user with a device (of the platform and
// locale asked for).
func (s *Service) Broadcast(ctx context.Context, adminID string, in AdminBroadcastInput) (NotificationsQueued, error) {
	if err := checkAdminText(in.Title, in.Body, in.Data); err != nil {
		return NotificationsQueued{}, err
	}
	loc, ok := normalizeLocale(in.Locale)
	if !ok {
		return NotificationsQueued{}, apperr.Invalid("body.locale", "must be a language tag such as en or de-AT")
	}
	if in.Platform != "" && defaultProvider[in.Platform] == "" {
		return NotificationsQueued{}, apperr.Invalid("body.platform", "must be android, ios or web")
	}
	if err := s.limitAdmin(ctx, adminID); err != nil {
		return NotificationsQueued{}, err
	}
	q := `SELECT DISTINCT user_id FROM push_devices WHERE 1 = 1`
	var args []any
	if in.Platform != "" {
		args = append(args, in.Platform)
		q += fmt.Sprintf(" AND platform = $%d", len(args))
	}
	if loc != "" {
		args = append(args, strings.ToLower(loc), store.Like(strings.ToLower(loc))+"-%")
		q += fmt.Sprintf(` AND (LOWER(locale) = $%d OR LOWER(locale) LIKE $%d ESCAPE '\')`, len(args)-1, len(args))
	}
	var n int
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		var users []string
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				rows.Close()
				return err
			}
			users = append(users, u)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		ns := make([]Notification, len(users))
		for i, u := range users {
			ns[i] = Notification{UserID: u, Type: TypeAdmin, Payload: Payload{Title: in.Title, Body: in.Body, Data: in.Data},
				PlatformFilter: in.Platform, LocaleFilter: loc}
		}
		n = len(ns)
		return s.Enqueue(ctx, tx, ns)
	})
	if err != nil {
		return NotificationsQueued{}, s.internal("broadcast", err)
	}
	s.Wake(ctx)
	return NotificationsQueued{Queued: n}, nil
}

// NotificationCounts are outbox rows by outcome.
type NotificationCounts struct {
	Queued               int64 `json:"queued" doc:"Waiting to be sent (or retried)"`
	Sending              int64 `json:"sending" doc:"Claimed by a worker"`
	Sent                 int64 `json:"sent"`
	Failed               int64 `json:"failed" doc:"Refused for good (invalid token, bad request)"`
	Dead                 int64 `json:"dead" doc:"Gave up after the last retry"`
	Skipped              int64 `json:"skipped" doc:"Not sent: online, acknowledged, muted, do-not-disturb, no device"`
	InvalidTokensRemoved int64 `json:"invalid_tokens_removed" doc:"Devices removed because the provider rejected their token"`
}

func (c *NotificationCounts) add(status, errorCode string, n int64) {
	switch status {
	case "queued":
		c.Queued += n
	case "sending":
		c.Sending += n
	case "sent":
		c.Sent += n
	case "failed":
		c.Failed += n
	case "dead":
		c.Dead += n
	case "skipped":
		c.Skipped += n
	}
	if errorCode == errInvalidToken {
		c.InvalidTokensRemoved += n
	}
}

// NotificationStats is the answer of GET /notifications/stats.
type NotificationStats struct {
	Since         time.Time                     `json:"since"`
	Until         time.Time                     `json:"until"`
	Notifications NotificationCounts            `json:"notifications" doc:"Per user: sent = expanded to their devices"`
	Deliveries    NotificationCounts            `json:"deliveries" doc:"Per device"`
	ByProvider    map[string]NotificationCounts `json:"by_provider" doc:"Deliveries by provider (fcm, apns, webpush)"`
	ByType        map[string]NotificationCounts `json:"by_type" doc:"Deliveries by notification type"`
	SkippedBy     map[string]int64              `json:"skipped_by" doc:"Skipped notifications by reason"`
}

// Stats counts the outbox rows created in [since, until).
func (s *Service) Stats(ctx context.Context, since, until time.Time) (NotificationStats, error) {
	if !until.After(since) {
		return NotificationStats{}, apperr.Invalid("query.until", "must be after since")
	}
	out := NotificationStats{Since: since.UTC(), Until: until.UTC(), ByProvider: map[string]NotificationCounts{}, ByType: map[string]NotificationCounts{}, SkippedBy: map[string]int64{}}
	rows, err := s.db.R.QueryContext(ctx, `SELECT CASE WHEN device_id IS NULL THEN 0 ELSE 1 END, provider, type, status, error_code, COUNT(*)
		FROM push_outbox WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2, 3, 4, 5`, store.Millis(since), store.Millis(until))
	if err != nil {
		return NotificationStats{}, s.internal("stats", err)
	}
	defer rows.Close()
	for rows.Next() {
		var dev int
		var prov, typ, status, code string
		var n int64
		if err := rows.Scan(&dev, &prov, &typ, &status, &code, &n); err != nil {
			return NotificationStats{}, s.internal("stats", err)
		}
		if dev == 0 {
			out.Notifications.add(status, code, n)
			if status == "skipped" {
				out.SkippedBy[code] += n
			}
			continue
		}
		out.Deliveries.add(status, code, n)
		c := out.ByProvider[prov]
		c.add(status, code, n)
		out.ByProvider[prov] = c
		c = out.ByType[typ]
		c.add(status, code, n)
		out.ByType[typ] = c
	}
	if err := rows.Err(); err != nil {
		return NotificationStats{}, s.internal("stats", err)
	}
	return out, nil
}

// NotificationItem is one notification of the caller.
type NotificationItem struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Status    string            `json:"status" enum:"queued,sending,sent,failed,dead,skipped"`
	Reason    string            `json:"reason,omitempty" doc:"Why it was skipped"`
	ChatID    string            `json:"chat_id,omitempty"`
	Count     int               `json:"count" doc:"Messages it stands for"`
	Title     string            `json:"title"`
	Body      string            `json:"body"`
	Data      map[string]string `json:"data"`
	CreatedAt time.Time         `json:"created_at"`
}

// History lists userID's notifications, newest first.
func (s *Service) History(ctx context.Context, userID string, limit int, cursor string) ([]NotificationItem, string, error) {
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !strings.HasPrefix(string(b), "n1:") || len(b) > 80 {
			return nil, "", apperr.Invalid("query.cursor", "malformed cursor")
		}
		after = string(b[3:])
		if _, err := uuid.Parse(after); err != nil {
			return nil, "", apperr.Invalid("query.cursor", "malformed cursor")
		}
	}
	q := `SELECT id, type, status, error_code, COALESCE(chat_id, ''), count, mentioned, payload, created_at FROM push_outbox
		WHERE user_id = $1 AND device_id IS NULL`
	args := []any{userID}
	if after != "" {
		q += ` AND id < $2`
		args = append(args, after)
	}
	args = append(args, limit+1)
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	rows, err := s.db.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", s.internal("history", err)
	}
	defer rows.Close()
	type raw struct {
		item      NotificationItem
		mentioned bool
		p         Payload
	}
	var rs []raw
	var senders []string
	for rows.Next() {
		var r raw
		var payload string
		var at int64
		if err := rows.Scan(&r.item.ID, &r.item.Type, &r.item.Status, &r.item.Reason, &r.item.ChatID, &r.item.Count, &r.mentioned, &payload, &at); err != nil {
			return nil, "", s.internal("history", err)
		}
		_ = json.Unmarshal([]byte(payload), &r.p) // written by Enqueue
		r.item.CreatedAt = store.Time(at)
		senders = append(senders, r.p.SenderID)
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.internal("history", err)
	}
	next := ""
	if len(rs) > limit {
		rs = rs[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte("n1:" + rs[len(rs)-1].item.ID))
	}
	names, err := s.displayNames(ctx, uniq(senders))
	if err != nil {
		return nil, "", s.internal("history", err)
	}
	tpl, err := s.loadTemplates(ctx)
	if err != nil {
		return nil, "", s.internal("history", err)
	}
	out := make([]NotificationItem, len(rs))
	for i, r := range rs {
		it, p := r.item, r.p
		if n := names[p.SenderID]; n != "" {
			p.Sender = n
		}
		if p.Chat == "" {
			p.Chat = p.Sender
		}
		if it.Reason == "" || it.Status != "skipped" {
			it.Reason = ""
		}
		typ := it.Type
		switch {
		case typ == TypeMessage && r.mentioned:
			typ = TypeMention
		case typ == TypeMessage && it.Count > 1:
			typ = TypeMessages
		}
		if p.Data == nil {
			p.Data = map[string]string{}
		}
		p.Data["count"] = fmt.Sprint(it.Count)
		if typ == TypeAdmin {
			it.Title, it.Body = p.Title, p.Body
		} else {
			it.Title, it.Body = tpl.render(typ, "", p)
		}
		it.Type, it.Data = typ, p.Data
		out[i] = it
	}
	return out, next, nil
}
