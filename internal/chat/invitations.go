package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Who may add a user to a group (users.group_adds, set with PATCH /users/me) and invitations.
// An add of a user who does not allow it (contacts: the adder shares no chat with them; nobody)
// becomes a group_invitations row and a group_invitation event to them instead; they join with
// POST /invitations/{id}/accept. An add of a user who blocked the adder is swallowed: the adder
// sees it as invited (the same answer), but nothing is stored and nothing is sent, so the adder
// cannot tell a block from an invitation that is never accepted.

// Group-add settings, as auth stores them.
const (
	groupAddsEveryone = "everyone"
	groupAddsContacts = "contacts"
)

const (
	// MaxPendingInvitations is the most unexpired invitations a user holds; an invitation beyond
	// it is not stored (the adder still sees the user as invited). A constant for now.
	MaxPendingInvitations = 100
	// InvitationTTL is how long an invitation may be accepted. A constant for now.
	InvitationTTL = 14 * 24 * time.Hour
)

// EventGroupInvitation is sent to a user invited to a group.
const EventGroupInvitation = "group_invitation"

// Invitation is a pending invitation to a group: an item of GET /invitations and the data of
// the group_invitation event.
type Invitation struct {
	ID        string      `json:"id" doc:"Invitation id" example:"01938f4e-7c1a-7d2b-9c3e-2a1b0c9d8e7f"`
	ChatID    string      `json:"chat_id" doc:"The group"`
	Title     string      `json:"title" doc:"The group's title"`
	Inviter   UserProfile `json:"inviter" doc:"Who added you"`
	CreatedAt time.Time   `json:"created_at"`
	ExpiresAt time.Time   `json:"expires_at" doc:"After this the invitation is gone"`
}

// ChatWithInvites is the answer of POST /chats and POST /chats/{id}/members: the chat, and the
// users who were invited instead of added.
type ChatWithInvites struct {
	ChatView
	InvitedUserIDs []string `json:"invited_user_ids" doc:"Users who were not added because their settings do not allow it: they were sent an invitation (empty when everyone was added)"`
}

// adds splits targets (other users, existing accounts) into those adder may add at once and
// those to invite; swallowed are the targets who blocked adder (answered as invited, never
// stored). members are skipped by the insert anyway: they count as added.
func (s *Service) splitAdds(ctx context.Context, q Querier, adder string, targets []string, members map[string]Role) (add, invite, swallowed []string, err error) {
	settings, err := s.accounts.GroupAdds(ctx, q, targets)
	if err != nil {
		return nil, nil, nil, s.internal("group adds", err)
	}
	blockers, err := s.blockersOf(ctx, adder)
	if err != nil {
		return nil, nil, nil, s.internal("group adds", err)
	}
	var contacts map[string]struct{}
	for _, t := range targets {
		if _, ok := members[t]; ok {
			add = append(add, t)
			continue
		}
		if _, ok := blockers[t]; ok {
			swallowed = append(swallowed, t)
			continue
		}
		switch settings[t] {
		case groupAddsEveryone, "":
			add = append(add, t)
		case groupAddsContacts:
			if contacts == nil {
				ids, err := s.Contacts(ctx, adder)
				if err != nil {
					return nil, nil, nil, err
				}
				contacts = make(map[string]struct{}, len(ids))
				for _, id := range ids {
					contacts[id] = struct{}{}
				}
			}
			if _, ok := contacts[t]; ok {
				add = append(add, t)
			} else {
				invite = append(invite, t)
			}
		default: // nobody
			invite = append(invite, t)
		}
	}
	return add, invite, swallowed, nil
}

