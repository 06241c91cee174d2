package call

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Chats is what calls need from the chat feature; chat.Service satisfies it.
type Chats interface {
	// Membership tells whether userID is a member of chatID (an apperr 404 when not, or when the
	// chat does not exist), whether the chat is a group, whether the user manages it (owner or
	// admin) and who its members are.
	Membership(ctx context.Context, chatID, userID string) (group, manager bool, members []string, err error)
	// MembersAmong returns those of userIDs who are members of chatID now (none when the chat
	// does not exist): a participant removed from the chat, or who left it, is out of its calls.
	MembersAmong(ctx context.Context, chatID string, userIDs []string) ([]string, error)
	// PostSystem stores a system message (kind "system") from senderID; the same clientID
	// again stores nothing.
	PostSystem(ctx context.Context, chatID, senderID, clientID, text string) error
}

// Blocks tells whether a block stands between two users, either way (chat's Blocked, read from
// the database): a call in a direct chat between them cannot be started.
type Blocks interface {
	Blocked(ctx context.Context, a, b string) (bool, error)
}

// errBlocked refuses a call in a direct chat with a block between the two users; the same code
// as chat's refusals.
var errBlocked = apperr.New(apperr.KindForbidden, "blocked", "this is not possible with this user")

// Querier runs a query: a *sql.DB or a *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Accounts is what calls need from the accounts feature (auth, adapted in internal/server).
type Accounts interface {
	// DisplayNames returns the display names of the accounts among ids, by id.
	DisplayNames(ctx context.Context, q Querier, ids []string) (map[string]string, error)
}

// Publisher delivers events on every node; the realtime hub satisfies it.
type Publisher interface {
	// PublishUsers sends an event to every connection of the users.
	PublishUsers(ctx context.Context, userIDs []string, typ string, data any)
	// PublishSession sends an event to the connections of one session (device) of a user.
	PublishSession(ctx context.Context, userID, sessionID, typ string, data any)
}

// Options configures New.
type Options struct {
	Provider        Provider
	RingTimeout     time.Duration // unanswered for this long: missed (default 45 s)
	MaxParticipants int           // joined at once (default 16)
	// DisconnectGrace: a participant with no connection for this long is marked left (default 15 s).
	DisconnectGrace time.Duration
	SweepInterval   time.Duration // how often the sweeper runs (default 2 s)
	Now             func() time.Time
	// Pusher, when set, queues pushes: whom calls ring for and for whom they stopped ringing
	// (see Pusher).
	Pusher Pusher
	// Accounts, when set, names LiveKit participants (the token's name claim).
	Accounts Accounts
	// Presence tells who is online and when a user goes offline (the realtime hub); nil:
	// participants never time out (see watchPresence).
	Presence Presence
	// AfterFunc runs f after d (the disconnect grace timers); default time.AfterFunc.
	AfterFunc func(d time.Duration, f func())
	Logger    *slog.Logger
	// Blocks, when set, refuses calls in a direct chat between users with a block (403 blocked).
	Blocks Blocks
	// StartLimiter, when set, counts the calls each user starts (key "call-start:<user id>"):
	// over it, 429 rate_limited with Retry-After. A start rings every other member of the chat
	// (pushes included) and adds a participant row for each, so without it one account could
	// ring a group of thousands in a loop.
	StartLimiter ratelimit.Limiter
	// WriteLimiter, when set, counts the other call actions each user takes over REST (answer,
	// decline, join, leave, end together; key "call-write:<user>"): each tells every member of
	// the chat, so a join and leave loop in a big group would otherwise be unlimited fan-out.
	// The server passes the WebSocket's frame rate.
	WriteLimiter ratelimit.Limiter
}

// Service runs the calls.
type Service struct {
	db    *store.DB
	chats Chats
	pub   Publisher
	opts  Options
	log   *slog.Logger

	live     liveness
	presence Presence
	stopped  atomic.Bool // Start's stop was called
}

