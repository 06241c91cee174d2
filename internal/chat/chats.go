package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/usertext"
)

// MaxTitleChars is the longest group title.
const MaxTitleChars = 128

var (
	errNotAGroup     = apperr.New(apperr.KindConflict, "not_a_group", "direct chats have no title, member management or roles")
	errOwnerRequired = apperr.New(apperr.KindConflict, "owner_required",
		"a group keeps one owner: make another member the owner to hand the role over")
)

// CreateInput is the body of POST /chats.
type CreateInput struct {
	Type      Type     `json:"type" enum:"direct,group" doc:"direct: exactly one other member; group: any number up to the limit" example:"group"`
	MemberIDs []string `json:"member_ids" maxItems:"1000" doc:"The other members (the creator joins as owner)" example:"01938f4e-7c1a-7d2b-9c3e-2a1b0c9d8e7f"`
	Title     string   `json:"title,omitempty" maxLength:"512" doc:"Group title (at most 128 characters); not allowed for direct chats" example:"Weekend trip"`
}

// invalid returns a validation failure with its own code.
func invalid(code, location, message string) *apperr.Error {
	e := apperr.Invalid(location, message)
	e.Code = code
	return e
}

// cleanTitle checks a group title (usertext.Name: no control, invisible or bidirectional
// formatting characters) and returns it trimmed.
func cleanTitle(title string) (string, error) {
	title = strings.TrimSpace(title)
	if err := usertext.Name.Check(title); err != nil {
		return "", apperr.Invalid("body.title", err.Error())
	}
	if n := utf8.RuneCountInString(title); n > MaxTitleChars {
		return "", apperr.Invalid("body.title", fmt.Sprintf("at most %d characters, got %d", MaxTitleChars, n))
	}
	return title, nil
}

// otherUsers returns ids without duplicates, empty strings and self, in their first order.
func otherUsers(ids []string, self string) []string {
	seen := map[string]bool{self: true, "": true}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (s *Service) checkUsersExist(ctx context.Context, q querier, location string, ids []string) error {
	if err := checkIDs(location, ids); err != nil {
		return err
	}
	missing, err := s.accounts.MissingUsers(ctx, q, ids)
	if err != nil {
		return s.internal("check users", err)
	}
	if len(missing) > 0 {
		return invalid("unknown_users", location, "no such users: "+strings.Join(missing, ", "))
	}
	return nil
}

// Create creates a chat; creating a direct chat that exists already returns it with created false
// (and brings back a member who had left it).
func (s *Service) Create(ctx context.Context, userID string, in CreateInput) (ChatView, bool, error) {
	v, created, err := s.CreateChat(ctx, userID, in)
	return v.ChatView, created, err
}

// CreateChat is Create, with the users who were invited instead of added (their group_adds
// setting) or swallowed (they blocked the creator).
func (s *Service) CreateChat(ctx context.Context, userID string, in CreateInput) (ChatWithInvites, bool, error) {
	others := otherUsers(in.MemberIDs, userID)
	var chatID string
	var created bool
	invited := []string{}
	var invite []string
	switch in.Type {
	case Direct:
		if len(others) != 1 {
			return ChatWithInvites{}, false, apperr.Invalid("body.member_ids", "a direct chat has exactly one other member")
		}
		if in.Title != "" {
			return ChatWithInvites{}, false, apperr.Invalid("body.title", "direct chats have no title")
		}
		if err := s.checkUsersExist(ctx, s.db.R, "body.member_ids", others); err != nil {
			return ChatWithInvites{}, false, err
		}
		// Read from the database, not the cache: a block made on another node a moment ago holds.
		if blocked, err := s.Blocked(ctx, userID, others[0]); err != nil {
			return ChatWithInvites{}, false, s.internal("create direct chat", err)
		} else if blocked {
			return ChatWithInvites{}, false, errBlocked
		}
		var err error
		chatID, created, err = s.createDirect(ctx, userID, others[0])
		if err != nil {
			return ChatWithInvites{}, false, err
		}
	case Group:
		title, err := cleanTitle(in.Title)
		if err != nil {
			return ChatWithInvites{}, false, err
		}
		if 1+len(others) > s.opts.MaxGroupMembers {
			return ChatWithInvites{}, false, invalid("too_many_members", "body.member_ids",
				fmt.Sprintf("a group has at most %d members", s.opts.MaxGroupMembers))
		}
		if err := s.checkUsersExist(ctx, s.db.R, "body.member_ids", others); err != nil {
			return ChatWithInvites{}, false, err
		}
		add, inv, swallowed, err := s.splitAdds(ctx, s.db.R, userID, others, nil)
		if err != nil {
			return ChatWithInvites{}, false, err
		}
		invite, invited = inv, inOrder(others, inv, swallowed)
		chatID, err = s.createGroup(ctx, userID, title, add)
		if err != nil {
			return ChatWithInvites{}, false, err
		}
		created = true
	default:
		return ChatWithInvites{}, false, apperr.Invalid("body.type", "want direct or group")
	}
	if err := s.inviteAll(ctx, chatID, userID, invite); err != nil {
		return ChatWithInvites{}, false, err
	}
	v, err := s.Get(ctx, userID, chatID)
	return ChatWithInvites{ChatView: v, InvitedUserIDs: invited}, created, err
}

func directKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + ":" + b
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Service) createGroup(ctx context.Context, owner, title string, others []string) (string, error) {
	id := newID()
	now := s.now()
	var done chan struct{}
	err := s.write(ctx, func(tx *sql.Tx) ([]event, error) {
		c := chatRow{ID: id, Type: Group, Title: title, CreatedAt: now, LastMessageAt: now}
		if err := insertChat(ctx, tx, c, "", owner); err != nil {
			return nil, err
		}
		if _, err := insertMembers(ctx, tx, id, []string{owner}, Owner, now, 0); err != nil {
			return nil, err
		}
		if _, err := insertMembers(ctx, tx, id, others, Member, now, 0); err != nil {
			return nil, err
		}
		evs, d, err := s.membershipEvent(ctx, tx, c, nil, nil)
		done = d
		return evs, err
	})
	if err != nil {
		return "", s.internal("create group", err)
	}
	<-done
	return id, nil
}