// inviteAll stores invitations of invitees to chatID by inviter and sends each stored one to its
// invitee as group_invitation.
func (s *Service) inviteAll(ctx context.Context, chatID, inviter string, invitees []string) error {
	if len(invitees) == 0 {
		return nil
	}
	now := s.now()
	expires := now + InvitationTTL.Milliseconds()
	var stored []Invitation
	var to []string // the invitee of each stored invitation
	var title string
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		stored, to = stored[:0], to[:0]
		if err := tx.QueryRowContext(ctx, `SELECT title FROM chats WHERE id = $1`, chatID).Scan(&title); err != nil {
			return err
		}
		for _, u := range invitees {
			if _, err := tx.ExecContext(ctx, `DELETE FROM group_invitations WHERE invitee_id = $1 AND expires_at <= $2`, u, now); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM group_invitations WHERE invitee_id = $1 AND chat_id <> $2`, u, chatID).Scan(&n); err != nil {
				return err
			}
			if n >= MaxPendingInvitations {
				continue // bounded: the invitee is not flooded; the adder sees them invited all the same
			}
			var id string
			err := tx.QueryRowContext(ctx, `INSERT INTO group_invitations (id, chat_id, inviter_id, invitee_id, created_at, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (chat_id, invitee_id) DO UPDATE SET inviter_id = excluded.inviter_id,
					created_at = excluded.created_at, expires_at = excluded.expires_at
				RETURNING id`, newID(), chatID, inviter, u, now, expires).Scan(&id)
			if err != nil {
				return err
			}
			stored = append(stored, Invitation{ID: id, ChatID: chatID, Inviter: UserProfile{UserID: inviter},
				CreatedAt: store.Time(now), ExpiresAt: store.Time(expires)})
			to = append(to, u)
		}
		return nil
	})
	if errors.Is(err, sql.ErrNoRows) {
		return apperr.NotFound("chat")
	}
	if err != nil {
		return s.internal("invite", err)
	}
	if len(stored) == 0 {
		return nil
	}
	profs, err := s.accounts.Profiles(ctx, s.db.R, []string{inviter})
	if err != nil {
		return s.internal("invite", err)
	}
	for i := range stored {
		stored[i].Title = title
		if p, ok := profs[inviter]; ok {
			stored[i].Inviter = p
		}
		s.pub.PublishUsers(ctx, []string{to[i]}, EventGroupInvitation, stored[i])
	}
	return nil
}

// Invitations lists userID's pending invitations, oldest first, a page at a time.
func (s *Service) Invitations(ctx context.Context, userID string, limit int, cursor string) ([]Invitation, string, error) {
	limit = pageLimit(limit)
	if cursor != "" && !validID(cursor) {
		return nil, "", apperr.Invalid("query.cursor", "not a cursor of this list")
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT i.id, i.chat_id, c.title, i.inviter_id, i.created_at, i.expires_at
		FROM group_invitations i JOIN chats c ON c.id = i.chat_id
		WHERE i.invitee_id = $1 AND i.expires_at > $2 AND i.id > $3 ORDER BY i.id LIMIT $4`, userID, s.now(), cursor, limit+1)
	if err != nil {
		return nil, "", s.internal("invitations", err)
	}
	defer rows.Close()
	out := []Invitation{}
	for rows.Next() {
		var in Invitation
		var created, expires int64
		if err := rows.Scan(&in.ID, &in.ChatID, &in.Title, &in.Inviter.UserID, &created, &expires); err != nil {
			return nil, "", s.internal("invitations", err)
		}
		in.CreatedAt, in.ExpiresAt = store.Time(created), store.Time(expires)
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.internal("invitations", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	if err := s.fillProfiles(ctx, len(out), func(i int) *UserProfile { return &out[i].Inviter }); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

var errInvitationNotFound = apperr.NotFound("invitation")

// AcceptInvitation makes userID a member of the invitation's group (the usual chat_updated
// events) and deletes the invitation.
func (s *Service) AcceptInvitation(ctx context.Context, userID, invID string) (ChatView, error) {
	if !validID(invID) {
		return ChatView{}, errInvitationNotFound
	}
	var chatID string
	var done chan struct{}
	err := s.write(ctx, func(tx *sql.Tx) ([]event, error) {
		var expires int64
		var inviter string
		err := tx.QueryRowContext(ctx, `SELECT chat_id, inviter_id, expires_at FROM group_invitations WHERE id = $1 AND invitee_id = $2`,
			invID, userID).Scan(&chatID, &inviter, &expires)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= s.now()) {
			return nil, errInvitationNotFound
		}
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM group_invitations WHERE id = $1`, invID); err != nil {
			return nil, err
		}
		c, err := lockChat(ctx, tx, chatID, s.now())
		if err != nil {
			return nil, err
		}
		// Checked again now, under the chat's lock: the inviter must still be a member who may
		// add (owner or admin), and no block may stand between inviter and invitee. Otherwise
		// the invitation is as good as gone: 404.
		inv, err := getMember(ctx, tx, chatID, inviter)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !inv.Role.manages()) {
			return nil, errInvitationNotFound
		}
		if err != nil {
			return nil, err
		}
		var blocks int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM user_blocks
			WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)`, inviter, userID).Scan(&blocks); err != nil {
			return nil, err
		}
		if blocks > 0 {
			return nil, errInvitationNotFound
		}
		before, err := listMembers(ctx, tx, chatID)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(before, func(m memberRow) bool { return m.UserID == userID }) {
			return nil, nil // a member already: nothing changes
		}
		if len(before)+1 > s.opts.MaxGroupMembers {
			return nil, invalid("too_many_members", "path.id", fmt.Sprintf("a group has at most %d members", s.opts.MaxGroupMembers))
		}
		if _, err := insertMembers(ctx, tx, chatID, []string{userID}, Member, s.now(), c.LastSeq); err != nil {
			return nil, err
		}
		var evs []event
		evs, done, err = s.membershipEvent(ctx, tx, c, before, nil)
		return evs, err
	})
	if errors.Is(err, store.ErrNotFound) {
		return ChatView{}, errInvitationNotFound
	}
	if err != nil {
		return ChatView{}, s.internal("accept invitation", err)
	}
	if done != nil {
		<-done
	}
	return s.Get(ctx, userID, chatID)
}

// DeclineInvitation deletes userID's invitation.
func (s *Service) DeclineInvitation(ctx context.Context, userID, invID string) error {
	if !validID(invID) {
		return errInvitationNotFound
	}
	res, err := s.db.W.ExecContext(ctx, `DELETE FROM group_invitations WHERE id = $1 AND invitee_id = $2`, invID, userID)
	if err != nil {
		return s.internal("decline invitation", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errInvitationNotFound
	}
	return nil
}
