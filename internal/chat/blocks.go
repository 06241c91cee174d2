package chat

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Blocking (issue 16, item 5). When A blocks B:
//   - B cannot create a direct chat with A, send, edit, type or mark read/delivered in their
//     direct chat (REST and WebSocket; memberUnblocked) or start a call in it: 403 blocked.
//     The same holds for A while the block stands (A unblocks to talk again), so the refusal
//     alone does not tell B who blocked whom;
//   - B's adds of A to groups are swallowed: answered as invited, but no invitation is made;
//   - B no longer follows A's presence (automatic presence and presence_subscribe; B's open
//     connections drop A on every node, explicit subscriptions included), and presence_count
//     does not count A online for B;
//   - location is never exchanged between them (the location feature asks BlockedAmong; shares
//     made before the block end for the other, through the BlocksHook);
//   - messages in a group they are both in are still delivered to both.
//
// Blocks are read in both directions and always from the database (a primary-key lookup per
// direct-chat send; the index on blocked_id for presence), never from a cache, so a block
// committed through one node holds on every node at once. Every block or unblock also publishes
// signalBlocksChanged, which makes every node drop the blocked user's following of the blocker
// (a block) and recompute the automatic presence of the two users' connections (and would drop
// any cached view of blocks, should one be added).

// errBlocked refuses what a block forbids; the same answer whichever of the two blocked.
var errBlocked = apperr.New(apperr.KindForbidden, "blocked", "this is not possible with this user")

// signalBlocksChanged tells every node that a block between two users was made or lifted.
const signalBlocksChanged = "chat.blocks_changed"

// blocksChanged is the payload of signalBlocksChanged.
type blocksChanged struct {
	Users []string `json:"users"` // the blocker and the blocked
	// Blocked is true when the block was made (false: lifted). Every node then makes the blocked
	// user's connections stop following the blocker's presence at once, explicit subscriptions
	// included (older nodes ignore the field and only recompute the automatic presence).
	Blocked bool `json:"blocked,omitempty"`
}

// blockSet is the users with a block either way with one user.
type blockSet map[string]struct{}

