package chat

import (
	"context"
	"database/sql"
	"fmt"
)

// SendHook is told, inside the group commit's transaction, about the messages it stored;
// an error rolls the batch back like any store error.
//
// It runs once per transaction with every message the transaction stored (retries of a
// client_id are not stored again, so they are not passed), after the messages and their
// attachments are written and before the commit: rows it writes with tx commit with the messages
// or not at all. When the batch fails, the writer retries each op in a transaction of its own
// (see Service.commit), so a hook can be called again with a subset of the same messages after a
// rollback. It runs on the writer goroutine and holds up every sender of the batch: it should
// write, not wait on the network. It must not modify msgs (their MemberIDs are shared).
type SendHook interface {
	MessagesStored(ctx context.Context, tx *sql.Tx, msgs []StoredMessage) error
}

// StoredMessage is a message as committed, with the chat's members at that moment.
type StoredMessage struct {
	Message   Message  // the stored message (chat's own type, with seq)
	ChatType  string   // "direct" or "group"
	ChatTitle string   // "" for direct chats
	MemberIDs []string // every member of the chat at commit time (the sender included)
}

// runSendHooks tells the hooks about the messages res[idx] that tx stored, with their chats'
// members: those of the roster cache when it holds the members_version the messages were stored
// with (the common case: the pipeline loads the rosters to publish), else read in tx (one query
// for the batch). Without hooks nothing is looked up.
func (s *Service) runSendHooks(ctx context.Context, tx *btx, res []opResult, idx []int) error {
	if len(s.opts.SendHooks) == 0 || len(idx) == 0 {
		return nil
	}
	chats := map[string]*chatMembers{}
	missing := map[string]bool{}
	for _, i := range idx {
		id := res[i].msg.ChatID
		if chats[id] != nil || missing[id] {
			continue
		}
		if r, ok := s.rosters.peek(id); ok && r.version == res[i].membersVersion {
			chats[id] = &chatMembers{typ: r.typ, title: r.title, members: r.ids}
		} else {
			missing[id] = true
		}
	}
	if len(missing) > 0 {
		read, err := chatsWithMembers(ctx, tx, sortedKeys(missing))
		if err != nil {
			return err
		}
		for id, c := range read {
			chats[id] = c
		}
	}
	msgs := make([]StoredMessage, len(idx))
	for n, i := range idx {
		m := res[i].msg
		c := chats[m.ChatID]
		if c == nil { // cannot happen: the sender's marks were raised as a member's
			return fmt.Errorf("send hook: chat %s has no members", m.ChatID)
		}
		msgs[n] = StoredMessage{Message: m, ChatType: string(c.typ), ChatTitle: c.title, MemberIDs: c.members}
	}
	for _, h := range s.opts.SendHooks {
		if err := h.MessagesStored(ctx, tx.Tx, msgs); err != nil {
			return fmt.Errorf("send hook: %w", err)
		}
	}
	return nil
}
