package chat

import (
	"context"
	"slices"
)

// What other features (calls, and whoever else needs it) ask of chats, as methods that take and
// return plain values, so that they declare a small interface instead of importing chat.

// Membership reports whether userID is a member of chatID (an apperr 404 when not, or when the
// chat does not exist), whether the chat is a group, whether the user manages it (owner or admin)
// and the ids of its members.
func (s *Service) Membership(ctx context.Context, chatID, userID string) (group, manager bool, members []string, err error) {
	r, role, err := s.member(ctx, chatID, userID)
	if err != nil {
		return false, false, nil, err
	}
	return r.typ == Group, role.manages(), append([]string(nil), r.ids...), nil
}

// MembersAmong returns those of userIDs who are members of chatID now, in their order: none when
// the chat does not exist. It reads the roster cache, which every node refreshes on a change of
// members before the change's events go out, so a removed member is left out from then on.
func (s *Service) MembersAmong(ctx context.Context, chatID string, userIDs []string) ([]string, error) {
	if !validID(chatID) {
		return nil, nil
	}
	r, err := s.rosters.get(ctx, chatID)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, s.internal("members", err)
	}
	out := make([]string, 0, len(userIDs))
	for _, u := range userIDs {
		if _, ok := r.roles[u]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

// PostSystem stores a system message (kind "system", e.g. "Missed audio call") from senderID,
// who must be a member, and publishes it like any message. The same (senderID, clientID) again
// stores nothing, so callers racing to post the same notice post it once.
func (s *Service) PostSystem(ctx context.Context, chatID, senderID, clientID, text string) error {
	m := Message{ID: newID(), ChatID: chatID, SenderID: senderID, ClientID: clientID, Kind: KindSystem, Text: text}
	_, err := s.submit(ctx, &op{send: &sendOp{msg: m}})
	return err
}

// ActiveCalls tells which chats have a live (ringing or active) call: the calls feature.
type ActiveCalls interface {
	// LiveCalls maps each of chatIDs that has a live call to the call's id.
	LiveCalls(ctx context.Context, chatIDs []string) (map[string]string, error)
}

// withActiveCalls fills the views' active_call.
func (s *Service) withActiveCalls(ctx context.Context, views []ChatView) error {
	if s.opts.ActiveCalls == nil || len(views) == 0 {
		return nil
	}
	ids := make([]string, len(views))
	for i, v := range views {
		ids[i] = v.ID
	}
	live, err := s.opts.ActiveCalls.LiveCalls(ctx, ids)
	if err != nil {
		return err
	}
	for i := range views {
		if id, ok := live[views[i].ID]; ok {
			views[i].ActiveCall = &id
		}
	}
	return nil
}

// MembersHook is told, once per change of a chat's members, on the node that made it: the members
// after the change, who joined and who left. It runs as the change takes effect, on the event
// pipeline (between the events committed before and after it): it must be quick and must not call
// back into the chat service's writes.
type MembersHook func(ctx context.Context, chatID string, members, added, removed []string)

// OnMembersChanged adds a hook (location's shares, calls' participants); the hooks run in the
// order they were added. Call it while wiring, before the service is used.
func (s *Service) OnMembersChanged(fn MembersHook) { s.membersHooks = append(s.membersHooks, fn) }

// runMembersHook calls the hooks, if any, when someone joined (in after, not in before) or left.
func (s *Service) runMembersHook(ctx context.Context, chatID string, before []memberRow, after, removed []string) {
	if len(s.membersHooks) == 0 {
		return
	}
	var added []string
	for _, u := range after {
		if !slices.ContainsFunc(before, func(m memberRow) bool { return m.UserID == u }) {
			added = append(added, u)
		}
	}
	if len(added) > 0 || len(removed) > 0 {
		for _, fn := range s.membersHooks {
			fn(ctx, chatID, slices.Clone(after), slices.Clone(added), slices.Clone(removed))
		}
	}
}
