package server

import (
	"context"
	"database/sql"

	"github.com/nerutalk/nerutalk/internal/apperr"
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

// pushChats is chat's receipts as push.Chats.
type pushChats struct{ chats *chat.Service }

func (c pushChats) DeliveredSeq(ctx context.Context, userID, chatID string) (int64, error) {
	rs, err := c.chats.Receipts(ctx, userID, chatID) // not found unless userID is a member
	if err != nil {
		return 0, err
	}
	for _, r := range rs {
		if r.UserID == userID {
			return r.DeliveredSeq, nil
		}
	}
	return 0, apperr.NotFound("chat")
}

// pushHook is chat's send hook for push, which is built after chat (it reads chat's receipts);
// nothing is sent before the server serves, so it is set by then.
type pushHook struct{ s *Server }

func (h pushHook) MessagesStored(ctx context.Context, tx *sql.Tx, msgs []chat.StoredMessage) error {
	if h.s.Push == nil || len(msgs) == 0 {
		return nil
	}
	out := make([]push.StoredMessage, len(msgs))
	for i, m := range msgs {
		out[i] = push.StoredMessage{ID: m.Message.ID, ChatID: m.Message.ChatID, SenderID: m.Message.SenderID, Seq: m.Message.Seq,
			Kind: string(m.Message.Kind), Text: m.Message.Text, Deleted: m.Message.Deleted,
			ChatType: m.ChatType, ChatTitle: m.ChatTitle, MemberIDs: m.MemberIDs}
	}
	return h.s.Push.MessagesStored(ctx, tx, out)
}