func (s *Service) loadBlocks(ctx context.Context, userID string) (blockSet, error) {
	ids, err := s.column(ctx, `SELECT blocked_id FROM user_blocks WHERE blocker_id = $1
		UNION SELECT blocker_id FROM user_blocks WHERE blocked_id = $1`, userID)
	if err != nil {
		return nil, fmt.Errorf("chat: blocks of %s: %w", userID, err)
	}
	set := make(blockSet, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	return set, nil
}

// checkDirectBlocks refuses userID's send in a direct chat with members when a block stands
// between userID and the other member (one primary-key lookup, see the top of this file).
func (s *Service) checkDirectBlocks(ctx context.Context, userID string, members []string) error {
	for _, u := range members {
		if u == userID {
			continue
		}
		blocked, err := s.Blocked(ctx, userID, u)
		if err != nil {
			return s.internal("blocks", err)
		}
		if blocked {
			return errBlocked
		}
	}
	return nil
}

// memberUnblocked is member for what a member sends to the others of a chat (a message, an edit,
// typing, read and delivered marks): in a direct chat with a block either way it is errBlocked
// (403 blocked), whoever blocked. Groups are never refused for a block; deleting one's own
// messages is not sending and stays allowed.
func (s *Service) memberUnblocked(ctx context.Context, chatID, userID string) (*roster, Role, error) {
	r, role, err := s.member(ctx, chatID, userID)
	if err != nil {
		return nil, "", err
	}
	if r.typ == Direct {
		if err := s.checkDirectBlocks(ctx, userID, r.ids); err != nil {
			return nil, "", err
		}
	}
	return r, role, nil
}

// Blocked reports whether either of a and b blocked the other, reading the database (so it
// holds on every node as soon as the block is committed). Calls and location ask it.
func (s *Service) Blocked(ctx context.Context, a, b string) (bool, error) {
	if a == b || !validID(a) || !validID(b) {
		return false, nil
	}
	var n int
	err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM user_blocks
		WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)`, a, b).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("chat: blocked: %w", err)
	}
	return n > 0, nil
}

// BlockedAmong returns the users among ids who have a block either way with userID (one query):
// location filters its audiences with it.
func (s *Service) BlockedAmong(ctx context.Context, userID string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 || !validID(userID) {
		return out, nil
	}
	set, err := s.loadBlocks(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, ok := set[id]; ok {
			out[id] = true
		}
	}
	return out, nil
}

// blockersOf returns the users who blocked userID (read from the database).
func (s *Service) blockersOf(ctx context.Context, userID string) (map[string]struct{}, error) {
	ids, err := s.column(ctx, `SELECT blocker_id FROM user_blocks WHERE blocked_id = $1`, userID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		out[id] = struct{}{}
	}
	return out, nil
}

// BlockedUser is an item of GET /users/me/blocks.
type BlockedUser struct {
	UserProfile
	BlockedAt time.Time `json:"blocked_at" doc:"When the block was made"`
}

// Block makes blocker block target (idempotent). Blocking yourself is 400; an unknown user 404.
// It also deletes the pending invitations target sent blocker.
func (s *Service) Block(ctx context.Context, blocker, target string) error {
	if blocker == target {
		return apperr.New(apperr.KindBadRequest, "cannot_block_self", "you cannot block yourself")
	}
	if err := s.userExists(ctx, target); err != nil {
		return err
	}
	var flipped bool // no block either way before this one
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO user_blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (blocker_id, blocked_id) DO NOTHING`, blocker, target, s.now())
		if err != nil {
			return err
		}
		if flipped, err = s.firstOrLast(ctx, tx, res, blocker, target); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM group_invitations WHERE invitee_id = $1 AND inviter_id = $2`, blocker, target)
		return err
	})
	if err != nil {
		return s.internal("block", err)
	}
	s.announceBlocksChanged(ctx, true, blocker, target)
	if flipped && s.blocksHook != nil {
		s.blocksHook(context.WithoutCancel(ctx), blocker, target, true) // committed: finish even if the caller left
	}
	return nil
}

// firstOrLast reports whether res (the insert or delete of blocker's block of target) changed a
// row while target has no block of blocker: the two went from no block to a block, or back.
func (s *Service) firstOrLast(ctx context.Context, tx *sql.Tx, res sql.Result, blocker, target string) (bool, error) {
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2`, target, blocker).Scan(&n)
	return n == 0, err
}

// BlocksHook is told, once on the node that made the change and after it is committed, that a
// block now stands between a and b (blocked) or no longer does (the first block either way was
// made, or the last one lifted); a is the user who made the change. Location tells the two that
// their shares stopped or started. It runs in the request and must be quick.
type BlocksHook func(ctx context.Context, a, b string, blocked bool)

// OnBlocksChanged sets the hook; call it while wiring, before the service is used.
func (s *Service) OnBlocksChanged(fn BlocksHook) { s.blocksHook = fn }

// PresenceUnfollower makes a user's connections on this node stop following users' presence at
// once (the realtime hub's Unfollow).
type PresenceUnfollower func(ctx context.Context, follower string, users []string)

// OnPresenceBlocked sets who is told, on every node, that a user may no longer follow another's
// presence (a block was made); call it while wiring.
func (s *Service) OnPresenceBlocked(fn PresenceUnfollower) { s.presenceUnfollow = fn }

