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

// Reasons a notification was not sent (error_code of a skipped row).
const (
	skipOnline       = "online"        // a connection was open when it was due
	skipAcknowledged = "acknowledged"  // the devices reported the message delivered
	skipMuted        = "muted"         // chat mode none, or muted_until in the future
	skipMentionsOnly = "mentions_only" // chat mode mentions and the message did not name the user
	skipDND          = "dnd"           // inside the user's do-not-disturb window
	skipNoDevices    = "no_devices"
)

// inList returns "$from, $from+1, ..." for n values and the args.
func inList(from int, vals []string) (string, []any) {
	ph := make([]string, len(vals))
	args := make([]any, len(vals))
	for i, v := range vals {
		ph[i] = fmt.Sprintf("$%d", from+i)
		args[i] = v
	}
	return strings.Join(ph, ", "), args
}

func uniq(vals []string) []string {
	seen := make(map[string]bool, len(vals))
	out := vals[:0:0]
	for _, v := range vals {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// loadDevicesOf returns the devices of users, by user.
func (s *Service) loadDevicesOf(ctx context.Context, users []string) (map[string][]deviceRow, error) {
	out := map[string][]deviceRow{}
	for len(users) > 0 {
		n := min(len(users), 500)
		ph, args := inList(1, users[:n])
		rows, err := s.db.R.QueryContext(ctx, `SELECT `+deviceCols+` FROM push_devices WHERE user_id IN (`+ph+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("push: devices: %w", err)
		}
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("push: devices: %w", err)
			}
			out[d.UserID] = append(out[d.UserID], d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("push: devices: %w", err)
		}
		users = users[n:]
	}
	return out, nil
}

// displayNames reads the display names of users from the accounts.
func (s *Service) displayNames(ctx context.Context, ids []string) (map[string]string, error) {
	out, err := s.o.Accounts.DisplayNames(ctx, s.db.R, ids)
	if err != nil {
		return nil, fmt.Errorf("push: display names: %w", err)
	}
	return out, nil
}

// expand turns claimed notifications into deliveries, one per matching device, or skips them.
func (s *Service) expand(ctx context.Context, notes []claimed) error {
	now := s.o.Now()
	nowMs := store.Millis(now)
	users := make([]string, 0, len(notes))
	var senders []string
	payloads := make([]Payload, len(notes))
	for i, n := range notes {
		users = append(users, n.UserID)
		if err := json.Unmarshal([]byte(n.Payload), &payloads[i]); err != nil {
			return fmt.Errorf("push: payload of %s: %w", n.ID, err)
		}
		senders = append(senders, payloads[i].SenderID)
	}
	users = uniq(users)
	devices, err := s.loadDevicesOf(ctx, users)
	if err != nil {
		return err
	}
	settings, err := s.userSettings(ctx, users)
	if err != nil {
		return err
	}
	names, err := s.displayNames(ctx, uniq(senders))
	if err != nil {
		return err
	}
	var finishes []finish
	children := map[string][]outboxRow{} // parent id -> deliveries
	for i, n := range notes {
		p := payloads[i]
		if p.SenderID != "" && names[p.SenderID] != "" {
			p.Sender = names[p.SenderID]
		}
		st := settings[n.UserID]
		reason, typ, err := s.decide(ctx, n, &p, st, now)
		if err != nil {
			return err
		}
		if reason == "" {
			for _, d := range devices[n.UserID] {
				if n.PlatformFilter != "" && d.Platform != n.PlatformFilter {
					continue
				}
				if n.LocaleFilter != "" && !localeMatches(d.Locale, n.LocaleFilter) {
					continue
				}
				body, err := json.Marshal(p)
				if err != nil {
					return fmt.Errorf("push: payload: %w", err)
				}
				children[n.ID] = append(children[n.ID], outboxRow{ID: newID(), UserID: n.UserID, DeviceID: d.ID, ParentID: n.ID,
					Type: typ, ChatID: n.ChatID, Seq: n.Seq, Count: n.Count, Mentioned: n.Mentioned, Payload: string(body),
					CollapseKey: n.CollapseKey, Provider: d.Provider, NextAttemptAt: nowMs, CreatedAt: nowMs})
			}
			if len(children[n.ID]) == 0 {
				reason = skipNoDevices
			}
		}
		if reason != "" {
			finishes = append(finishes, finish{id: n.ID, status: "skipped", errorCode: reason})
		} else {
			finishes = append(finishes, finish{id: n.ID, status: "sent"})
		}
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		owned, err := s.applyFinishes(ctx, tx, finishes, nowMs)
		if err != nil {
			return err
		}
		var kids []outboxRow
		for _, f := range finishes {
			if owned[f.id] { // still ours: another worker did not take it after our lease ran out
				kids = append(kids, children[f.id]...)
			}
		}
		return insertOutbox(ctx, tx, kids, false)
	})
	if err != nil {
		return err
	}
	if len(children) > 0 {
		s.nudge() // the deliveries are due now
	}
	return nil
}

func localeMatches(locale, filter string) bool {
	l, f := strings.ToLower(locale), strings.ToLower(filter)
	return l == f || strings.HasPrefix(l, f+"-")
}

// decide says why n must not be sent ("" = send) and which template type it uses, adjusting p
// (previews off: no text).
func (s *Service) decide(ctx context.Context, n claimed, p *Payload, st userSettings, now time.Time) (string, string, error) {
	typ := n.Type
	isMessage := typ == TypeMessage || typ == TypeMention
	if isMessage {
		pref, err := s.chatPref(ctx, n.UserID, n.ChatID)
		if err != nil {
			return "", "", err
		}
		switch {
		case pref.Mode == ModeNone || (pref.MutedUntil != nil && pref.MutedUntil.After(now)):
			return skipMuted, typ, nil
		case pref.Mode == ModeMentions && !n.Mentioned:
			return skipMentionsOnly, typ, nil
		}
		if s.o.Presence != nil && s.o.Presence.Online(n.UserID) {
			return skipOnline, typ, nil
		}
		if s.o.Chats != nil && n.ChatID != "" && n.Seq > 0 {
			delivered, err := s.o.Chats.DeliveredSeq(ctx, n.UserID, n.ChatID)
			if err != nil {
				if isNotFound(err) || isAppNotFound(err) {
					return skipMuted, typ, nil // no longer a member
				}
				return "", "", err
			}
			if delivered >= n.Seq {
				return skipAcknowledged, typ, nil
			}
		}
		switch {
		case n.Mentioned:
			typ = TypeMention
		case n.Count > 1:
			typ = TypeMessages
		default:
			typ = TypeMessage
		}
		if !st.Previews {
			p.Preview = ""
			switch typ {
			case TypeMention:
				typ = TypeMentionHidden
			case TypeMessage:
				typ = TypeMessageHidden
			}
		}
		if p.Chat == "" {
			p.Chat = p.Sender // a direct chat is named after the other person
		}
		if p.Data == nil {
			p.Data = map[string]string{}
		}
		p.Data["count"] = fmt.Sprint(n.Count)
	}
	if typ != TypeCallCancel && st.inDND(now) {
		return skipDND, typ, nil
	}
	return "", typ, nil
}
