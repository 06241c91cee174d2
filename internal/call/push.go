package call

import (
	"context"
	"database/sql"
)

// Pusher reaches members' devices outside the WebSocket (push notifications, for phones whose
// app sleeps): the push feature's durable outbox, through a small adapter in internal/server.
// It is optional (Options.Pusher). CallRinging and CallStopped run inside the transaction of the
// change (an error rolls the change back), so a ring or its withdrawal is queued exactly when the
// change commits; Wake runs after the commit.
type Pusher interface {
	// CallRinging: the call rings for n.UserIDs (it started).
	CallRinging(ctx context.Context, tx *sql.Tx, n PushNotice) error
	// CallStopped: it stopped ringing for n.UserIDs, because of n.Reason: answered (on one of
	// their devices), declined, or the call's end reason (missed, cancelled, declined, completed,
	// failed) when it ended while it still rang for them.
	CallStopped(ctx context.Context, tx *sql.Tx, n PushNotice) error
	// Wake tells the sender that something was queued.
	Wake(ctx context.Context)
}

// PushNotice is what a push about a call says, in plain values: the push feature need not import
// this package.
type PushNotice struct {
	CallID   string
	ChatID   string
	CallerID string // who started the call
	Kind     string // audio or video
	Reason   string // CallStopped: answered, declined, or the end reason
	UserIDs  []string
}

func notice(c *Call, reason string, users []string) PushNotice {
	return PushNotice{CallID: c.ID, ChatID: c.ChatID, CallerID: c.InitiatorID, Kind: c.Kind, Reason: reason, UserIDs: users}
}

func invited(c *Call) []string {
	var users []string
	for _, p := range c.Participants {
		if p.State == StateInvited {
			users = append(users, p.UserID)
		}
	}
	return users
}

// pushRinging queues the ring of a new call for its invited members (in its transaction).
func (s *Service) pushRinging(ctx context.Context, tx *sql.Tx, c *Call) error {
	if s.opts.Pusher == nil {
		return nil
	}
	if users := invited(c); len(users) > 0 {
		return s.opts.Pusher.CallRinging(ctx, tx, notice(c, "", users))
	}
	return nil
}

// pushStopped queues the withdrawal of the ringing a transition stopped (in its transaction):
// for who answered or declined, and, when the call ended, for everyone it still rang for.
func (s *Service) pushStopped(ctx context.Context, tx *sql.Tx, c *Call, effs []effect) error {
	if s.opts.Pusher == nil {
		return nil
	}
	for _, e := range effs {
		var n PushNotice
		switch e.typ {
		case EventAnswered:
			n = notice(c, "answered", []string{e.user})
		case EventDeclined:
			n = notice(c, "declined", []string{e.user})
		case EventEnded:
			n = notice(c, c.EndReason, invited(c))
		default:
			continue
		}
		if len(n.UserIDs) == 0 {
			continue
		}
		if err := s.opts.Pusher.CallStopped(ctx, tx, n); err != nil {
			return err
		}
	}
	return nil
}

// pushWake wakes the sender after a commit that queued pushes.
func (s *Service) pushWake(ctx context.Context) {
	if s.opts.Pusher != nil {
		s.opts.Pusher.Wake(ctx)
	}
}
