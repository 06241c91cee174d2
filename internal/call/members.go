package call

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/nerutalk/nerutalk/internal/store"
)

// ReasonRemoved is the reason of call_participant_left for a participant who left the call's chat
// or was removed from it while the call was ringing or active.
const ReasonRemoved = "removed"

// MembersChanged takes the users who left a chat, or were removed from it, out of the chat's live
// call: a joined or invited participant becomes left (not counted any more), and the others get
// call_participant_left with reason "removed" (the removed user gets nothing: their last event of
// the chat is its chat_updated). A call left with nobody in it, or ringing for nobody any more,
// ends (cancelled if it was never answered, else completed; a direct call as Leave ends it).
//
// It is chat's members hook (chat.Service.OnMembersChanged), run once on the node that made the
// change, after every node's roster of the chat was refreshed: from then on every operation of a
// removed user on the call is refused (see access) whether or not this ran.
func (s *Service) MembersChanged(ctx context.Context, chatID string, _, _, removed []string) {
	if len(removed) == 0 {
		return
	}
	id, err := liveCallOfChat(ctx, s.db.W, chatID)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		s.log.ErrorContext(ctx, "call: live call of a changed chat", "chat_id", chatID, "err", err)
		return
	}
	if _, err := s.dropRemoved(ctx, id, removed); err != nil && !errors.Is(err, errEnded) {
		s.log.ErrorContext(ctx, "call: drop removed members", "call_id", id, "err", err)
	}
}

// dropRemoved marks the removed users' participation in the call left.
func (s *Service) dropRemoved(ctx context.Context, callID string, removed []string) (Call, error) {
	return s.transition(ctx, "", callID, "", func(tx *sql.Tx, c *Call, now time.Time) ([]effect, error) {
		var effs []effect
		for i := range c.Participants {
			p := &c.Participants[i]
			if !slices.Contains(removed, p.UserID) || (p.State != StateJoined && p.State != StateInvited) {
				continue
			}
			from := p.State
			p.State, p.LeftAt = StateLeft, &now
			if _, err := setParticipant(ctx, tx, c.ID, *p, from); err != nil {
				return nil, err
			}
			effs = append(effs, effect{typ: EventParticipantLeft, user: p.UserID, reason: ReasonRemoved})
		}
		if len(effs) == 0 {
			return nil, nil
		}
		joined := c.count(StateJoined)
		ringing := c.Status == StatusRinging
		if joined == 0 || (ringing && c.count(StateInvited) == 0) || (!c.Group && !ringing && joined < 2) {
			reason := ReasonCompleted
			if ringing {
				reason = ReasonCancelled
			}
			more, err := end(ctx, tx, c, now, "", reason)
			if err != nil {
				return nil, err
			}
			effs = append(effs, more...)
		}
		return effs, nil
	})
}
