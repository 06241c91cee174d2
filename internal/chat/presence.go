package chat

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// What the realtime hub asks of chats to route presence by interest (realtime.PresenceAudience):
// whose presence a connection follows automatically, whose it may subscribe to, and the members
// of a chat for an online count. None of it costs work proportional to the size of a large group
// the user is in, except ChatMembers, which reads the cached roster.

// largeGroup reports whether a group of n members is large (Options.LargeGroupMembers).
func (s *Service) largeGroup(n int) bool { return n > s.opts.LargeGroupMembers }

// AutoPresence returns the users whose presence userID follows without asking: their direct-chat
// partners and the co-members of their groups that are not large. The group sizes come from the
// cached rosters, which the event pipeline needs anyway.
func (s *Service) AutoPresence(ctx context.Context, userID string) ([]string, error) {
	if !validID(userID) {
		return nil, nil
	}
	seen := map[string]struct{}{userID: {}}
	// Who blocked userID: never followed (read from the database, so a new connection on any
	// node follows the block at once).
	blockers, err := s.blockersOf(ctx, userID)
	if err != nil {
		return nil, s.internal("auto presence", err)
	}
	for u := range blockers {
		seen[u] = struct{}{}
	}
	var out []string
	add := func(u string) {
		if _, ok := seen[u]; !ok {
			seen[u] = struct{}{}
			out = append(out, u)
		}
	}
	partners, err := s.column(ctx, `SELECT o.user_id FROM chat_members m
		JOIN chats c ON c.id = m.chat_id AND c.type = 'direct'
		JOIN chat_members o ON o.chat_id = m.chat_id AND o.user_id <> m.user_id
		WHERE m.user_id = $1`, userID)
	if err != nil {
		return nil, s.internal("auto presence", err)
	}
	for _, u := range partners {
		add(u)
	}
	groups, err := s.column(ctx, `SELECT m.chat_id FROM chat_members m
		JOIN chats c ON c.id = m.chat_id AND c.type = 'group' WHERE m.user_id = $1`, userID)
	if err != nil {
		return nil, s.internal("auto presence", err)
	}
	for _, g := range groups {
		r, err := s.rosters.get(ctx, g)
		if isNotFound(err) {
			continue // deleted since
		}
		if err != nil {
			return nil, s.internal("auto presence", err)
		}
		if s.largeGroup(len(r.ids)) {
			continue
		}
		for _, u := range r.ids {
			add(u)
		}
	}
	return out, nil
}

// PresenceVisible returns the users among ids who share a chat with userID: whose presence they
// may subscribe to. One query, bounded by the subscription cap.
func (s *Service) PresenceVisible(ctx context.Context, userID string, ids []string) ([]string, error) {
	args := []any{userID}
	var marks []string
	for _, id := range ids {
		if validID(id) && id != userID { // never reaches SQL otherwise: see validID
			args = append(args, id)
			marks = append(marks, "$"+strconv.Itoa(len(args)))
		}
	}
	if len(marks) == 0 || !validID(userID) {
		return []string{}, nil
	}
	got, err := s.column(ctx, `SELECT DISTINCT o.user_id FROM chat_members m
		JOIN chat_members o ON o.chat_id = m.chat_id
		WHERE m.user_id = $1 AND o.user_id IN (`+strings.Join(marks, ",")+`)`, args...)
	if err != nil {
		return nil, s.internal("presence visible", err)
	}
	// In the order asked, without those who blocked userID.
	ok := make(map[string]struct{}, len(got))
	for _, u := range got {
		ok[u] = struct{}{}
	}
	blockers, err := s.blockersOf(ctx, userID)
	if err != nil {
		return nil, s.internal("presence visible", err)
	}
	for u := range blockers {
		delete(ok, u)
	}
	out := make([]string, 0, len(got))
	for _, u := range ids {
		if _, yes := ok[u]; yes {
			out = append(out, u)
			delete(ok, u)
		}
	}
	return out, nil
}

// ChatMembers returns the members of chatID when userID is one of them (not_found otherwise):
// presence_count counts who among them is online. hidden are the members who blocked userID,
// whose presence userID may not see (one indexed lookup). The caller must not modify the slices.
func (s *Service) ChatMembers(ctx context.Context, userID, chatID string) (members, hidden []string, err error) {
	r, _, err := s.member(ctx, chatID, userID)
	if err != nil {
		return nil, nil, err
	}
	blockers, err := s.blockersOf(ctx, userID)
	if err != nil {
		return nil, nil, s.internal("chat members", err)
	}
	for u := range blockers {
		if _, ok := r.roles[u]; ok {
			hidden = append(hidden, u)
		}
	}
	return r.ids, hidden, nil
}

// PresenceRefresher recomputes the automatic presence of users' connections (the realtime hub's
// RefreshPresence); it must return at once.
type PresenceRefresher func(ctx context.Context, users []string)

// OnPresenceInterest sets who is told, on every node, that the automatic presence of some users
// may have changed (a direct chat was created, someone joined or left a small group, a group
// crossed the large-group size); call it while wiring.
func (s *Service) OnPresenceInterest(fn PresenceRefresher) { s.presenceRefresh = fn }

// column runs a query returning one text column.
func (s *Service) column(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
