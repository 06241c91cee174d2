package server

import (
	"context"
	"database/sql"

	"log/slog"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/call"
	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/location"
	"github.com/nerutalk/nerutalk/internal/push"
	"github.com/nerutalk/nerutalk/internal/store"
)

// What push needs of the other features, in push's own types: push declares the interfaces, and
// the wiring converts, so that no feature imports another.

// pushAccounts is auth's accounts as push.Accounts.
type pushAccounts struct{}

func (pushAccounts) MissingUsers(ctx context.Context, q push.Querier, ids []string) ([]string, error) {
	return auth.MissingUsers(ctx, q, ids)
}

func (pushAccounts) DisplayNames(ctx context.Context, q push.Querier, ids []string) (map[string]string, error) {
	return auth.DisplayNames(ctx, q, ids)
}

func (pushAccounts) IDsByUsername(ctx context.Context, q push.Querier, usernames []string) (map[string]string, error) {
	return auth.IDsByUsername(ctx, q, usernames)
}

// pushHook is push as chat's send hook: chat's stored messages in push's own type.
type pushHook struct{ push *push.Service }

func (h pushHook) MessagesStored(ctx context.Context, tx *sql.Tx, msgs []chat.StoredMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]push.StoredMessage, len(msgs))
	for i, m := range msgs {
		out[i] = push.StoredMessage{ID: m.Message.ID, ChatID: m.Message.ChatID, SenderID: m.Message.SenderID, Seq: m.Message.Seq,
			Kind: string(m.Message.Kind), Text: m.Message.Text, Deleted: m.Message.Deleted,
			ChatType: m.ChatType, ChatTitle: m.ChatTitle, MemberIDs: m.MemberIDs}
	}
	return h.push.MessagesStored(ctx, tx, out)
}

// callPusher is push as call's Pusher: a call's ring and its withdrawal are queued in the call's
// transaction (a VoIP/high-priority push, then a cancelling one with the same collapse key).
type callPusher struct{ p *push.Service }

func pushCall(n call.PushNotice) push.Call {
	return push.Call{ID: n.CallID, ChatID: n.ChatID, Kind: n.Kind, CallerID: n.CallerID}
}

func (c callPusher) CallRinging(ctx context.Context, tx *sql.Tx, n call.PushNotice) error {
	return c.p.CallRinging(ctx, tx, pushCall(n), n.UserIDs)
}

func (c callPusher) CallStopped(ctx context.Context, tx *sql.Tx, n call.PushNotice) error {
	return c.p.CallEnded(ctx, tx, pushCall(n), n.UserIDs, n.Reason)
}

func (c callPusher) Wake(ctx context.Context) { c.p.Wake(ctx) }

// locationPusher is push as location's Notifier: geofence enter and exit events reach the
// watchers' devices (dwell stays a WebSocket event), and a new share its viewers'. Location tells
// it after the change is stored, so the outbox row is written in a transaction of its own right
// after (not atomically with the change: a node that dies between the two loses that one push,
// never the event or the share).
type locationPusher struct {
	p   *push.Service
	db  *store.DB
	log *slog.Logger
}

func (g locationPusher) GeofenceEvent(ctx context.Context, ev location.GeofenceEvent, recipients []string) {
	if ev.Type != "enter" && ev.Type != "exit" {
		return
	}
	n := push.Geofence{ID: ev.GeofenceID, Name: ev.Name, SubjectID: ev.UserID, Entered: ev.Type == "enter"}
	g.queue(ctx, "geofence "+ev.GeofenceID, func(tx *sql.Tx) error { return g.p.GeofenceEvent(ctx, tx, n, recipients) })
}

func (g locationPusher) ShareStarted(ctx context.Context, sh location.LocationShare, viewers []string) {
	g.queue(ctx, "share "+sh.ID, func(tx *sql.Tx) error { return g.p.LocationShared(ctx, tx, sh.OwnerID, sh.ChatID, viewers) })
}

func (g locationPusher) queue(ctx context.Context, what string, enqueue func(*sql.Tx) error) {
	if err := g.db.Tx(ctx, enqueue); err != nil {
		g.log.WarnContext(ctx, "push: cannot queue a location notification", "for", what, "err", err)
		return
	}
	g.p.Wake(ctx)
}