// createDirect returns the pair's direct chat, creating it (created true) or bringing back a
// member who left it.
func (s *Service) createDirect(ctx context.Context, userID, peer string) (string, bool, error) {
	key := directKey(userID, peer)
	for attempt := 0; ; attempt++ {
		id, created, done, err := s.createDirectOnce(ctx, key, userID, peer)
		if err != nil && store.IsUniqueViolation(err) && attempt == 0 {
			continue // another node created it at the same moment: now it exists
		}
		if err != nil {
			return "", false, s.internal("create direct chat", err)
		}
		if done != nil {
			<-done
		}
		return id, created, nil
	}
}

func (s *Service) createDirectOnce(ctx context.Context, key, userID, peer string) (string, bool, chan struct{}, error) {
	var (
		id      string
		created bool
		done    chan struct{}
	)
	now := s.now()
	err := s.write(ctx, func(tx *sql.Tx) ([]event, error) {
		var err error
		id, err = directChatID(ctx, tx, key)
		if errors.Is(err, store.ErrNotFound) {
			id, created = newID(), true
			c := chatRow{ID: id, Type: Direct, CreatedAt: now, LastMessageAt: now}
			if err := insertChat(ctx, tx, c, key, userID); err != nil {
				return nil, err
			}
			if _, err := insertMembers(ctx, tx, id, []string{userID}, Owner, now, 0); err != nil {
				return nil, err
			}
			if _, err := insertMembers(ctx, tx, id, []string{peer}, Member, now, 0); err != nil {
				return nil, err
			}
			var evs []event
			evs, done, err = s.membershipEvent(ctx, tx, c, nil, nil)
			return evs, err
		}
		if err != nil {
			return nil, err
		}
		c, err := lockChat(ctx, tx, id, now)
		if err != nil {
			return nil, err
		}
		before, err := listMembers(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		added, err := insertMembers(ctx, tx, id, []string{userID, peer}, Member, now, c.LastSeq)
		if err != nil || len(added) == 0 {
			return nil, err
		}
		var evs []event
		evs, done, err = s.membershipEvent(ctx, tx, c, before, nil)
		return evs, err
	})
	return id, created, done, err
}

// membershipEvent builds the chat_updated events of a change to a chat's members, title or roles,
// read inside the changing transaction. before are the members before the change (nil for a new
// chat), removed the users who left or were removed: they receive this last chat_updated and
// nothing of the chat after it. When the events are handled, the caches forget the chat and
// everyone in it, removed users leave the chat's topic, and the automatic presence of the members
// of a direct chat or small group is refreshed. The returned channel is closed once they have been
// handled.
//
// A chat that is not a large group sends the chat with all its members to everyone. A large group
// (more than Options.LargeGroupMembers) sends the full chat only to the newcomers, and everyone
// else one summarizing ChatChange (member_count and this change's deltas): a batch of additions
// costs one frame per member, never one per member per added member.
func (s *Service) membershipEvent(ctx context.Context, tx *sql.Tx, c chatRow, before []memberRow, removed []string) ([]event, chan struct{}, error) {
	after, err := listMembers(ctx, tx, c.ID)
	if err != nil {
		return nil, nil, err
	}
	ch := Chat{ID: c.ID, Type: c.Type, Title: c.Title, CreatedAt: store.Time(c.CreatedAt), LastSeq: c.LastSeq,
		Members: make([]MemberInfo, len(after)), MemberCount: len(after)}
	audience := make([]string, 0, len(after)+len(removed))
	for i, m := range after {
		ch.Members[i] = MemberInfo{UserID: m.UserID, Role: m.Role, JoinedAt: store.Time(m.JoinedAt)}
		audience = append(audience, m.UserID)
	}
	audience = append(audience, removed...)
	touched := slices.Clone(audience)
	for _, m := range before {
		touched = append(touched, m.UserID)
	}
	// The automatic presence of a direct chat's or small group's members follows its membership
	// (a group that becomes large, or small again, counts too).
	presence := c.Type == Direct || !s.largeGroup(len(after)) || (before != nil && !s.largeGroup(len(before)))
	done := make(chan struct{})
	first := event{
		chatID: c.ID, typ: EventChatUpdated,
		apply: func(ctx context.Context) {
			s.announceMembersChanged(ctx, membersChanged{ChatID: c.ID, Touched: touched, Removed: removed, Presence: presence})
			for _, u := range removed {
				s.pub.LeaveTopicUser(ctx, topic(c.ID), u)
			}
			s.runMembersHook(ctx, c.ID, before, audience[:len(after)], removed)
		},
	}
	// The events carry the members' profiles like GET /chats/{id}: one batched lookup per change
	// (not per member, not per recipient), in the changing transaction, and only for the member
	// lists that are sent.
	if c.Type != Group || !s.largeGroup(len(after)) {
		if err := s.withMemberProfiles(ctx, tx, ch.Members); err != nil {
			return nil, nil, err
		}
		first.data, first.users, first.done = ch, audience, done
		return []event{first}, done, nil
	}
	change := ChatChange{ID: c.ID, Type: c.Type, Title: c.Title, CreatedAt: ch.CreatedAt, LastSeq: c.LastSeq,
		Partial: true, MemberCount: len(after), MembersRemoved: removed}
	was := make(map[string]Role, len(before))
	for _, m := range before {
		was[m.UserID] = m.Role
	}
	// The whole member list goes only to newcomers: a change without any (a title, a role, a
	// removal) looks up the profiles of the updated members alone, not of all 10,000.
	joined := len(after) > len(before)
	if !joined {
		for _, m := range after {
			if _, ok := was[m.UserID]; !ok {
				joined = true
				break
			}
		}
	}
	if joined {
		if err := s.withMemberProfiles(ctx, tx, ch.Members); err != nil {
			return nil, nil, err
		}
	}
	var newcomers, others []string
	for _, m := range ch.Members {
		role, ok := was[m.UserID]
		switch {
		case !ok:
			newcomers = append(newcomers, m.UserID)
			change.MembersAdded = append(change.MembersAdded, m)
		case role != m.Role:
			change.MembersUpdated = append(change.MembersUpdated, m)
			others = append(others, m.UserID)
		default:
			others = append(others, m.UserID)
		}
	}
	if !joined {
		if err := s.withMemberProfiles(ctx, tx, change.MembersUpdated); err != nil {
			return nil, nil, err
		}
	}
	others = append(others, removed...)
	first.data, first.users = ch, newcomers
	if len(newcomers) == 0 {
		first.typ = "" // only the apply
	}
	second := event{chatID: c.ID, typ: EventChatUpdated, data: change, users: others, done: done}
	if len(others) == 0 {
		second.typ = ""
	}
	return []event{first, second}, done, nil
}

// change runs a change to a group's members, title or roles: it locks the chat, checks that the
// actor is a member (else not_found), runs fn, deletes the chat if nobody is left, and publishes
// chat_updated. It returns once the change has taken effect for the events too.
func (s *Service) change(ctx context.Context, chatID, actor string, fn func(tx *sql.Tx, c *chatRow, me memberRow) (removed []string, err error)) error {
	if _, _, err := s.member(ctx, chatID, actor); err != nil {
		return err
	}
	var done chan struct{}
	var released []string
	err := s.write(ctx, func(tx *sql.Tx) ([]event, error) {
		released = nil
		c, err := lockChat(ctx, tx, chatID, s.now())
		if err != nil {
			return nil, err
		}
		before, err := listMembers(ctx, tx, chatID)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(before, func(m memberRow) bool { return m.UserID == actor })
		if i < 0 {
			return nil, apperr.NotFound("chat")
		}
		removed, err := fn(tx, &c, before[i])
		if err != nil {
			return nil, err
		}
		if len(removed) > 0 {
			n, err := countMembers(ctx, tx, chatID)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				if released, err = deleteChat(ctx, tx, chatID); err != nil {
					return nil, err
				}
			}
		}
		var evs []event
		evs, done, err = s.membershipEvent(ctx, tx, c, before, removed)
		return evs, err
	})
	if errors.Is(err, store.ErrNotFound) { // the chat went away
		return apperr.NotFound("chat")
	}
	if err != nil {
		return s.internal("change chat", err)
	}
	s.release(ctx, released)
	<-done
	return nil
}

