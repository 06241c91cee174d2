package call

import "github.com/nerutalk/nerutalk/internal/realtime"

// Protocol describes the call events and the WebRTC signaling commands with the Go types that
// encode them, for the protocol document (/asyncapi.json, /docs/websocket).
func Protocol() realtime.Protocol {
	relayed := "Relayed to the addressee as a frame of the same type, with from_user_id and from_session_id added. " +
		"Only between participants (invited or joined) of the same ringing or active call who are members of its chat (p2p provider)."
	signalErrors := []string{"validation_failed", "bad_request", "not_found", "not_in_call", "call_ended"}
	received := "The addressee of the signaling command: every connection of theirs, or only the session to_session_id named."
	everyone := "Every participant (every member of the chat when the call started, and who joined later) who is a member of the chat now, on every connection, the actor's own devices included. " +
		"A participant who left the chat or was removed from it gets no event of the call after that chat_updated."
	return realtime.Protocol{
		Commands: []realtime.CommandSpec{
			{Type: CmdOffer, Summary: "Send a WebRTC offer to a participant", Description: relayed, Data: SignalCommand{}, Errors: signalErrors},
			{Type: CmdAnswer, Summary: "Send a WebRTC answer to a participant", Description: relayed, Data: SignalCommand{}, Errors: signalErrors},
			{Type: CmdICECandidate, Summary: "Send an ICE candidate to a participant", Description: relayed, Data: SignalCommand{}, Errors: signalErrors},
		},
		Events: []realtime.EventSpec{
			{Type: EventInitiated, Summary: "A call started ringing (user_id, session_id: who started it)", Description: everyone, Data: Event{}},
			{Type: EventAnswered, Summary: "A participant answered (user_id, session_id: who, from which device)", Description: everyone + " The answerer's other devices stop ringing.", Data: Event{}},
			{Type: EventDeclined, Summary: "A participant declined", Description: everyone, Data: Event{}},
			{Type: EventParticipantJoined, Summary: "A participant joined", Description: everyone, Data: Event{}},
			{Type: EventParticipantLeft, Summary: "A participant left (reason: left, disconnected, or removed: they left the chat or were removed from it)", Description: everyone, Data: Event{}},
			{Type: EventEnded, Summary: "The call ended (reason; user_id: who ended it, absent when it ended by itself)", Description: everyone, Data: Event{}},
			{Type: CmdOffer, Summary: "A participant's WebRTC offer", Description: received, Data: Signal{}},
			{Type: CmdAnswer, Summary: "A participant's WebRTC answer", Description: received, Data: Signal{}},
			{Type: CmdICECandidate, Summary: "A participant's ICE candidate", Description: received, Data: Signal{}},
		},
	}
}
