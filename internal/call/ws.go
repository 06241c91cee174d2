package call

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/realtime"
)

// The WebSocket signaling commands of the p2p provider: relayed to the addressee as server frames
// of the same type, with from_user_id (and from_session_id) added.
const (
	CmdOffer        = "webrtc_offer"
	CmdAnswer       = "webrtc_answer"
	CmdICECandidate = "webrtc_ice_candidate"
)

// CommandRegistry is where commands are registered and the protocol described: the realtime hub.
type CommandRegistry interface {
	Handle(typ string, fn realtime.CommandFunc)
	Describe(p realtime.Protocol)
}

// RegisterCommands registers the signaling commands, and describes them and the call events
// (Protocol).
func (s *Service) RegisterCommands(reg CommandRegistry) {
	reg.Describe(Protocol())
	reg.Handle(CmdOffer, s.cmdSignal(CmdOffer))
	reg.Handle(CmdAnswer, s.cmdSignal(CmdAnswer))
	reg.Handle(CmdICECandidate, s.cmdSignal(CmdICECandidate))
}

// SignalCommand is the data of the signaling commands from a client.
type SignalCommand struct {
	CallID      string          `json:"call_id" doc:"The ringing or active call"`
	ToUserID    string          `json:"to_user_id" doc:"The participant (invited or joined) it is for"`
	ToSessionID string          `json:"to_session_id,omitempty" maxLength:"64" doc:"Only that device of the addressee (the session_id of call_answered); absent: every connection of theirs"`
	SDP         string          `json:"sdp,omitempty" doc:"webrtc_offer, webrtc_answer: the session description (required there)"`
	Candidate   json.RawMessage `json:"candidate,omitempty" doc:"webrtc_ice_candidate: the RTCIceCandidateInit object (required there)"`
}

// Signal is the data of the frames relayed to the addressee (and what Relay relays): the
// command's fields with the sender added.
type Signal struct {
	CallID        string          `json:"call_id"`
	ToUserID      string          `json:"to_user_id"`
	ToSessionID   string          `json:"to_session_id,omitempty"`
	SDP           string          `json:"sdp,omitempty" doc:"webrtc_offer, webrtc_answer: the session description"`
	Candidate     json.RawMessage `json:"candidate,omitempty" doc:"webrtc_ice_candidate: the RTCIceCandidateInit object"`
	FromUserID    string          `json:"from_user_id" doc:"The sender"`
	FromSessionID string          `json:"from_session_id,omitempty" doc:"The sender's session (device): answer to it with to_session_id"`
}

var errBadFrame = apperr.New(apperr.KindBadRequest, "bad_request", "data is not the JSON object this command takes")

func (s *Service) cmdSignal(typ string) realtime.CommandFunc {
	return func(ctx context.Context, c realtime.Client, data json.RawMessage) (any, error) {
		in, err := parseSignal(typ, data)
		if err != nil {
			return nil, err
		}
		return nil, s.Relay(ctx, c.UserID(), c.SessionID(), typ, in)
	}
}

// parseSignal reads and checks the data of a signaling command from a client.
func parseSignal(typ string, data json.RawMessage) (Signal, error) {
	var cmd SignalCommand
	if err := json.Unmarshal(data, &cmd); err != nil {
		return Signal{}, errBadFrame
	}
	// The server sets the sender.
	in := Signal{CallID: cmd.CallID, ToUserID: cmd.ToUserID, ToSessionID: cmd.ToSessionID, SDP: cmd.SDP, Candidate: cmd.Candidate}
	switch {
	case !validID(in.CallID):
		return Signal{}, apperr.Invalid("call_id", "a call id")
	case !validID(in.ToUserID):
		return Signal{}, apperr.Invalid("to_user_id", "a user id")
	case len(in.ToSessionID) > 64:
		return Signal{}, apperr.Invalid("to_session_id", "not a session id")
	case typ == CmdICECandidate && (len(in.Candidate) == 0 || string(in.Candidate) == "null"):
		return Signal{}, apperr.Invalid("candidate", "required")
	case typ != CmdICECandidate && in.SDP == "":
		return Signal{}, apperr.Invalid("sdp", "required")
	}
	return in, nil
}

// Relay delivers one signaling frame from a participant of a ringing or active call to another
// participant of the same call (invited or joined): never across calls, never to or from anyone
// who declined or left. The sender does not learn whether the addressee exists beyond that.
// It runs for every ICE candidate, so it reads the two participants' states only, not the call
// with all its participants (a group's up to its members).
func (s *Service) Relay(ctx context.Context, fromUser, fromSession, typ string, in Signal) error {
	if !validID(in.CallID) { // never reaches SQL: see validID
		return errNotFound
	}
	chatID, live, states, err := relayStates(ctx, s.db.R, in.CallID, fromUser, in.ToUserID)
	if err != nil {
		return s.internal("relay", err)
	}
	from, ok := states[fromUser]
	if !ok { // not a participant (or no such call): 404 unless the chat's member may see the call
		c, err := s.access(ctx, s.db.R, fromUser, in.CallID)
		if err != nil {
			return err
		}
		live, from = c.live(), ""
	}
	if !live {
		return errEnded
	}
	// Only between members of the call's chat now: a participant who left the chat or was
	// removed from it neither sends (404, as a stranger) nor receives.
	members, err := s.chats.MembersAmong(ctx, chatID, []string{fromUser, in.ToUserID})
	if err != nil {
		return err
	}
	if !slices.Contains(members, fromUser) {
		return errNotFound
	}
	inCall := func(state string) bool { return state == StateJoined || state == StateInvited }
	if !inCall(from) {
		return errNotIn
	}
	if to, ok := states[in.ToUserID]; !ok || !inCall(to) || !slices.Contains(members, in.ToUserID) || in.ToUserID == fromUser && in.ToSessionID == "" {
		return apperr.New(apperr.KindNotFound, "not_found", "no such participant in this call")
	}
	in.FromUserID, in.FromSessionID = fromUser, fromSession
	if in.ToSessionID != "" {
		s.pub.PublishSession(ctx, in.ToUserID, in.ToSessionID, typ, in)
		return nil
	}
	s.pub.PublishUsers(ctx, []string{in.ToUserID}, typ, in)
	return nil
}

// relayStates reads whether the call is live and the participant states of users (absent: not a
// participant; no rows at all: no such call).
func relayStates(ctx context.Context, q querier, callID string, users ...string) (chatID string, live bool, states map[string]string, err error) {
	rows, err := q.QueryContext(ctx, `SELECT c.chat_id, c.status, p.user_id, p.state FROM calls c
		LEFT JOIN call_participants p ON p.call_id = c.id AND p.user_id IN ($2, $3) WHERE c.id = $1`, callID, users[0], users[1])
	if err != nil {
		return "", false, nil, err
	}
	defer rows.Close()
	states = map[string]string{}
	for rows.Next() {
		var status string
		var user, state sql.NullString
		if err := rows.Scan(&chatID, &status, &user, &state); err != nil {
			return "", false, nil, err
		}
		live = status == StatusRinging || status == StatusActive
		if user.Valid {
			states[user.String] = state.String
		}
	}
	return chatID, live, states, rows.Err()
}
