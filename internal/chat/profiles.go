package chat

import (
	"context"
	"slices"
	"strings"
)

// Chats carry what a chat list shows: every listed member's username, display name and avatar,
// and for a direct chat the other user (peer). The profiles come from the accounts (Accounts.
// Profiles, auth's users table) in one batched lookup per request, for the whole page of chats,
// and are never cached here: a renamed user or a new avatar shows at the next GET. Rosters (the
// cached member lists) hold memberships only; views copy them before filling in profiles.

// listedMembers returns the members a chat of GET /chats lists: all of them up to max, else the
// owner and admins first, then the oldest members, max in all (truncated true). infos is the
// roster's (oldest first) and is not modified.
func listedMembers(infos []MemberInfo, max int) (out []MemberInfo, truncated bool) {
	if len(infos) <= max {
		return slices.Clone(infos), false
	}
	out = make([]MemberInfo, 0, max)
	for _, m := range infos {
		if m.Role.manages() && len(out) < max {
			out = append(out, m)
		}
	}
	for _, m := range infos {
		if len(out) == max {
			break
		}
		if !m.Role.manages() {
			out = append(out, m)
		}
	}
	return out, true
}

// peerID returns the other user of a direct chat from its key ("<id>:<id>"), "" for a group.
func peerID(directKey, self string) string {
	a, b, ok := strings.Cut(directKey, ":")
	switch {
	case !ok:
		return ""
	case a == self:
		return b
	default:
		return a
	}
}

// withProfiles fills in the profiles of the views' members and peers with one lookup (q: the
// read pool, or the transaction that built the views). The views' member slices must be their
// own (not a roster's).
func (s *Service) withProfiles(ctx context.Context, q querier, views []ChatView) error {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for i := range views {
		for _, m := range views[i].Members {
			add(m.UserID)
		}
		if p := views[i].Peer; p != nil {
			add(p.UserID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	profiles, err := s.accounts.Profiles(ctx, q, ids)
	if err != nil {
		return err
	}
	for i := range views {
		for j := range views[i].Members {
			m := &views[i].Members[j]
			m.setProfile(profiles[m.UserID]) // zero for an account that is gone
		}
		if p := views[i].Peer; p != nil {
			if got, ok := profiles[p.UserID]; ok {
				*p = got
			}
		}
	}
	return nil
}

// withMemberProfiles fills in the profiles of members (a slice of the caller's own) with one lookup.
func (s *Service) withMemberProfiles(ctx context.Context, q querier, members []MemberInfo) error {
	return s.withProfiles(ctx, q, []ChatView{{Chat: Chat{Members: members}}})
}