// Get returns a chat as userID sees it.
func (s *Service) Get(ctx context.Context, userID, chatID string) (ChatView, error) {
	r, _, err := s.member(ctx, chatID, userID)
	if err != nil {
		return ChatView{}, err
	}
	v, err := getView(ctx, s.db.R, chatID, userID)
	if isNotFound(err) {
		return ChatView{}, apperr.NotFound("chat")
	}
	if err != nil {
		return ChatView{}, s.internal("get chat", err)
	}
	if err := s.loadAttachments(ctx, s.db.R, []*Message{v.lastMsg}); err != nil {
		return ChatView{}, s.internal("get chat", err)
	}
	views := []ChatView{makeView(v, r, math.MaxInt)}
	if err := s.withProfiles(ctx, s.db.R, views); err != nil {
		return ChatView{}, s.internal("get chat", err)
	}
	if err := s.withActiveCalls(ctx, views); err != nil {
		return ChatView{}, s.internal("get chat", err)
	}
	return views[0], nil
}

// makeView builds the view of a chat, listing at most maxMembers members (see listedMembers), in
// a slice of its own; withProfiles fills in the profiles.
func makeView(v viewRow, r *roster, maxMembers int) ChatView {
	members, truncated := listedMembers(r.infos, maxMembers)
	cv := ChatView{
		Chat: Chat{ID: v.chat.ID, Type: v.chat.Type, Title: v.chat.Title, Members: members,
			MemberCount: len(r.infos), MembersTruncated: truncated,
			CreatedAt: store.Time(v.chat.CreatedAt), LastSeq: v.chat.LastSeq},
		ReadSeq: v.member.ReadSeq, DeliveredSeq: v.member.DeliveredSeq,
		UnreadCount: max(0, v.chat.LastSeq-v.member.ReadSeq), LastMessage: v.lastMsg,
	}
	if cv.Members == nil {
		cv.Members = []MemberInfo{}
	}
	if v.chat.Type == Direct {
		if id := peerID(v.directKey, v.member.UserID); id != "" {
			cv.Peer = &UserProfile{UserID: id}
		}
	}
	return cv
}

