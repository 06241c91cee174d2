package push

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // do-not-disturb windows name IANA time zones; the binary must not depend on the host's

	"github.com/danielgtaylor/huma/v2"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Per-chat notification modes.
const (
	ModeAll      = "all"
	ModeMentions = "mentions"
	ModeNone     = "none"
)

// ChatNotifications is the caller's notification setting for one chat.
type ChatNotifications struct {
	ChatID     string     `json:"chat_id"`
	Mode       string     `json:"mode" enum:"all,mentions,none"`
	MutedUntil *time.Time `json:"muted_until" doc:"No pushes from this chat until then; null = not muted"`
}

// ChatNotificationsInput is the body of PUT /chats/{id}/notifications.
type ChatNotificationsInput struct {
	Mode       string     `json:"mode" enum:"all,mentions,none" doc:"all: every message; mentions: only messages naming you (@username); none: nothing"`
	MutedUntil *time.Time `json:"muted_until,omitempty" doc:"Silence the chat until this time (RFC 3339); omitted or past = not muted"`
}

// chatPref reads a preference; a chat without one is mode all.
func (s *Service) chatPref(ctx context.Context, userID, chatID string) (ChatNotifications, error) {
	p := ChatNotifications{ChatID: chatID, Mode: ModeAll}
	if chatID == "" {
		return p, nil
	}
	var muted sql.NullInt64
	err := s.db.R.QueryRowContext(ctx, `SELECT mode, muted_until FROM push_chat_prefs WHERE user_id = $1 AND chat_id = $2`, userID, chatID).
		Scan(&p.Mode, &muted)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("push: chat preference: %w", err)
	}
	if muted.Valid {
		t := store.Time(muted.Int64)
		p.MutedUntil = &t
	}
	return p, nil
}

// checkMember answers not-found unless userID is a member of chatID.
func (s *Service) checkMember(ctx context.Context, userID, chatID string) error {
	if s.o.Chats == nil {
		return nil
	}
	if _, err := s.o.Chats.DeliveredSeq(ctx, userID, chatID); err != nil {
		if isAppNotFound(err) || isNotFound(err) {
			return apperr.NotFound("chat")
		}
		return s.internal("membership", err)
	}
	return nil
}

// ChatPref returns userID's setting for chatID (members only).
func (s *Service) ChatPref(ctx context.Context, userID, chatID string) (ChatNotifications, error) {
	if err := s.checkMember(ctx, userID, chatID); err != nil {
		return ChatNotifications{}, err
	}
	p, err := s.chatPref(ctx, userID, chatID)
	if err != nil {
		return p, s.internal("chat preference", err)
	}
	return p, nil
}

