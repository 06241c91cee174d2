package call

import "context"

// Pusher reaches members' devices outside the WebSocket (push notifications, for devices that
// are asleep or offline): the push feature, through a small adapter in internal/server. It is
// optional (Options.Pusher); the service calls it after the commit, on the goroutine that made
// the change, so it must hand slow work (sending) to its own queue.
type Pusher interface {
	// CallRinging: the call rings for n.UserIDs (it started; call_initiated).
	CallRinging(ctx context.Context, n PushNotice)
	// CallStopped: it stopped ringing for n.UserIDs: they answered (on one of their devices) or
	// declined, or the call ended before they answered (n.EndReason: missed, cancelled, declined,
	// completed...).
	CallStopped(ctx context.Context, n PushNotice)
}

// PushNotice is what a push about a call says. Plain values: the push feature need not import
// this package's types.
type PushNotice struct {
	CallID    string
	ChatID    string
	CallerID  string // who started the call
	Kind      string // audio or video
	Status    string // the call's status after the change
	EndReason string // when it ended
	UserIDs   []string
}

func notice(c Call, users []string) PushNotice {
	return PushNotice{CallID: c.ID, ChatID: c.ChatID, CallerID: c.InitiatorID, Kind: c.Kind, Status: c.Status,
		EndReason: c.EndReason, UserIDs: users}
}

// pushRinging tells the pusher whom a new call rings for.
func (s *Service) pushRinging(ctx context.Context, c Call) {
	if s.opts.Pusher == nil {
		return
	}
	var users []string
	for _, p := range c.Participants {
		if p.State == StateInvited {
			users = append(users, p.UserID)
		}
	}
	if len(users) > 0 {
		s.opts.Pusher.CallRinging(ctx, notice(c, users))
	}
}

// pushStopped tells the pusher for whom a transition stopped the ringing: the users who
// answered or declined, and, when the call ended, everyone it was still ringing for.
func (s *Service) pushStopped(ctx context.Context, c Call, effs []effect) {
	if s.opts.Pusher == nil {
		return
	}
	var users []string
	for _, e := range effs {
		switch e.typ {
		case EventAnswered, EventDeclined:
			users = append(users, e.user)
		case EventEnded:
			for _, p := range c.Participants {
				if p.State == StateInvited {
					users = append(users, p.UserID)
				}
			}
		}
	}
	if len(users) > 0 {
		s.opts.Pusher.CallStopped(ctx, notice(c, users))
	}
}