// List returns a page of userID's chats, most recent activity first, and the cursor of the next
// page ("" at the end).
func (s *Service) List(ctx context.Context, userID string, limit int, cursor string) ([]ChatView, string, error) {
	var after *chatCursor
	if cursor != "" {
		c, err := parseChatCursor(cursor)
		if err != nil {
			return nil, "", apperr.Invalid("query.cursor", "not a cursor of this list")
		}
		after = &c
	}
	rows, err := listViews(ctx, s.db.R, userID, after, limit+1)
	if err != nil {
		return nil, "", s.internal("list chats", err)
	}
	last := make([]*Message, len(rows))
	for i := range rows {
		last[i] = rows[i].lastMsg
	}
	if err := s.loadAttachments(ctx, s.db.R, last); err != nil {
		return nil, "", s.internal("list chats", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[len(rows)-1].chat
		next = chatCursor{At: last.LastMessageAt, ID: last.ID}.String()
	}
	out := make([]ChatView, 0, len(rows))
	for _, v := range rows {
		r, err := s.rosters.get(ctx, v.chat.ID)
		if isNotFound(err) {
			continue // deleted since
		}
		if err != nil {
			return nil, "", s.internal("list chats", err)
		}
		out = append(out, makeView(v, r, MaxListedMembers))
	}
	if err := s.withProfiles(ctx, s.db.R, out); err != nil {
		return nil, "", s.internal("list chats", err)
	}
	if err := s.withActiveCalls(ctx, out); err != nil {
		return nil, "", s.internal("list chats", err)
	}
	return out, next, nil
}

// UpdateInput is the body of PATCH /chats/{id}.
type UpdateInput struct {
	Title string `json:"title" maxLength:"512" doc:"The new title (at most 128 characters)"`
}

// Update renames a group (owner or admin).
func (s *Service) Update(ctx context.Context, userID, chatID string, in UpdateInput) (ChatView, error) {
	title, err := cleanTitle(in.Title)
	if err != nil {
		return ChatView{}, err
	}
	err = s.change(ctx, chatID, userID, func(tx *sql.Tx, c *chatRow, me memberRow) ([]string, error) {
		if c.Type != Group {
			return nil, errNotAGroup
		}
		if !me.Role.manages() {
			return nil, apperr.Forbidden("only the owner and admins rename a group")
		}
		c.Title = title
		return nil, setTitle(ctx, tx, chatID, title)
	})
	if err != nil {
		return ChatView{}, err
	}
	return s.Get(ctx, userID, chatID)
}

// Leave takes userID out of the chat. An owner who leaves hands the role to the longest-standing
// admin, else the longest-standing member; the last member leaving deletes the chat.
func (s *Service) Leave(ctx context.Context, userID, chatID string) error {
	return s.change(ctx, chatID, userID, func(tx *sql.Tx, c *chatRow, me memberRow) ([]string, error) {
		return []string{userID}, s.removeMember(ctx, tx, chatID, me)
	})
}

func (s *Service) removeMember(ctx context.Context, tx *sql.Tx, chatID string, m memberRow) error {
	if m.Role == Owner {
		next, err := successor(ctx, tx, chatID, m.UserID)
		if err == nil {
			if err := setRole(ctx, tx, chatID, next, Owner); err != nil {
				return err
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return deleteMember(ctx, tx, chatID, m.UserID)
}

// AddMembersInput is the body of POST /chats/{id}/members.
type AddMembersInput struct {
	UserIDs []string `json:"user_ids" minItems:"1" maxItems:"1000" doc:"Users to add as members; current members are skipped"`
}

// AddMembers adds users to a group (owner or admin).
func (s *Service) AddMembers(ctx context.Context, userID, chatID string, in AddMembersInput) (ChatView, error) {
	v, err := s.AddMembersInvite(ctx, userID, chatID, in)
	return v.ChatView, err
}

// AddMembersInvite is AddMembers, with the users who were invited instead of added (their
// group_adds setting) or swallowed (they blocked the adder).
func (s *Service) AddMembersInvite(ctx context.Context, userID, chatID string, in AddMembersInput) (ChatWithInvites, error) {
	r, role, err := s.member(ctx, chatID, userID)
	if err != nil {
		return ChatWithInvites{}, err
	}
	all := otherUsers(in.UserIDs, userID)
	if len(all) == 0 {
		return ChatWithInvites{}, apperr.Invalid("body.user_ids", "name at least one user other than yourself")
	}
	// The checks the change makes again in its transaction, before anyone is invited.
	if r.typ != Group {
		return ChatWithInvites{}, errNotAGroup
	}
	if !role.manages() {
		return ChatWithInvites{}, apperr.Forbidden("only the owner and admins add members")
	}
	if err := s.checkUsersExist(ctx, s.db.R, "body.user_ids", all); err != nil {
		return ChatWithInvites{}, err
	}
	add, invite, swallowed, err := s.splitAdds(ctx, s.db.R, userID, all, r.roles)
	if err != nil {
		return ChatWithInvites{}, err
	}
	if len(add) > 0 {
		err = s.change(ctx, chatID, userID, func(tx *sql.Tx, c *chatRow, me memberRow) ([]string, error) {
			if c.Type != Group {
				return nil, errNotAGroup
			}
			if !me.Role.manages() {
				return nil, apperr.Forbidden("only the owner and admins add members")
			}
			if err := s.checkUsersExist(ctx, tx, "body.user_ids", add); err != nil {
				return nil, err
			}
			n, err := countMembers(ctx, tx, chatID)
			if err != nil {
				return nil, err
			}
			if already, err := existingMembers(ctx, s.newBtx(tx), pairsOf(chatID, add)); err != nil {
				return nil, err
			} else if n+len(add)-len(already) > s.opts.MaxGroupMembers {
				return nil, invalid("too_many_members", "body.user_ids", fmt.Sprintf("a group has at most %d members", s.opts.MaxGroupMembers))
			}
			_, err = insertMembers(ctx, tx, chatID, add, Member, s.now(), c.LastSeq)
			return nil, err
		})
		if err != nil {
			return ChatWithInvites{}, err
		}
	}
	if err := s.inviteAll(ctx, chatID, userID, invite); err != nil {
		return ChatWithInvites{}, err
	}
	v, err := s.Get(ctx, userID, chatID)
	if err != nil {
		return ChatWithInvites{}, err
	}
	return ChatWithInvites{ChatView: v, InvitedUserIDs: inOrder(all, invite, swallowed)}, nil
}

// inOrder returns the ids of ids that are in a or b, in the order of ids: the invited and the
// swallowed adds mixed as they were asked, so that the answer does not tell them apart.
func inOrder(ids, a, b []string) []string {
	out := []string{}
	for _, id := range ids {
		if slices.Contains(a, id) || slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	return out
}

func pairsOf(chatID string, users []string) []memberKey {
	out := make([]memberKey, len(users))
	for i, u := range users {
		out[i] = memberKey{chatID, u}
	}
	return out
}

// RemoveMember removes target from a group. The owner removes anyone, an admin removes members;
// anyone may remove themselves (that is leaving).
func (s *Service) RemoveMember(ctx context.Context, userID, chatID, target string) error {
	if target == userID {
		return s.Leave(ctx, userID, chatID)
	}
	return s.change(ctx, chatID, userID, func(tx *sql.Tx, c *chatRow, me memberRow) ([]string, error) {
		if c.Type != Group {
			return nil, errNotAGroup
		}
		if !me.Role.manages() {
			return nil, apperr.Forbidden("only the owner and admins remove members")
		}
		t, err := getMember(ctx, tx, chatID, target)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.NotFound("member")
		}
		if err != nil {
			return nil, err
		}
		if me.Role == Admin && t.Role != Member {
			return nil, apperr.Forbidden("admins remove members only; the owner removes admins")
		}
		return []string{target}, s.removeMember(ctx, tx, chatID, t)
	})
}

// RoleInput is the body of PATCH /chats/{id}/members/{user_id}.
type RoleInput struct {
	Role Role `json:"role" enum:"owner,admin,member" doc:"owner hands the ownership over (the previous owner becomes an admin)"`
}

// SetRole changes target's role in a group; only the owner does it. Making someone the owner
// hands the ownership over and makes the previous owner an admin.
func (s *Service) SetRole(ctx context.Context, userID, chatID, target string, in RoleInput) (ChatView, error) {
	if !in.Role.valid() {
		return ChatView{}, apperr.Invalid("body.role", "want owner, admin or member")
	}
	err := s.change(ctx, chatID, userID, func(tx *sql.Tx, c *chatRow, me memberRow) ([]string, error) {
		if c.Type != Group {
			return nil, errNotAGroup
		}
		if me.Role != Owner {
			return nil, apperr.Forbidden("only the owner changes roles")
		}
		t, err := getMember(ctx, tx, chatID, target)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.NotFound("member")
		}
		if err != nil {
			return nil, err
		}
		switch {
		case t.UserID == userID && in.Role != Owner:
			return nil, errOwnerRequired
		case t.UserID == userID || t.Role == in.Role:
			return nil, nil
		case in.Role == Owner:
			if err := setRole(ctx, tx, chatID, userID, Admin); err != nil {
				return nil, err
			}
		}
		return nil, setRole(ctx, tx, chatID, target, in.Role)
	})
	if err != nil {
		return ChatView{}, err
	}
	return s.Get(ctx, userID, chatID)
}

// Receipts returns every member's read and delivered marks.
func (s *Service) Receipts(ctx context.Context, userID, chatID string) ([]Receipt, error) {
	if _, _, err := s.member(ctx, chatID, userID); err != nil {
		return nil, err
	}
	out, err := receipts(ctx, s.db.R, chatID)
	if err != nil {
		return nil, s.internal("receipts", err)
	}
	return out, nil
}
