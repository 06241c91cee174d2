package call

import "time"

// Kind is audio or video.
type Kind string

// Status of a call.
const (
	StatusRinging  = "ringing"
	StatusActive   = "active"
	StatusEnded    = "ended"
	StatusMissed   = "missed"
	StatusDeclined = "declined"
)

// End reasons.
const (
	ReasonCompleted = "completed"
	ReasonMissed    = "missed"
	ReasonDeclined  = "declined"
	ReasonCancelled = "cancelled"
	ReasonFailed    = "failed"
)

// Participant states.
const (
	StateInvited  = "invited"
	StateJoined   = "joined"
	StateDeclined = "declined"
	StateLeft     = "left"
)

// Participant is one member of a call: every member of the chat when the call started (invited,
// ringing for them), and members who joined later.
type Participant struct {
	UserID    string     `json:"user_id"`
	State     string     `json:"state" enum:"invited,joined,declined,left" doc:"invited: ringing for them; joined: in the call; declined; left"`
	UID       uint32     `json:"uid" doc:"Numeric id in the call, stable within it (Agora's uid)"`
	SessionID string     `json:"session_id,omitempty" doc:"The session (device) that answered or joined: address WebRTC signaling to it"`
	JoinedAt  *time.Time `json:"joined_at" doc:"When they (last) joined; null if never"`
	LeftAt    *time.Time `json:"left_at" doc:"When they left or declined; null while in the call or invited"`
}

// Call is a call record (the data of every call event, under "call").
type Call struct {
	ID           string        `json:"id"`
	ChatID       string        `json:"chat_id"`
	Kind         string        `json:"kind" enum:"audio,video" example:"video"`
	Status       string        `json:"status" enum:"ringing,active,ended,missed,declined" example:"ringing"`
	Channel      string        `json:"channel" doc:"The media channel (Agora channel, LiveKit room), derived from the call id"`
	Provider     string        `json:"provider" enum:"p2p,agora,livekit" example:"p2p"`
	InitiatorID  string        `json:"initiator_id"`
	Group        bool          `json:"group" doc:"A group chat's call: members join and leave; it ends when the last participant leaves"`
	Participants []Participant `json:"participants" doc:"In uid order"`
	CreatedAt    time.Time     `json:"created_at"`
	RingDeadline time.Time     `json:"ring_deadline" doc:"Unanswered by then, the call ends as missed"`
	AnsweredAt   *time.Time    `json:"answered_at" doc:"The first answer; null if never answered"`
	EndedAt      *time.Time    `json:"ended_at" doc:"null while ringing or active"`
	EndedBy      string        `json:"ended_by,omitempty" doc:"Who ended it (empty when it ended by itself: timeout, last leave, sweeper)"`
	EndReason    string        `json:"end_reason,omitempty" enum:"completed,missed,declined,cancelled,failed"`
	DurationS    int64         `json:"duration_s" doc:"Seconds from the first answer to the end (0 if never answered); so far, while active"`
	Version      int64         `json:"version" doc:"Grows with every change of the call: events of one call may arrive out of order from different nodes; keep the highest version seen"`
}

func (c *Call) live() bool { return c.Status == StatusRinging || c.Status == StatusActive }

func (c *Call) participant(userID string) *Participant {
	for i := range c.Participants {
		if c.Participants[i].UserID == userID {
			return &c.Participants[i]
		}
	}
	return nil
}

func (c *Call) count(state string) int {
	n := 0
	for _, p := range c.Participants {
		if p.State == state {
			n++
		}
	}
	return n
}

func (c *Call) userIDs() []string {
	ids := make([]string, len(c.Participants))
	for i, p := range c.Participants {
		ids[i] = p.UserID
	}
	return ids
}

// WithCredentials is a call with the caller's media credentials: the answer of POST /calls,
// answer, join and token.
type WithCredentials struct {
	Call
	Credentials Credentials `json:"credentials"`
}

// Event is the data of every call event: the call as it is after the change, who made it (and
// from which session), and why, for the events that have a reason.
type Event struct {
	Call      Call   `json:"call"`
	UserID    string `json:"user_id,omitempty" doc:"Who initiated, answered, declined, joined, left or ended"`
	SessionID string `json:"session_id,omitempty" doc:"call_answered, call_participant_joined: the session that answered or joined"`
	Reason    string `json:"reason,omitempty" doc:"call_ended: the end reason; call_participant_left: left, disconnected or removed (out of the chat)"`
}

// The call events.
const (
	EventInitiated         = "call_initiated"
	EventAnswered          = "call_answered"
	EventDeclined          = "call_declined"
	EventEnded             = "call_ended"
	EventParticipantJoined = "call_participant_joined"
	EventParticipantLeft   = "call_participant_left"
)

// Stats are the counts and durations of GET /calls/stats.
type Stats struct {
	From             time.Time        `json:"from"`
	To               time.Time        `json:"to"`
	Scope            string           `json:"scope" enum:"own,all" doc:"own: calls the caller was part of; all: every call (admins)"`
	Total            int64            `json:"total"`
	ByStatus         map[string]int64 `json:"by_status" doc:"ringing, active, ended, missed, declined"`
	ByKind           map[string]int64 `json:"by_kind" doc:"audio, video"`
	ByEndReason      map[string]int64 `json:"by_end_reason" doc:"completed, missed, declined, cancelled, failed"`
	Answered         int64            `json:"answered" doc:"Calls that were answered and have ended: the ones with a duration"`
	TotalDurationS   int64            `json:"total_duration_s"`
	AverageDurationS float64          `json:"average_duration_s" doc:"total_duration_s / answered (0 when none)"`
}