// New returns the calls service.
func New(db *store.DB, chats Chats, pub Publisher, o Options) *Service {
	if o.RingTimeout <= 0 {
		o.RingTimeout = 45 * time.Second
	}
	if o.MaxParticipants <= 0 {
		o.MaxParticipants = 16
	}
	if o.DisconnectGrace <= 0 {
		o.DisconnectGrace = 15 * time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AfterFunc == nil {
		o.AfterFunc = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Provider == nil {
		o.Provider, _ = NewProvider(ProviderOptions{})
	}
	s := &Service{db: db, chats: chats, pub: pub, opts: o, log: o.Logger, live: liveness{suspects: map[suspect]time.Time{}}}
	s.watchPresence(o.Presence)
	return s
}

var (
	errNotFound = apperr.NotFound("call")
	errEnded    = apperr.New(apperr.KindConflict, "call_ended", "the call has ended")
	errNotIn    = apperr.New(apperr.KindConflict, "not_in_call", "you are not in this call: join it first")
	errFull     = apperr.New(apperr.KindConflict, "call_full", "the call has as many participants as it may")
	errNoAnswer = apperr.New(apperr.KindConflict, "not_ringing", "there is nothing to answer: the call is not ringing for you")
)

// validID reports whether id has the form of the ids the server issues (a UUID, 36 characters).
// Ids from clients are checked before they reach SQL: PostgreSQL fails on a NUL byte (a 500)
// where SQLite would compare it, so an id that cannot exist is refused alike on both.
func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

func (s *Service) internal(op string, err error) error {
	return &apperr.Error{Kind: apperr.KindInternal, Code: "internal", Detail: "internal error", Err: fmt.Errorf("call: %s: %w", op, err)}
}

// StartInput is the body of POST /calls.
type StartInput struct {
	ChatID string `json:"chat_id" minLength:"1" maxLength:"64" format:"uuid" doc:"The chat to call" example:"01938f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f"`
	Kind   string `json:"kind" enum:"audio,video" example:"video"`
}

// Initiate starts a call in a chat the caller is a member of: it rings for every other member. A
// chat has at most one live call: a second one is 409 call_in_progress with the live call's id
// (existing_id in the problem document).
func (s *Service) Initiate(ctx context.Context, userID, sessionID string, in StartInput) (WithCredentials, error) {
	if in.Kind != "audio" && in.Kind != "video" {
		return WithCredentials{}, apperr.Invalid("body.kind", "audio or video")
	}
	if !validID(in.ChatID) {
		return WithCredentials{}, apperr.Invalid("body.chat_id", "not a valid id")
	}
	if err := ratelimit.Enforce(ctx, s.opts.StartLimiter, "call-start:"+userID, s.log); err != nil {
		return WithCredentials{}, err
	}
	group, _, members, err := s.chats.Membership(ctx, in.ChatID, userID)
	if err != nil {
		return WithCredentials{}, err
	}
	if len(members) < 2 {
		return WithCredentials{}, apperr.New(apperr.KindConflict, "nobody_to_call", "you are alone in this chat")
	}
	if !group && s.opts.Blocks != nil {
		for _, m := range members {
			if m == userID {
				continue
			}
			blocked, err := s.opts.Blocks.Blocked(ctx, userID, m)
			if err != nil {
				return WithCredentials{}, s.internal("start", err)
			}
			if blocked {
				return WithCredentials{}, errBlocked
			}
		}
	}
	now := s.now()
	id := uuid.Must(uuid.NewV7()).String()
	c := Call{ID: id, ChatID: in.ChatID, Kind: in.Kind, Status: StatusRinging, Channel: "nerutalk-" + id,
		Provider: s.opts.Provider.Name(), InitiatorID: userID, Group: group, CreatedAt: now,
		RingDeadline: now.Add(s.opts.RingTimeout)}
	uid := uint32(1)
	c.Participants = append(c.Participants, Participant{UserID: userID, State: StateJoined, UID: uid, SessionID: sessionID, JoinedAt: &now})
	for _, m := range members {
		if m != userID {
			uid++
			c.Participants = append(c.Participants, Participant{UserID: m, State: StateInvited, UID: uid})
		}
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := insertCall(ctx, tx, &c); err != nil {
			return err
		}
		return s.pushRinging(ctx, tx, &c)
	})
	if store.IsUniqueViolation(err) {
		live, lerr := liveCallOfChat(ctx, s.db.W, in.ChatID)
		if lerr != nil && !errors.Is(lerr, store.ErrNotFound) {
			return WithCredentials{}, s.internal("start", lerr)
		}
		e := apperr.New(apperr.KindConflict, "call_in_progress", "this chat has a call already: join it")
		e.ExistingID = live
		return WithCredentials{}, e
	}
	if err != nil {
		return WithCredentials{}, s.internal("start", err)
	}
	out, err := s.withCredentials(ctx, c, userID)
	if err != nil {
		return WithCredentials{}, err
	}
	s.publish(ctx, EventInitiated, Event{Call: c, UserID: userID, SessionID: sessionID})
	s.pushWake(ctx)
	return out, nil
}

func (s *Service) withCredentials(ctx context.Context, c Call, userID string) (WithCredentials, error) {
	p := c.participant(userID)
	if p == nil || p.State != StateJoined || !c.live() {
		return WithCredentials{}, errNotIn
	}
	name := ""
	if s.opts.Provider.Name() == ProviderLiveKit {
		var err error
		if name, err = s.displayName(ctx, userID); err != nil {
			return WithCredentials{}, s.internal("credentials", err)
		}
	}
	cr, err := s.opts.Provider.Issue(Grant{Channel: c.Channel, UserID: userID, DisplayName: name, UID: p.UID, Now: s.now()})
	if err != nil {
		return WithCredentials{}, &apperr.Error{Kind: apperr.KindUnavailable, Code: "credentials_unavailable",
			Detail: "the media provider's credentials could not be issued", Err: err}
	}
	c.duration(s.now())
	return WithCredentials{Call: c, Credentials: cr}, nil
}

// displayName is the LiveKit participant name, from the accounts feature ("" without one).
func (s *Service) displayName(ctx context.Context, userID string) (string, error) {
	if s.opts.Accounts == nil {
		return "", nil
	}
	names, err := s.opts.Accounts.DisplayNames(ctx, s.db.R, []string{userID})
	return names[userID], err
}

// access loads a call the user may see: a ringing or active call in a chat they are a member of
// now, or an ended one they were part of or whose chat they are a member of. Anyone else gets 404,
// whether the call exists or not: a participant who left the chat or was removed from it no
// longer sees its live call, so every operation on it (answer, join, decline, leave, end, token,
// signaling) is 404 for them, as for a stranger.
func (s *Service) access(ctx context.Context, q querier, userID, callID string) (Call, error) {
	if !validID(callID) { // never reaches SQL: see validID
		return Call{}, errNotFound
	}
	c, err := getCall(ctx, q, callID)
	if errors.Is(err, store.ErrNotFound) {
		return Call{}, errNotFound
	}
	if err != nil {
		return Call{}, s.internal("get", err)
	}
	if c.participant(userID) == nil || c.live() {
		if _, _, _, err := s.chats.Membership(ctx, c.ChatID, userID); err != nil {
			if apperr.KindOf(err) == apperr.KindNotFound {
				return Call{}, errNotFound
			}
			return Call{}, err
		}
	}
	c.duration(s.now())
	return c, nil
}

// stillMember is errNotFound unless userID is a member of chatID now.
func (s *Service) stillMember(ctx context.Context, chatID, userID string) error {
	in, err := s.chats.MembersAmong(ctx, chatID, []string{userID})
	if err != nil {
		return err
	}
	if len(in) == 0 {
		return errNotFound
	}
	return nil
}

// Get returns a call the user may see.
func (s *Service) Get(ctx context.Context, userID, callID string) (Call, error) {
	return s.access(ctx, s.db.R, userID, callID)
}

// effect is what a transition publishes after its commit.
type effect struct {
	typ    string
	user   string
	sess   string
	reason string
}

// transition runs fn on the call under its row lock (lockLive), in one transaction, and
// publishes the events it returns after the commit. A call that is no longer live is 409
// call_ended (404 for users who may not see it).
func (s *Service) transition(ctx context.Context, userID, callID, cond string, fn func(tx *sql.Tx, c *Call, now time.Time) ([]effect, error), args ...any) (Call, error) {
	if userID != "" {
		if _, err := s.access(ctx, s.db.R, userID, callID); err != nil {
			return Call{}, err
		}
	}
	var c Call
	var effs []effect
	now := s.now()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if c, err = lockLive(ctx, tx, callID, cond, args...); err != nil {
			return err
		}
		if userID != "" { // again under the lock: a removal's drop (MembersChanged) ran first
			if err := s.stillMember(ctx, c.ChatID, userID); err != nil {
				return err
			}
		}
		if effs, err = fn(tx, &c, now); err != nil {
			return err
		}
		if len(effs) == 0 {
			return nil
		}
		if err := setCall(ctx, tx, &c); err != nil {
			return err
		}
		// The call as committed, for the answer and the events.
		if err := loadParticipants(ctx, tx, []*Call{&c}); err != nil {
			return err
		}
		return s.pushStopped(ctx, tx, &c, effs)
	})
	if errors.Is(err, errNotLive) {
		return Call{}, errEnded
	}
	if _, ok := apperr.As(err); ok {
		return Call{}, err
	}
	if err != nil {
		return Call{}, s.internal("transition", err)
	}
	c.duration(now)
	for _, e := range effs {
		s.publish(ctx, e.typ, Event{Call: c, UserID: e.user, SessionID: e.sess, Reason: e.reason})
	}
	if len(effs) > 0 {
		s.pushWake(ctx)
	}
	return c, nil
}

