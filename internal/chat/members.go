package chat

import (
	"context"
	"slices"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Members returns a page of a chat's members with their profiles, oldest first (the order of
// members in GET /chats/{id}), and the cursor of the next page ("" at the end). It reads the
// cached roster, so a page costs one profile lookup of at most limit ids.
func (s *Service) Members(ctx context.Context, userID, chatID string, limit int, cursor string) ([]MemberInfo, string, error) {
	var after *memberCursor
	if cursor != "" {
		c, err := parseMemberCursor(cursor)
		if err != nil {
			return nil, "", apperr.Invalid("query.cursor", "not a cursor of this list")
		}
		after = &c
	}
	r, _, err := s.member(ctx, chatID, userID)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after != nil {
		start = memberIndexAfter(r.infos, *after)
	}
	end := min(start+max(limit, 1), len(r.infos))
	page := slices.Clone(r.infos[start:end])
	if page == nil {
		page = []MemberInfo{}
	}
	if err := s.withMemberProfiles(ctx, s.db.R, page); err != nil {
		return nil, "", s.internal("members", err)
	}
	next := ""
	if end < len(r.infos) {
		last := page[len(page)-1]
		next = memberCursor{JoinedAt: store.Millis(last.JoinedAt), UserID: last.UserID}.String()
	}
	return page, next, nil
}

// memberIndexAfter returns where the page after c starts in infos (ordered by joined_at, user_id
// as the database sorts them): right after c's member when they are still there, else at the
// first member who joined after c (or at the same millisecond with a greater id).
func memberIndexAfter(infos []MemberInfo, c memberCursor) int {
	if i := slices.IndexFunc(infos, func(m MemberInfo) bool { return m.UserID == c.UserID }); i >= 0 &&
		store.Millis(infos[i].JoinedAt) == c.JoinedAt {
		return i + 1
	}
	for i, m := range infos {
		at := store.Millis(m.JoinedAt)
		if at > c.JoinedAt || (at == c.JoinedAt && m.UserID > c.UserID) {
			return i
		}
	}
	return len(infos)
}
