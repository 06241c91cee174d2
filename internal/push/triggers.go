package push

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nerutalk/nerutalk/internal/chat"
)

// mentionRE finds @username (the account rules: 3–32 of a-z, 0-9, '_' and '.').
var mentionRE = regexp.MustCompile(`(?:^|[^\w.@])@([A-Za-z0-9_.]{3,32})`)

func mentions(text string) []string {
	var out []string
	for _, m := range mentionRE.FindAllStringSubmatch(text, 20) {
		out = append(out, strings.ToLower(strings.TrimRight(m[1], ".")))
	}
	return uniq(out)
}

// kindPreview is the preview of a message without text.
var kindPreview = map[chat.Kind]string{
	"image": "Photo", "video": "Video", "audio": "Voice message", "file": "File", "sticker": "Sticker", "gif": "GIF",
	"location": "Location",
}

// usersWithDevices returns which of ids have at least one device, read in tx.
func usersWithDevices(ctx context.Context, tx *sql.Tx, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		ph, args := inList(1, ids[:n])
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT user_id FROM push_devices WHERE user_id IN (`+ph+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("push: devices of members: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("push: devices of members: %w", err)
			}
			out[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("push: devices of members: %w", err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// MessagesStored (chat.SendHook) queues a push for every member (but the sender) who has a device, inside the
// transaction that stores the messages. One chat's messages collapse into one queued
// notification per member with a count. Whether it is sent is decided when it is due
// (MessageDelay later): not if the member is online then, acknowledged the message, muted the
// chat, or is in do-not-disturb.
func (s *Service) MessagesStored(ctx context.Context, tx *sql.Tx, msgs []chat.StoredMessage) error {
	var everyone []string
	for _, m := range msgs {
		everyone = append(everyone, m.MemberIDs...)
	}
	if len(msgs) == 0 || len(everyone) == 0 {
		return nil
	}
	reachable, err := usersWithDevices(ctx, tx, uniq(everyone))
	if err != nil || len(reachable) == 0 {
		return err
	}
	// @usernames named in the batch, resolved to user ids.
	var named []string
	for _, m := range msgs {
		named = append(named, mentions(m.Message.Text)...)
	}
	mentioned := map[string]bool{} // user ids
	if named = uniq(named); len(named) > 0 {
		ph, args := inList(1, named)
		rows, err := tx.QueryContext(ctx, `SELECT id FROM users WHERE username IN (`+ph+`)`, args...)
		if err != nil {
			return fmt.Errorf("push: mentions: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("push: mentions: %w", err)
			}
			mentioned[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("push: mentions: %w", err)
		}
	}
	var ns []Notification
	for _, m := range msgs {
		msg := m.Message
		if msg.Deleted || msg.Kind == "system" {
			continue
		}
		pv := preview(msg.Text)
		if pv == "" {
			pv = kindPreview[msg.Kind]
		}
		var names map[string]bool
		if len(mentioned) > 0 {
			names = map[string]bool{}
			for _, u := range mentions(msg.Text) {
				names[u] = true
			}
		}
		title := m.ChatTitle
		if m.ChatType == "direct" {
			title = ""
		}
		for _, u := range m.MemberIDs {
			if u == msg.SenderID || !reachable[u] {
				continue
			}
			ns = append(ns, Notification{
				UserID: u, Type: TypeMessage, ChatID: msg.ChatID, Seq: msg.Seq, Count: 1,
				Mentioned: mentioned[u] && s.namesUser(ctx, tx, names, u),
				Payload: Payload{SenderID: msg.SenderID, Chat: title, ChatType: m.ChatType, Preview: pv,
					Data: map[string]string{"chat_id": msg.ChatID, "message_id": msg.ID, "seq": strconv.FormatInt(msg.Seq, 10)}},
				CollapseKey: "chat:" + msg.ChatID, Delay: s.o.MessageDelay,
			})
		}
	}
	return s.Enqueue(ctx, tx, ns)
}

// namesUser reports whether this message's mentions (lower-case usernames) include user u.
func (s *Service) namesUser(ctx context.Context, tx *sql.Tx, names map[string]bool, u string) bool {
	if len(names) == 0 {
		return false
	}
	var username string
	if err := tx.QueryRowContext(ctx, `SELECT username FROM users WHERE id = $1`, u).Scan(&username); err != nil {
		return false
	}
	return names[username]
}

// Call describes a call for its notifications.
type Call struct {
	ID       string
	ChatID   string
	Kind     string // audio or video
	CallerID string
}

// CallRinging queues a high-priority push to each callee's devices (a VoIP push on iOS devices
// with a PushKit token), in the transaction that stores the call. It is sent even to callees who
// are online: a phone whose app is in the background still needs to ring, and the app
// recognises the call by call_id. Call Wake after the commit.
func (s *Service) CallRinging(ctx context.Context, tx *sql.Tx, c Call, calleeIDs []string) error {
	ns := make([]Notification, 0, len(calleeIDs))
	for _, u := range uniq(calleeIDs) {
		if u == c.CallerID {
			continue
		}
		ns = append(ns, Notification{UserID: u, Type: TypeCall, ChatID: c.ChatID, CollapseKey: "call:" + c.ID,
			Payload: Payload{SenderID: c.CallerID, Preview: c.Kind, Priority: "high", TTL: 60,
				Data: map[string]string{"call_id": c.ID, "chat_id": c.ChatID, "kind": c.Kind}}})
	}
	return s.Enqueue(ctx, tx, ns)
}

// CallEnded withdraws the ringing of call c for userIDs (nil: every callee), in the transaction
// that records why (answered elsewhere, declined, missed, ended): a ringing push not sent yet is
// dropped, and devices that were rung get a cancelling push with the same collapse key (a VoIP
// push on iOS, a data-only one elsewhere). reason goes to the app as data.reason.
func (s *Service) CallEnded(ctx context.Context, tx *sql.Tx, c Call, userIDs []string, reason string) error {
	key := "call:" + c.ID
	args := []any{key}
	filter := ""
	if userIDs != nil {
		if len(userIDs) == 0 {
			return nil
		}
		ph, a := inList(2, uniq(userIDs))
		filter, args = " AND user_id IN ("+ph+")", append(args, a...)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE push_outbox SET status = 'skipped', error_code = 'call_ended'
		WHERE collapse_key = $1 AND type = 'call' AND status = 'queued'`+filter, args...); err != nil {
		return fmt.Errorf("push: call ended: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT user_id FROM push_outbox
		WHERE collapse_key = $1 AND type = 'call' AND device_id IS NULL AND status IN ('sending', 'sent')`+filter, args...)
	if err != nil {
		return fmt.Errorf("push: call ended: %w", err)
	}
	var rung []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return fmt.Errorf("push: call ended: %w", err)
		}
		rung = append(rung, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("push: call ended: %w", err)
	}
	ns := make([]Notification, 0, len(rung))
	for _, u := range rung {
		ns = append(ns, Notification{UserID: u, Type: TypeCallCancel, ChatID: c.ChatID, CollapseKey: key,
			Payload: Payload{SenderID: c.CallerID, Preview: c.Kind, Priority: "high", TTL: 60,
				Data: map[string]string{"call_id": c.ID, "chat_id": c.ChatID, "reason": reason}}})
	}
	return s.Enqueue(ctx, tx, ns)
}

// Geofence describes a geofence event for its notifications.
type Geofence struct {
	ID        string
	Name      string
	SubjectID string // who entered or left
	Entered   bool   // false: left
}

// GeofenceEvent queues a push to each watcher about g, in the transaction that stores the event.
func (s *Service) GeofenceEvent(ctx context.Context, tx *sql.Tx, g Geofence, watcherIDs []string) error {
	typ, ev := TypeGeofenceExit, "exit"
	if g.Entered {
		typ, ev = TypeGeofenceEnter, "enter"
	}
	var ns []Notification
	for _, u := range uniq(watcherIDs) {
		if u == g.SubjectID {
			continue
		}
		ns = append(ns, Notification{UserID: u, Type: typ, CollapseKey: "geofence:" + g.ID + ":" + g.SubjectID,
			Payload: Payload{SenderID: g.SubjectID, Chat: g.Name,
				Data: map[string]string{"geofence_id": g.ID, "user_id": g.SubjectID, "event": ev}}})
	}
	return s.Enqueue(ctx, tx, ns)
}

// LocationShared queues a push to each viewer that sharerID started sharing their location.
func (s *Service) LocationShared(ctx context.Context, tx *sql.Tx, sharerID, chatID string, viewerIDs []string) error {
	var ns []Notification
	for _, u := range uniq(viewerIDs) {
		if u == sharerID {
			continue
		}
		ns = append(ns, Notification{UserID: u, Type: TypeLocation, ChatID: chatID, CollapseKey: "location:" + sharerID,
			Payload: Payload{SenderID: sharerID, Data: map[string]string{"user_id": sharerID, "chat_id": chatID}}})
	}
	return s.Enqueue(ctx, tx, ns)
}