// publish sends a call event to its participants who are members of the call's chat now: a
// participant who left the chat or was removed from it gets no further event of its calls.
func (s *Service) publish(ctx context.Context, typ string, ev Event) {
	to, err := s.chats.MembersAmong(ctx, ev.Call.ChatID, ev.Call.userIDs())
	if err != nil { // fail closed: an event is not sent to whom it cannot be checked for
		s.log.ErrorContext(ctx, "call: event audience", "call_id", ev.Call.ID, "type", typ, "err", err)
		return
	}
	if len(to) > 0 {
		s.pub.PublishUsers(ctx, to, typ, ev)
	}
}

// end ends c (the caller holds its lock) with reason; joined participants leave.
func end(ctx context.Context, tx *sql.Tx, c *Call, now time.Time, by, reason string) ([]effect, error) {
	switch {
	case reason == ReasonMissed:
		c.Status = StatusMissed
	case reason == ReasonDeclined:
		c.Status = StatusDeclined
	default:
		c.Status = StatusEnded
	}
	c.EndedAt, c.EndedBy, c.EndReason = &now, by, reason
	for _, p := range c.Participants {
		if p.State == StateJoined {
			p.State, p.LeftAt = StateLeft, &now
			if _, err := setParticipant(ctx, tx, c.ID, p, StateJoined); err != nil {
				return nil, err
			}
		}
	}
	return []effect{{typ: EventEnded, user: by, reason: reason}}, nil
}

