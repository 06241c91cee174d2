package chat

import (
	"context"
	"slices"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// MemberIDs returns the chat's members, from the member cache (which a change of members drops on
// this node before the change returns, and on other nodes when the bus brings it). A chat that
// does not exist is apperr not_found. It does not check who asks.
func (s *Service) MemberIDs(ctx context.Context, chatID string) ([]string, error) {
	r, err := s.rosters.get(ctx, chatID)
	if isNotFound(err) {
		return nil, apperr.NotFound("chat")
	}
	if err != nil {
		return nil, s.internal("members", err)
	}
	return slices.Clone(r.ids), nil
}

// MembersHook is told who joined and who left a chat, once per change, on the node that made it,
// as the change takes effect, on the event pipeline (between the events committed before and after
// it): it must be quick and must not call back into the chat service's writes.
type MembersHook func(ctx context.Context, chatID string, added, removed []string)

// OnMembersChanged sets the hook; call it while wiring, before the service is used.
func (s *Service) OnMembersChanged(fn MembersHook) { s.membersHook = fn }

// runMembersHook calls the hook, if any, with who joined (in after, not in before) and who left.
func (s *Service) runMembersHook(ctx context.Context, chatID string, before []memberRow, after []string, removed []string) {
	if s.membersHook == nil {
		return
	}
	var added []string
	for _, u := range after {
		if !slices.ContainsFunc(before, func(m memberRow) bool { return m.UserID == u }) {
			added = append(added, u)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return
	}
	s.membersHook(ctx, chatID, added, slices.Clone(removed))
}