// SetChatPref stores userID's setting for chatID (members only; others get not found).
func (s *Service) SetChatPref(ctx context.Context, userID, chatID string, in ChatNotificationsInput) (ChatNotifications, error) {
	if in.Mode != ModeAll && in.Mode != ModeMentions && in.Mode != ModeNone {
		return ChatNotifications{}, apperr.Invalid("body.mode", "must be all, mentions or none")
	}
	if err := s.checkMember(ctx, userID, chatID); err != nil {
		return ChatNotifications{}, err
	}
	now := s.o.Now()
	var muted any
	out := ChatNotifications{ChatID: chatID, Mode: in.Mode}
	if in.MutedUntil != nil && in.MutedUntil.After(now) {
		t := in.MutedUntil.UTC().Truncate(time.Millisecond)
		out.MutedUntil, muted = &t, store.Millis(t)
	}
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO push_chat_prefs (user_id, chat_id, mode, muted_until, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, chat_id) DO UPDATE SET mode = excluded.mode, muted_until = excluded.muted_until, updated_at = excluded.updated_at`,
		userID, chatID, in.Mode, muted, store.Millis(now))
	if err != nil {
		if store.IsForeignKeyViolation(err) { // the chat was deleted meanwhile
			return ChatNotifications{}, apperr.NotFound("chat")
		}
		return ChatNotifications{}, s.internal("set chat preference", err)
	}
	return out, nil
}

// DND is a daily do-not-disturb window in a time zone; start after end spans midnight.
type DND struct {
	Start    string `json:"start" pattern:"^([01][0-9]|2[0-3]):[0-5][0-9]$" doc:"HH:MM"`
	End      string `json:"end" pattern:"^([01][0-9]|2[0-3]):[0-5][0-9]$" doc:"HH:MM (may be before start: the window spans midnight)"`
	Timezone string `json:"timezone,omitempty" maxLength:"64" doc:"IANA time zone, e.g. Europe/Berlin; default UTC"`
}

// NotificationSettings are the caller's global notification settings.
type NotificationSettings struct {
	Previews bool `json:"previews" doc:"false: pushes carry no message text, only who wrote and where"`
	DND      *DND `json:"dnd" doc:"Do-not-disturb window: no pushes inside it (except the cancelling push of a call); null = none"`
}

// TransformSchema documents dnd as an object or null (huma.SchemaTransformer): it is null when
// there is no window.
func (NotificationSettings) TransformSchema(_ huma.Registry, s *huma.Schema) *huma.Schema {
	return httpapi.NullableObjects(s, "dnd")
}

// NotificationSettingsInput is the body of PUT /notifications/settings (it replaces the settings).
type NotificationSettingsInput struct {
	Previews *bool `json:"previews,omitempty" doc:"Default true"`
	DND      *DND  `json:"dnd,omitempty" doc:"Omitted or null = no window"`
}

type userSettings struct {
	Previews   bool
	Start, End int // minutes after midnight; -1 = no window
	Loc        *time.Location
}

func defaultSettings() userSettings {
	return userSettings{Previews: true, Start: -1, End: -1, Loc: time.UTC}
}

func (u userSettings) inDND(now time.Time) bool {
	if u.Start < 0 || u.Start == u.End {
		return false
	}
	t := now.In(u.Loc)
	m := t.Hour()*60 + t.Minute()
	if u.Start < u.End {
		return m >= u.Start && m < u.End
	}
	return m >= u.Start || m < u.End
}

func (u userSettings) public() NotificationSettings {
	out := NotificationSettings{Previews: u.Previews}
	if u.Start >= 0 {
		out.DND = &DND{Start: hhmm(u.Start), End: hhmm(u.End), Timezone: u.Loc.String()}
	}
	return out
}

func hhmm(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

func parseHHMM(s string) (int, bool) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// userSettings reads the settings of users (defaults for those without).
func (s *Service) userSettings(ctx context.Context, users []string) (map[string]userSettings, error) {
	out := make(map[string]userSettings, len(users))
	for _, u := range users {
		out[u] = defaultSettings()
	}
	for len(users) > 0 {
		n := min(len(users), 500)
		ph, args := inList(1, users[:n])
		rows, err := s.db.R.QueryContext(ctx, `SELECT user_id, previews, dnd_start, dnd_end, timezone FROM push_user_settings WHERE user_id IN (`+ph+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("push: settings: %w", err)
		}
		for rows.Next() {
			var id, tz string
			var st userSettings
			var start, end sql.NullInt64
			if err := rows.Scan(&id, &st.Previews, &start, &end, &tz); err != nil {
				rows.Close()
				return nil, fmt.Errorf("push: settings: %w", err)
			}
			st.Start, st.End = -1, -1
			if start.Valid && end.Valid {
				st.Start, st.End = int(start.Int64), int(end.Int64)
			}
			st.Loc = time.UTC
			if loc, err := time.LoadLocation(tz); err == nil {
				st.Loc = loc
			}
			out[id] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("push: settings: %w", err)
		}
		users = users[n:]
	}
	return out, nil
}

// Settings returns userID's notification settings.
func (s *Service) Settings(ctx context.Context, userID string) (NotificationSettings, error) {
	m, err := s.userSettings(ctx, []string{userID})
	if err != nil {
		return NotificationSettings{}, s.internal("settings", err)
	}
	return m[userID].public(), nil
}

// SetSettings replaces userID's notification settings.
func (s *Service) SetSettings(ctx context.Context, userID string, in NotificationSettingsInput) (NotificationSettings, error) {
	st := defaultSettings()
	if in.Previews != nil {
		st.Previews = *in.Previews
	}
	var start, end any
	tz := "UTC"
	if in.DND != nil {
		a, ok := parseHHMM(in.DND.Start)
		if !ok {
			return NotificationSettings{}, apperr.Invalid("body.dnd.start", "must be HH:MM")
		}
		b, ok := parseHHMM(in.DND.End)
		if !ok {
			return NotificationSettings{}, apperr.Invalid("body.dnd.end", "must be HH:MM")
		}
		if in.DND.Timezone != "" {
			loc, err := time.LoadLocation(in.DND.Timezone)
			if err != nil || in.DND.Timezone == "Local" {
				return NotificationSettings{}, apperr.Invalid("body.dnd.timezone", "must be an IANA time zone such as Europe/Berlin")
			}
			st.Loc, tz = loc, in.DND.Timezone
		}
		st.Start, st.End, start, end = a, b, a, b
	}
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO push_user_settings (user_id, previews, dnd_start, dnd_end, timezone, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (user_id) DO UPDATE SET previews = excluded.previews, dnd_start = excluded.dnd_start, dnd_end = excluded.dnd_end,
			timezone = excluded.timezone, updated_at = excluded.updated_at`,
		userID, st.Previews, start, end, tz, store.Millis(s.o.Now()))
	if err != nil {
		return NotificationSettings{}, s.internal("set settings", err)
	}
	return st.public(), nil
}