// Answer makes the user a participant: the first answer makes the call active. call_answered
// tells every member's devices who answered and from which session (the user's other devices
// stop ringing).
func (s *Service) Answer(ctx context.Context, userID, sessionID, callID string) (WithCredentials, error) {
	return s.enter(ctx, userID, sessionID, callID, true)
}

// Join enters a live call: a group member who was not in it, declined or left, or a direct
// participant coming back.
func (s *Service) Join(ctx context.Context, userID, sessionID, callID string) (WithCredentials, error) {
	return s.enter(ctx, userID, sessionID, callID, false)
}

func (s *Service) enter(ctx context.Context, userID, sessionID, callID string, answer bool) (WithCredentials, error) {
	c, err := s.transition(ctx, userID, callID, "", func(tx *sql.Tx, c *Call, now time.Time) ([]effect, error) {
		p := c.participant(userID)
		if answer && (p == nil || p.State != StateInvited) {
			return nil, errNoAnswer
		}
		if p != nil && p.State == StateJoined {
			return nil, apperr.New(apperr.KindConflict, "already_in_call", "you are in this call already (on another device?)")
		}
		if c.count(StateJoined) >= s.opts.MaxParticipants {
			return nil, errFull
		}
		if p == nil { // a member who joined the chat after the call started
			np := Participant{UserID: userID, State: StateJoined, UID: uint32(len(c.Participants) + 1), SessionID: sessionID, JoinedAt: &now}
			if err := insertParticipant(ctx, tx, c.ID, np); err != nil {
				return nil, err
			}
			c.Participants = append(c.Participants, np)
		} else {
			np := *p
			np.State, np.SessionID, np.JoinedAt, np.LeftAt = StateJoined, sessionID, &now, nil
			if ok, err := setParticipant(ctx, tx, c.ID, np, StateInvited, StateDeclined, StateLeft); err != nil || !ok {
				return nil, fmt.Errorf("enter: %w (changed %v)", err, ok)
			}
			*p = np
		}
		if c.Status == StatusRinging {
			c.Status, c.AnsweredAt = StatusActive, &now
		}
		if answer {
			return []effect{{typ: EventAnswered, user: userID, sess: sessionID}}, nil
		}
		return []effect{{typ: EventParticipantJoined, user: userID, sess: sessionID}}, nil
	})
	if err != nil {
		return WithCredentials{}, err
	}
	return s.withCredentials(ctx, c, userID)
}

