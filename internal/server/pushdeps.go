package server

import (
	"context"
	"database/sql"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/push"
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
