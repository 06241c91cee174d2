package location

import (
	"context"
	"slices"

	"github.com/nerutalk/nerutalk/internal/store"
)

// BlocksChanged is told (chat's BlocksHook), once on the node that made the change, that a block
// now stands between a and b (blocked) or no longer does. Location is never exchanged between
// them, and each is told so as if the other had stopped sharing:
//   - blocked: their user shares with each other end (status stopped) and the viewer gets
//     location_share_stop (reason stopped); for each one's chat shares the other saw, the other
//     gets location_share_stop (reason stopped), while the chat's other members keep seeing it;
//   - unblocked: each gets location_share_start of the other's active chat shares they see
//     again (ended user shares stay ended).
//
// The events go through the bus to every node. Failures are logged: the shares stop reaching
// the blocked user whatever happens here (every delivery reads the blocks).
func (s *Service) BlocksChanged(ctx context.Context, a, b string, blocked bool) {
	if blocked {
		s.endUserSharesBetween(ctx, a, b)
	}
	for _, p := range [][2]string{{a, b}, {b, a}} {
		s.chatSharesSeenBy(ctx, p[0], p[1], blocked)
	}
}

// endUserSharesBetween ends the active user shares between a and b, either way, and tells their
// viewers.
func (s *Service) endUserSharesBetween(ctx context.Context, a, b string) {
	shares, err := collectShares(s.db.W.QueryContext(ctx, `UPDATE location_shares SET status = 'stopped', ended_at = $3
		WHERE status = 'active' AND ((owner_id = $1 AND user_id = $2) OR (owner_id = $2 AND user_id = $1))
		RETURNING `+shareCols, a, b, store.Millis(s.now())))
	if err != nil {
		s.log.Error("location: end the shares of a block", "err", err)
		return
	}
	for _, sh := range shares {
		s.announceStop(ctx, sh, []string{sh.UserID}, ReasonStopped)
	}
}

// chatSharesSeenBy tells viewer that owner's active chat shares stopped (blocked) or started
// (unblocked) for them.
func (s *Service) chatSharesSeenBy(ctx context.Context, owner, viewer string, blocked bool) {
	shares, err := s.activeShares(ctx, `owner_id = $1 AND chat_id IS NOT NULL`, owner, s.now())
	if err != nil {
		s.log.Error("location: chat shares of a block", "err", err)
		return
	}
	for _, sh := range shares {
		// Blocked: who saw it before (the block is committed, so without the block check).
		see := s.viewers
		if blocked {
			see = s.viewersOf
		}
		v, err := see(ctx, sh)
		if err != nil {
			s.log.Error("location: viewers of a chat share", "share", sh.ID, "err", err)
			continue
		}
		if !slices.Contains(v, viewer) {
			continue
		}
		if blocked {
			s.announceStop(ctx, sh, []string{viewer}, ReasonStopped)
		} else if err := s.announceStart(ctx, sh, []string{viewer}); err != nil {
			s.log.Error("location: share start after an unblock", "share", sh.ID, "err", err)
		}
	}
}
