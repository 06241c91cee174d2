package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nerutalk/nerutalk/internal/store"
)

// mentionRE finds @username (the account rules: 3–32 of a-z, 0-9, '_' and '.').
var mentionRE = regexp.MustCompile(`(?:^|[^\w.@])@([A-Za-z0-9_.]{3,32})`)

func mentions(text string) []string {
	if !strings.Contains(text, "@") { // most messages: skip the regexp
		return nil
	}
	var out []string
	for _, m := range mentionRE.FindAllStringSubmatch(text, 20) {
		out = append(out, strings.ToLower(strings.TrimRight(m[1], ".")))
	}
	return uniq(out)
}

// StoredMessage is a message committed by chat's send transaction, with what push needs of it
// and its chat (the wiring converts chat's send hook to it).
type StoredMessage struct {
	ID, ChatID, SenderID string
	Seq                  int64
	Kind, Text           string
	Deleted              bool
	ChatType, ChatTitle  string   // "direct" or "group"; the title ("" for direct chats)
	MemberIDs            []string // every member at commit time (the sender included)
}

// kindPreview is the preview of a message without text.
var kindPreview = map[string]string{
	"image": "Photo", "video": "Video", "audio": "Voice message", "file": "File", "sticker": "Sticker", "gif": "GIF",
	"location": "Location",
}

// usersWithDevices returns which of ids have at least one device, read in tx. The ids travel as
// one parameter (a JSON array on SQLite, an array on PostgreSQL), so the statement's text is the
// same whatever the batch: SQLite resolves each $N of a statement by a linear search, so a list
// of hundreds of placeholders (a batch of messages into groups) cost more to prepare than the
// chat's whole insert.
func usersWithDevices(ctx context.Context, tx *sql.Tx, pg bool, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	var rows *sql.Rows
	var err error
	if pg {
		rows, err = tx.QueryContext(ctx, `SELECT DISTINCT user_id FROM push_devices WHERE user_id = ANY($1::text[])`, ids)
	} else {
		list, _ := json.Marshal(ids) // strings: cannot fail
		rows, err = tx.QueryContext(ctx, `SELECT DISTINCT user_id FROM push_devices WHERE user_id IN (SELECT value FROM json_each($1))`, string(list))
	}
	if err != nil {
		return nil, fmt.Errorf("push: devices of members: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("push: devices of members: %w", err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("push: devices of members: %w", err)
	}
	return out, nil
}

// MessagesStored queues a push for every member (but the sender) who has a device, inside the
// transaction that stores the messages (the wiring registers it as chat's send hook). One chat's
// messages collapse into one queued notification per member with a count. Whether it is sent is
// decided when it is due (MessageDelay later): not if the member is online then, acknowledged
// the message, muted the chat, or is in do-not-disturb.
func (s *Service) MessagesStored(ctx context.Context, tx *sql.Tx, msgs []StoredMessage) error {
	var everyone []string
	for _, m := range msgs {
		everyone = append(everyone, m.MemberIDs...)
	}
	if len(msgs) == 0 || len(everyone) == 0 {
		return nil
	}
	reachable, err := usersWithDevices(ctx, tx, s.db.Dialect == store.Postgres, uniq(everyone))
	if err != nil || len(reachable) == 0 {
		return err
	}
	// @usernames named in the batch (each message parsed once), resolved to user ids in the
	// same transaction: one more query, only for a batch that names someone.
	named := make([][]string, len(msgs))
	var all []string
	for i, m := range msgs {
		named[i] = mentions(m.Text)
		all = append(all, named[i]...)
	}
	var ids map[string]string // username -> user id
	if all = uniq(all); len(all) > 0 {
		if ids, err = s.o.Accounts.IDsByUsername(ctx, tx, all); err != nil {
			return fmt.Errorf("push: mentions: %w", err)
		}
	}
	var ns []Notification
	for i, m := range msgs {
		if m.Deleted || m.Kind == "system" {
			continue
		}
		pv := preview(m.Text)
		if pv == "" {
			pv = kindPreview[m.Kind]
		}
		var mentioned map[string]bool // nil for most messages
		for _, u := range named[i] {
			if id := ids[u]; id != "" {
				if mentioned == nil {
					mentioned = map[string]bool{}
				}
				mentioned[id] = true
			}
		}
		title := m.ChatTitle
		if m.ChatType == "direct" {
			title = ""
		}
		// One payload per message, shared by its recipients (Enqueue only marshals it).
		p := Payload{SenderID: m.SenderID, Chat: title, ChatType: m.ChatType, Preview: pv,
			Data: map[string]string{"chat_id": m.ChatID, "message_id": m.ID, "seq": strconv.FormatInt(m.Seq, 10)}}
		key := "chat:" + m.ChatID
		for _, u := range m.MemberIDs {
			if u == m.SenderID || !reachable[u] {
				continue
			}
			ns = append(ns, Notification{
				UserID: u, Type: TypeMessage, ChatID: m.ChatID, Seq: m.Seq, Count: 1, Mentioned: mentioned[u],
				Payload: p, CollapseKey: key, Delay: s.o.MessageDelay,
			})
		}
	}
	return s.Enqueue(ctx, tx, ns)
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