// Decline takes an invited member out. A direct call, or a group call nobody answered once every
// invited member declined, ends as declined.
func (s *Service) Decline(ctx context.Context, userID, callID string) (Call, error) {
	return s.transition(ctx, userID, callID, "", func(tx *sql.Tx, c *Call, now time.Time) ([]effect, error) {
		p := c.participant(userID)
		if p == nil || p.State != StateInvited {
			return nil, errNoAnswer
		}
		p.State, p.LeftAt = StateDeclined, &now
		if _, err := setParticipant(ctx, tx, c.ID, *p, StateInvited); err != nil {
			return nil, err
		}
		effs := []effect{{typ: EventDeclined, user: userID}}
		if !c.Group || (c.Status == StatusRinging && c.count(StateInvited) == 0) {
			more, err := end(ctx, tx, c, now, "", ReasonDeclined)
			if err != nil {
				return nil, err
			}
			effs = append(effs, more...)
		}
		return effs, nil
	})
}

// Leave takes a participant out; the call ends when nobody is left in it (in a direct call, when
// one side leaves an answered call).
func (s *Service) Leave(ctx context.Context, userID, callID string) (Call, error) {
	return s.leave(ctx, userID, callID, "left", "")
}

func (s *Service) leave(ctx context.Context, userID, callID, why, cond string, args ...any) (Call, error) {
	caller := userID
	if why != "left" { // the sweeper acts for nobody
		caller = ""
	}
	return s.transition(ctx, caller, callID, cond, func(tx *sql.Tx, c *Call, now time.Time) ([]effect, error) {
		p := c.participant(userID)
		if p == nil || p.State != StateJoined {
			return nil, errNotIn
		}
		p.State, p.LeftAt = StateLeft, &now
		if _, err := setParticipant(ctx, tx, c.ID, *p, StateJoined); err != nil {
			return nil, err
		}
		effs := []effect{{typ: EventParticipantLeft, user: userID, reason: why}}
		joined := c.count(StateJoined)
		if joined == 0 || (!c.Group && c.Status == StatusActive && joined < 2) {
			reason := ReasonCompleted
			switch {
			case c.Status == StatusRinging:
				reason = ReasonCancelled
			case why != "left":
				reason = ReasonFailed
			}
			more, err := end(ctx, tx, c, now, "", reason)
			if err != nil {
				return nil, err
			}
			effs = append(effs, more...)
		}
		return effs, nil
	}, args...)
}

// End ends the call for everyone: its initiator may, and in a group a chat owner or admin.
// Unanswered it ends as cancelled, else as completed.
func (s *Service) End(ctx context.Context, userID, callID string) (Call, error) {
	c, err := s.access(ctx, s.db.R, userID, callID)
	if err != nil {
		return Call{}, err
	}
	if c.InitiatorID != userID {
		allowed := false
		if c.Group {
			_, manager, _, err := s.chats.Membership(ctx, c.ChatID, userID)
			if err != nil && apperr.KindOf(err) != apperr.KindNotFound {
				return Call{}, err
			}
			allowed = err == nil && manager
		}
		if !allowed {
			return Call{}, apperr.Forbidden("only the caller, or in a group an owner or admin, ends the call for everyone; leave it instead")
		}
	}
	return s.transition(ctx, "", callID, "", func(tx *sql.Tx, c *Call, now time.Time) ([]effect, error) {
		reason := ReasonCompleted
		if c.Status == StatusRinging {
			reason = ReasonCancelled
		}
		return end(ctx, tx, c, now, userID, reason)
	})
}

// Token issues fresh credentials to a participant of a live call.
func (s *Service) Token(ctx context.Context, userID, callID string) (WithCredentials, error) {
	c, err := s.access(ctx, s.db.R, userID, callID)
	if err != nil {
		return WithCredentials{}, err
	}
	if !c.live() {
		return WithCredentials{}, errEnded
	}
	return s.withCredentials(ctx, c, userID)
}

// missed ends a ringing call whose deadline passed as missed and posts a system message in the
// chat. Only one of several racing sweepers (or a racing answer) wins the conditional UPDATE.
func (s *Service) missed(ctx context.Context, callID string, now time.Time) (bool, error) {
	c, err := s.transition(ctx, "", callID, "AND status = 'ringing' AND ring_deadline <= $2",
		func(tx *sql.Tx, c *Call, at time.Time) ([]effect, error) {
			return end(ctx, tx, c, at, "", ReasonMissed)
		}, store.Millis(now))
	if errors.Is(err, errEnded) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	text := "Missed audio call"
	if c.Kind == "video" {
		text = "Missed video call"
	}
	if err := s.chats.PostSystem(ctx, c.ChatID, c.InitiatorID, "call-missed:"+c.ID, text); err != nil {
		s.log.WarnContext(ctx, "call: missed-call message", "call_id", c.ID, "err", err)
	}
	return true, nil
}