// Unblock lifts blocker's block of target (idempotent).
func (s *Service) Unblock(ctx context.Context, blocker, target string) error {
	if blocker == target {
		return apperr.New(apperr.KindBadRequest, "cannot_block_self", "you cannot block yourself")
	}
	if err := s.userExists(ctx, target); err != nil {
		return err
	}
	var flipped bool // no block either way after this
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2`, blocker, target)
		if err != nil {
			return err
		}
		flipped, err = s.firstOrLast(ctx, tx, res, blocker, target)
		return err
	})
	if err != nil {
		return s.internal("unblock", err)
	}
	s.announceBlocksChanged(ctx, false, blocker, target)
	if flipped && s.blocksHook != nil {
		s.blocksHook(context.WithoutCancel(ctx), blocker, target, false) // committed: finish even if the caller left
	}
	return nil
}

func (s *Service) userExists(ctx context.Context, id string) error {
	if !validID(id) {
		return apperr.NotFound("user")
	}
	missing, err := s.accounts.MissingUsers(ctx, s.db.R, []string{id})
	if err != nil {
		return s.internal("check user", err)
	}
	if len(missing) > 0 {
		return apperr.NotFound("user")
	}
	return nil
}

// Blocks lists the users blocker blocked, by user id, a page at a time.
func (s *Service) Blocks(ctx context.Context, blocker string, limit int, cursor string) ([]BlockedUser, string, error) {
	limit = pageLimit(limit)
	if cursor != "" && !validID(cursor) {
		return nil, "", apperr.Invalid("query.cursor", "not a cursor of this list")
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT blocked_id, created_at FROM user_blocks
		WHERE blocker_id = $1 AND blocked_id > $2 ORDER BY blocked_id LIMIT $3`, blocker, cursor, limit+1)
	if err != nil {
		return nil, "", s.internal("blocks", err)
	}
	defer rows.Close()
	out := []BlockedUser{}
	for rows.Next() {
		var b BlockedUser
		var at int64
		if err := rows.Scan(&b.UserID, &at); err != nil {
			return nil, "", s.internal("blocks", err)
		}
		b.BlockedAt = store.Time(at)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.internal("blocks", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].UserID
	}
	if err := s.fillProfiles(ctx, len(out), func(i int) *UserProfile { return &out[i].UserProfile }); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// fillProfiles fills n profiles (names and avatars) from their user ids in one lookup.
func (s *Service) fillProfiles(ctx context.Context, n int, at func(i int) *UserProfile) error {
	if n == 0 {
		return nil
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = at(i).UserID
	}
	profs, err := s.accounts.Profiles(ctx, s.db.R, ids)
	if err != nil {
		return s.internal("profiles", err)
	}
	for i := range n {
		if p, ok := profs[ids[i]]; ok {
			*at(i) = p
		}
	}
	return nil
}

// pageLimit applies the list convention: default 50, at most 200.
func pageLimit(limit int) int {
	switch {
	case limit <= 0:
		return 50
	case limit > 200:
		return 200
	}
	return limit
}

// announceBlocksChanged makes every node, this one before it returns, forget the two users'
// cached blocks and recompute their automatic presence.
func (s *Service) announceBlocksChanged(ctx context.Context, blocked bool, users ...string) {
	payload, err := json.Marshal(blocksChanged{Users: users, Blocked: blocked})
	if err != nil { // strings only: cannot fail
		panic(err)
	}
	s.pub.PublishSignal(ctx, signalBlocksChanged, payload)
}

// onBlocksChanged handles signalBlocksChanged, from any node.
func (s *Service) onBlocksChanged(ctx context.Context, payload []byte) {
	var c blocksChanged
	if err := json.Unmarshal(payload, &c); err != nil || len(c.Users) == 0 {
		s.log.Error("chat: malformed blocks-changed signal", "err", err)
		return
	}
	// The blocked user stops following the blocker at once, explicit subscriptions included
	// (the refresh below recomputes only the automatic presence, and on a goroutine).
	if c.Blocked && len(c.Users) == 2 && s.presenceUnfollow != nil {
		s.presenceUnfollow(ctx, c.Users[1], c.Users[:1])
	}
	if s.presenceRefresh != nil {
		s.presenceRefresh(ctx, c.Users)
	}
}

// inPlaceholders returns "$k,$k+1,..." for n values starting at $start.
func inPlaceholders(start, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "$%d", start+i)
	}
	return b.String()
}
