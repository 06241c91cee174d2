package location

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

const shareCols = `id, owner_id, user_id, chat_id, precision_mode, status, created_at, expires_at, ended_at`

type scanner interface{ Scan(dest ...any) error }

func scanShare(r scanner) (LocationShare, error) {
	var sh LocationShare
	var user, chat sql.NullString
	var created int64
	var expires, ended sql.NullInt64
	if err := r.Scan(&sh.ID, &sh.OwnerID, &user, &chat, &sh.Precision, &sh.Status, &created, &expires, &ended); err != nil {
		return LocationShare{}, err
	}
	sh.UserID, sh.ChatID = user.String, chat.String
	sh.CreatedAt, sh.ExpiresAt, sh.EndedAt = store.Time(created), timePtr(expires), timePtr(ended)
	return sh, nil
}

func collectShares(rows *sql.Rows, err error) ([]LocationShare, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LocationShare
	for rows.Next() {
		sh, err := scanShare(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}

// activeShares returns the shares matching where (on $1 = arg) that are active and not past
// their end at now (the expiry job may not have run yet: a share is over at expires_at exactly).
func (s *Service) activeShares(ctx context.Context, where string, arg any, now time.Time) ([]LocationShare, error) {
	shares, err := collectShares(s.query(ctx, s.db.R, `SELECT `+shareCols+` FROM location_shares
		WHERE `+where+` AND status = 'active' AND (expires_at IS NULL OR expires_at > $2) ORDER BY id`, arg, store.Millis(now)))
	if err != nil {
		return nil, s.internal("read shares", err)
	}
	return shares, nil
}

// viewers are the users who see share sh now: its user, or the chat's members other than the
// owner — none if the owner is no longer a member.
func (s *Service) viewers(ctx context.Context, sh LocationShare) ([]string, error) {
	v, err := s.viewersOf(ctx, sh)
	if err != nil {
		return nil, err
	}
	return s.withoutBlocked(ctx, sh.OwnerID, v)
}

// withoutBlocked returns ids without the users who have a block either way with userID.
func (s *Service) withoutBlocked(ctx context.Context, userID string, ids []string) ([]string, error) {
	if s.opts.Blocks == nil || len(ids) == 0 {
		return ids, nil
	}
	blocked, err := s.opts.Blocks.BlockedAmong(ctx, userID, ids)
	if err != nil {
		return nil, s.internal("blocks", err)
	}
	if len(blocked) == 0 {
		return ids, nil
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !blocked[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// viewersOf is viewers before the blocks are taken out.
func (s *Service) viewersOf(ctx context.Context, sh LocationShare) ([]string, error) {
	if sh.UserID != "" {
		return []string{sh.UserID}, nil
	}
	if s.opts.Chats == nil {
		return nil, nil
	}
	_, _, members, err := s.opts.Chats.Membership(ctx, sh.ChatID, sh.OwnerID)
	if apperr.KindOf(err) == apperr.KindNotFound || errors.Is(err, store.ErrNotFound) {
		return nil, nil // the owner left, or the chat is gone
	}
	if err != nil {
		return nil, s.internal("chat members", err)
	}
	out := make([]string, 0, len(members))
	for _, m := range members {
		if m != sh.OwnerID {
			out = append(out, m)
		}
	}
	return out, nil
}

// CreateShare shares the owner's location with a user or a chat's members. The viewers get
// location_share_start with the latest position as the share shows it.
func (s *Service) CreateShare(ctx context.Context, owner string, in LocationShareInput) (LocationShare, error) {
	switch {
	case (in.UserID == "") == (in.ChatID == ""):
		return LocationShare{}, apperr.Invalid("body.user_id", "give exactly one of user_id and chat_id")
	case in.UserID != "" && !validID(in.UserID):
		return LocationShare{}, apperr.Invalid("body.user_id", "not a user id")
	case in.ChatID != "" && !validID(in.ChatID):
		return LocationShare{}, apperr.Invalid("body.chat_id", "not a chat id")
	case in.UserID == owner:
		return LocationShare{}, apperr.Invalid("body.user_id", "you cannot share with yourself")
	case in.UserID != "" && s.blockedWith(ctx, owner, in.UserID):
		return LocationShare{}, errBlocked
	case in.Precision != PrecisionExact && in.Precision != PrecisionApproximate:
		return LocationShare{}, apperr.Invalid("body.precision", "must be exact or approximate")
	case in.DurationS != 0 && (in.DurationS < int64(MinShareDuration/time.Second) || in.DurationS > int64(MaxShareDuration/time.Second)):
		return LocationShare{}, apperr.Invalid("body.duration_s", "must be from 900 (15 minutes) to 86400 (24 hours), or 0 for until stopped")
	}
	if in.ChatID != "" {
		if s.opts.Chats == nil {
			return LocationShare{}, apperr.NotFound("chat")
		}
		_, _, _, err := s.opts.Chats.Membership(ctx, in.ChatID, owner)
		if apperr.KindOf(err) == apperr.KindNotFound || errors.Is(err, store.ErrNotFound) {
			return LocationShare{}, apperr.NotFound("chat")
		}
		if err != nil {
			return LocationShare{}, s.internal("chat members", err)
		}
	}
	now := s.now()
	sh := LocationShare{ID: newID(), OwnerID: owner, UserID: in.UserID, ChatID: in.ChatID, Precision: in.Precision,
		Status: StatusActive, CreatedAt: store.Time(store.Millis(now))}
	var expires sql.NullInt64
	if in.DurationS > 0 {
		expires = sql.NullInt64{Int64: store.Millis(now) + in.DurationS*1000, Valid: true}
		sh.ExpiresAt = timePtr(expires)
	}
	// One statement with the cap: a share past MaxActiveShares is not inserted (0 rows).
	res, err := s.db.W.ExecContext(ctx, `INSERT INTO location_shares (`+shareCols+`)
		SELECT $1, $2, $3, $4, $5, 'active', CAST($6 AS BIGINT), CAST($7 AS BIGINT), NULL
		WHERE (SELECT COUNT(*) FROM location_shares WHERE owner_id = $2 AND status = 'active'
			AND (expires_at IS NULL OR expires_at > $6)) < $8`, sh.ID, owner, sql.NullString{String: in.UserID, Valid: in.UserID != ""},
		sql.NullString{String: in.ChatID, Valid: in.ChatID != ""}, in.Precision, store.Millis(now), expires, MaxActiveShares)
	if store.IsForeignKeyViolation(err) {
		if in.UserID != "" {
			return LocationShare{}, apperr.NotFound("user")
		}
		return LocationShare{}, apperr.NotFound("chat")
	}
	if err != nil {
		return LocationShare{}, s.internal("create share", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return LocationShare{}, s.internal("create share", err)
	} else if n == 0 {
		return LocationShare{}, apperr.New(apperr.KindConflict, "too_many_shares",
			fmt.Sprintf("a user has at most %d active shares", MaxActiveShares))
	}
	viewers, err := s.viewers(ctx, sh)
	if err != nil {
		return LocationShare{}, err
	}
	if err := s.announceStart(ctx, sh, viewers); err != nil {
		return LocationShare{}, err
	}
	if s.opts.Notifier != nil && len(viewers) > 0 {
		s.opts.Notifier.ShareStarted(ctx, sh, viewers)
	}
	sh.Direction = "outgoing"
	return sh, nil
}

// errBlocked refuses a share with a user when a block stands between the two (either way); the
// same code as chat's refusals.
var errBlocked = apperr.New(apperr.KindForbidden, "blocked", "this is not possible with this user")

// blockedWith reports whether a block stands between a and b; a failing lookup counts as blocked
// (the share is refused rather than leaked).
func (s *Service) blockedWith(ctx context.Context, a, b string) bool {
	if s.opts.Blocks == nil || !validID(b) {
		return false
	}
	got, err := s.opts.Blocks.BlockedAmong(ctx, a, []string{b})
	return err != nil || got[b]
}

// announceStart sends location_share_start of sh to viewers.
func (s *Service) announceStart(ctx context.Context, sh LocationShare, viewers []string) error {
	if len(viewers) == 0 {
		return nil
	}
	pos, _, err := s.latest(ctx, s.db.W, sh.OwnerID)
	if err != nil {
		return err
	}
	start := LocationShareStart{LocationShare: sh}
	if pos != nil {
		start.Location = &SharedLocation{ShareID: sh.ID, UserID: sh.OwnerID, Precision: sh.Precision, Position: pos.view(sh.Precision)}
	}
	s.pub.PublishUsers(ctx, viewers, EventShareStart, start)
	return nil
}

func (s *Service) announceStop(ctx context.Context, sh LocationShare, viewers []string, reason string) {
	if len(viewers) > 0 {
		s.pub.PublishUsers(ctx, viewers, EventShareStop, LocationShareStop{ShareID: sh.ID, UserID: sh.OwnerID, Reason: reason})
	}
}

// StopShare ends one of the owner's shares; its viewers get location_share_stop. Stopping a
// share that has ended already does nothing; someone else's share is not found.
func (s *Service) StopShare(ctx context.Context, owner, id string) error {
	if !validID(id) {
		return apperr.NotFound("share")
	}
	sh, err := scanShare(s.db.W.QueryRowContext(ctx, `UPDATE location_shares SET status = 'stopped', ended_at = $3
		WHERE id = $1 AND owner_id = $2 AND status = 'active' RETURNING `+shareCols, id, owner, store.Millis(s.now())))
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := s.db.W.QueryRowContext(ctx, `SELECT COUNT(*) FROM location_shares WHERE id = $1 AND owner_id = $2`, id, owner).Scan(&n); err != nil {
			return s.internal("stop share", err)
		}
		if n == 0 {
			return apperr.NotFound("share")
		}
		return nil
	}
	if err != nil {
		return s.internal("stop share", err)
	}
	viewers, err := s.viewers(ctx, sh)
	if err != nil {
		return err
	}
	s.announceStop(ctx, sh, viewers, ReasonStopped)
	return nil
}

// ExpireDue ends every active share whose end has come, and tells its viewers. One conditional
// UPDATE ... RETURNING: on several nodes, each share expires on exactly one of them.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	shares, err := collectShares(s.db.W.QueryContext(ctx, `UPDATE location_shares SET status = 'expired', ended_at = expires_at
		WHERE status = 'active' AND expires_at <= $1 RETURNING `+shareCols, store.Millis(s.now())))
	if err != nil {
		return 0, s.internal("expire shares", err)
	}
	for _, sh := range shares {
		viewers, err := s.viewers(ctx, sh)
		if err != nil {
			s.log.Error("location: viewers of an expired share", "share", sh.ID, "err", err)
			continue
		}
		s.announceStop(ctx, sh, viewers, ReasonExpired)
	}
	return len(shares), nil
}

// incoming returns the active shares whose viewers include userID.
func (s *Service) incoming(ctx context.Context, userID string, now time.Time) ([]LocationShare, error) {
	direct, err := s.activeShares(ctx, `user_id = $1`, userID, now)
	if err != nil {
		return nil, err
	}
	owners := make([]string, len(direct))
	for i, sh := range direct {
		owners[i] = sh.OwnerID
	}
	visible, err := s.withoutBlocked(ctx, userID, owners)
	if err != nil {
		return nil, err
	}
	out := direct[:0]
	for _, sh := range direct {
		if slices.Contains(visible, sh.OwnerID) {
			out = append(out, sh)
		}
	}
	if s.opts.Chats == nil {
		return out, nil
	}
	contacts, err := s.opts.Chats.Contacts(ctx, userID)
	if err != nil {
		return nil, s.internal("contacts", err)
	}
	for chunk := range slices.Chunk(contacts, 500) {
		args := []any{store.Millis(now)}
		for _, c := range chunk {
			args = append(args, c)
		}
		shares, err := collectShares(s.db.R.QueryContext(ctx, `SELECT `+shareCols+` FROM location_shares
			WHERE owner_id IN (`+placeholders(2, len(chunk))+`) AND chat_id IS NOT NULL AND status = 'active'
			AND (expires_at IS NULL OR expires_at > $1)`, args...))
		if err != nil {
			return nil, s.internal("read shares", err)
		}
		for _, sh := range shares {
			v, err := s.viewers(ctx, sh)
			if err != nil {
				return nil, err
			}
			if slices.Contains(v, userID) {
				out = append(out, sh)
			}
		}
	}
	return out, nil
}

// ListShares returns the caller's active outgoing and incoming shares, by id (creation order).
func (s *Service) ListShares(ctx context.Context, userID string, limit int, cursor string) ([]LocationShare, string, error) {
	now := s.now()
	out, err := s.activeShares(ctx, `owner_id = $1`, userID, now)
	if err != nil {
		return nil, "", err
	}
	for i := range out {
		out[i].Direction = "outgoing"
	}
	in, err := s.incoming(ctx, userID, now)
	if err != nil {
		return nil, "", err
	}
	for _, sh := range in {
		sh.Direction = "incoming"
		out = append(out, sh)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return page(out, limit, cursor, func(sh LocationShare) string { return sh.ID })
}

// page cuts items (sorted by key) after cursor to limit.
func page[T any](items []T, limit int, cursor string, key func(T) string) ([]T, string, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	if cursor != "" {
		i := sort.Search(len(items), func(i int) bool { return key(items[i]) > cursor })
		items = items[i:]
	}
	if items == nil {
		items = []T{}
	}
	if len(items) > limit {
		return items[:limit], key(items[limit-1]), nil
	}
	return items, "", nil
}

// Shared returns the latest position of each user who shares it with the caller, as their
// shares show it (exact if any of their shares with the caller is exact), by user id.
func (s *Service) Shared(ctx context.Context, userID string, limit int, cursor string) ([]SharedLocation, string, error) {
	in, err := s.incoming(ctx, userID, s.now())
	if err != nil {
		return nil, "", err
	}
	best := map[string]LocationShare{}
	for _, sh := range in {
		if b, ok := best[sh.OwnerID]; !ok || (b.Precision != PrecisionExact && sh.Precision == PrecisionExact) {
			best[sh.OwnerID] = sh
		}
	}
	var out []SharedLocation
	for owner, sh := range best {
		pos, _, err := s.latest(ctx, s.db.R, owner)
		if err != nil {
			return nil, "", err
		}
		if pos == nil {
			continue
		}
		out = append(out, SharedLocation{ShareID: sh.ID, UserID: owner, Precision: sh.Precision, Position: pos.view(sh.Precision)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return page(out, limit, cursor, func(l SharedLocation) string { return l.UserID })
}

// MembersChanged is told, once (on the node that made the change), the members of a chat after a
// change and who joined or left. Members who left stop seeing the chat's shares at once (the members are read at every
// update) and get location_share_stop; shares of a member who left end; members who joined get
// location_share_start of the chat's active shares.
func (s *Service) MembersChanged(ctx context.Context, chatID string, members, added, removed []string) {
	shares, err := s.activeShares(ctx, `chat_id = $1`, chatID, s.now())
	if err != nil {
		s.log.Error("location: shares of a changed chat", "chat", chatID, "err", err)
		return
	}
	// Everyone who saw the chat's shares before the change: the members now and those who left.
	// (An owner of an active share was a member before, so is never among added; one who left
	// is handled first.)
	before := append(slices.Clone(members), removed...)
	for _, sh := range shares {
		if slices.Contains(removed, sh.OwnerID) {
			ended, err := s.db.W.ExecContext(ctx, `UPDATE location_shares SET status = 'stopped', ended_at = $2
				WHERE id = $1 AND status = 'active'`, sh.ID, store.Millis(s.now()))
			if err != nil {
				s.log.Error("location: stop the share of a member who left", "share", sh.ID, "err", err)
				continue
			}
			if n, _ := ended.RowsAffected(); n == 0 {
				continue
			}
			s.announceStop(ctx, sh, slices.DeleteFunc(slices.Clone(before), func(u string) bool { return u == sh.OwnerID }), ReasonOwnerOut)
			continue
		}
		s.announceStop(ctx, sh, removed, ReasonLeftChat)
		if err := s.announceStart(ctx, sh, added); err != nil {
			s.log.Error("location: share start for new members", "share", sh.ID, "err", err)
		}
	}
}
