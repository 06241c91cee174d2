package realtime

import (
	"fmt"
	"slices"
	"strings"
)

// The protocol description: what each frame type carries, for the generated protocol document
// (/asyncapi.json and /docs/websocket, package asyncapi). Features describe their commands and
// events with the Go types that encode them (Hub.Describe) while wiring, next to Handle; the hub
// adds its own frames (ping, the presence commands, ack, error, presence). Tests check the description against the
// handlers and against the frames a real server sends.

// CommandSpec describes one client command (a frame type registered with Handle).
type CommandSpec struct {
	Type    string // the frame type
	Summary string // one line
	// Description says more: rules, what the server does; plain text, may be empty.
	Description string
	// Data is a value of the Go type the command decodes its data into (nil: an empty object).
	Data any
	// Ack is a value of the Go type of the data of its ack (nil: an empty object).
	Ack any
	// Errors are the codes of the error frames the command itself may answer, besides the
	// transport's (bad_frame, unknown_type, rate_limited, internal).
	Errors []string
}

// EventSpec describes one server event (a frame type the server sends without being asked).
type EventSpec struct {
	Type        string // the frame type
	Summary     string // one line
	Description string // who receives it and when; plain text, may be empty
	Data        any    // a value of the Go type of its data
}

// Protocol is the description of a set of commands and events.
type Protocol struct {
	Commands []CommandSpec
	Events   []EventSpec
}

// ErrorCode is one code of the error frames of the transport.
type ErrorCode struct{ Code, Meaning string }

// TransportErrors are the error codes the hub itself answers with.
var TransportErrors = []ErrorCode{
	{CodeBadFrame, "not a JSON object, a bad type or id, data that is not an object, or a binary frame"},
	{CodeUnknownType, "no command of that type"},
	{CodeRateLimited, "over the frame rate limit: the frame was dropped; slow down and resend later"},
	{CodeInternal, "the server failed (and logged it); the detail is always \"internal error\"; retry later"},
}

// CloseCode is one close code the server sends (the close frame's status and reason).
type CloseCode struct {
	Code    int
	Reason  string
	Meaning string
}

// CloseCodes lists the close codes the server sends, from the close causes themselves, ordered
// by code (a code with two causes appears once per reason).
func CloseCodes() []CloseCode {
	out := make([]CloseCode, 0, len(closeCauses))
	for _, c := range closeCauses {
		out = append(out, CloseCode{Code: int(c.code), Reason: c.reason, Meaning: c.meaning})
	}
	slices.SortStableFunc(out, func(a, b CloseCode) int { return a.Code - b.Code })
	return out
}

// hubProtocol is what the hub itself sends and answers.
func hubProtocol() Protocol {
	return Protocol{
		Commands: []CommandSpec{{
			Type: "ping", Summary: "Check the socket and the server's clock",
			Description: "Always answered, with or without id: the ack carries the server time.",
			Ack:         PingData{},
		}, {
			Type: CmdPresenceSubscribe, Summary: "Follow the presence of users on screen",
			Description: "Follows the listed users who share a chat with the caller (others are left out of the ack, silently), for the life of this connection. Their statuses arrive first in a presence_snapshot frame, then the ack; later changes arrive as presence events. Capped per connection (NERUTALK_PRESENCE_SUBSCRIPTIONS): going over fails the whole request with too_many_subscriptions.",
			Data:        PresenceUsers{},
			Ack:         PresenceSubscribed{},
			Errors:      []string{"bad_request", "validation_failed", "too_many_subscriptions", "unavailable"},
		}, {
			Type: CmdPresenceUnsubscribe, Summary: "Stop following users subscribed to",
			Description: "Users followed automatically (direct-chat partners, co-members of small groups) stay followed.",
			Data:        PresenceUsers{},
			Ack:         PresenceSubscribed{},
			Errors:      []string{"bad_request", "validation_failed", "too_many_subscriptions"},
		}, {
			Type: CmdPresenceCount, Summary: "How many members of a chat are online",
			Description: "For large groups, whose members get no presence events of each other. Members only (others: not_found); the answer is reused for 2 s per chat.",
			Data:        PresenceCountQuery{},
			Ack:         PresenceCount{},
			Errors:      []string{"bad_request", "not_found", "unavailable"},
		}},
		Events: []EventSpec{{
			Type: "presence", Summary: "A followed user came online or went offline",
			Description: "Sent to the connections that follow the user: automatically (direct-chat partners, co-members of groups of at most NERUTALK_LARGE_GROUP_MEMBERS) or by presence_subscribe. Offline comes after the presence grace period.",
			Data:        PresenceData{},
		}, {
			Type: "presence_snapshot", Summary: "The statuses of users a connection starts to follow",
			Description: "Sent first to a new connection (the automatically followed users online), when the automatic set grows, and before the ack of presence_subscribe (online, or offline with last_seen); later changes arrive as presence events.",
			Data:        PresenceSnapshot{},
		}},
	}
}

// Describe adds a feature's commands and events to the protocol description. Call it while
// wiring, next to Handle. Describing a frame type twice (a command twice, or an event twice) is a
// programming error and panics; a command and an event may share a type (typing_indicator).
func (h *Hub) Describe(p Protocol) {
	if h.serving.Load() {
		panic("realtime: Describe after the hub started serving")
	}
	h.protoMu.Lock()
	defer h.protoMu.Unlock()
	if h.proto.Commands == nil && h.proto.Events == nil {
		h.proto = hubProtocol()
	}
	for _, c := range p.Commands {
		if !validType(c.Type) || slices.ContainsFunc(h.proto.Commands, func(x CommandSpec) bool { return x.Type == c.Type }) {
			panic(fmt.Sprintf("realtime: Describe: command %q invalid or described twice", c.Type))
		}
		h.proto.Commands = append(h.proto.Commands, c)
	}
	for _, e := range p.Events {
		if !validType(e.Type) || slices.ContainsFunc(h.proto.Events, func(x EventSpec) bool { return x.Type == e.Type }) {
			panic(fmt.Sprintf("realtime: Describe: event %q invalid or described twice", e.Type))
		}
		h.proto.Events = append(h.proto.Events, e)
	}
}

// Protocol returns the description of every command and event: the hub's own and the ones the
// features described, commands and events each ordered by type.
func (h *Hub) Protocol() Protocol {
	h.protoMu.Lock()
	defer h.protoMu.Unlock()
	p := h.proto
	if p.Commands == nil && p.Events == nil {
		p = hubProtocol()
	}
	p.Commands = slices.Clone(p.Commands)
	p.Events = slices.Clone(p.Events)
	slices.SortFunc(p.Commands, func(a, b CommandSpec) int { return strings.Compare(a.Type, b.Type) })
	slices.SortFunc(p.Events, func(a, b EventSpec) int { return strings.Compare(a.Type, b.Type) })
	return p
}

// Commands returns the frame types the hub dispatches (the registered ones and ping), sorted.
func (h *Hub) Commands() []string {
	out := []string{"ping"}
	for typ := range h.handlers {
		out = append(out, typ)
	}
	slices.Sort(out)
	return out
}
