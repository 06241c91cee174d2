package chat

import "github.com/nerutalk/nerutalk/internal/realtime"

// Protocol describes the chat's WebSocket commands and events with the Go types that encode
// them, for the protocol document (/asyncapi.json, /docs/websocket).
func Protocol() realtime.Protocol {
	common := []string{"validation_failed", "bad_request", "not_found"}
	errs := func(more ...string) []string { return append(append([]string(nil), common...), more...) }
	return realtime.Protocol{
		Commands: []realtime.CommandSpec{{
			Type: CmdSendMessage, Summary: "Send a message to a chat",
			Description: "The ack carries the stored message (with its seq) and comes only once it is committed. " +
				"Sending the same client_id again acks the original message again and stores nothing. " +
				"Pipelined: the next frames are handled while the message waits for its commit.",
			Data: SendCommand{}, Ack: Message{},
			Errors: errs("client_id_reused", "text_too_long", "invalid_attachment", "reply_not_found", "shutting_down", "blocked"),
		}, {
			Type: CmdJoinChat, Summary: "Receive the chat's ephemeral events (typing_indicator) on this connection",
			Description: "Until leave_chat, the connection closes, or the user leaves the chat. Members only.",
			Data:        ChatRef{}, Errors: errs(),
		}, {
			Type: CmdLeaveChat, Summary: "Stop receiving the chat's ephemeral events on this connection",
			Data: ChatRef{}, Errors: []string{"validation_failed", "bad_request"},
		}, {
			Type: CmdTyping, Summary: "Tell the chat's joined connections that the user is typing or stopped",
			Description: "At most one change per user per chat is forwarded every 2 s; typing turns off by itself 6 s after the last true. " +
				"In a direct chat with a block between the two users (either way): blocked.",
			Data: TypingCommand{}, Errors: errs("blocked"),
		}, {
			Type: CmdMessageRead, Summary: "Mark the chat read up to seq (which implies delivered)",
			Description: "In a direct chat with a block between the two users (either way): blocked.",
			Data:        MarkCommand{}, Errors: errs("seq_out_of_range", "blocked"),
		}, {
			Type: CmdMessageDelivered, Summary: "Mark the chat delivered up to seq (it reached one of the user's devices)",
			Description: "Send it as soon as a message_new arrives: a member whose mark reaches a message before its push is due gets no push for it. " +
				"In a direct chat with a block between the two users (either way): blocked.",
			Data: MarkCommand{}, Errors: errs("seq_out_of_range", "blocked"),
		}, {
			Type: CmdSync, Summary: "Replay the messages after after_seq, in ascending seq",
			Description: "While has_more is true, sync again with after_seq set to the last item's seq. Deleted messages come as tombstones.",
			Data:        SyncCommand{}, Ack: Page{}, Errors: errs(),
		}},
		Events: []realtime.EventSpec{{
			Type: EventMessageNew, Summary: "A new message",
			Description: "Every member, on every connection (the sender's too), no join_chat needed; a chat's messages go out in seq order.",
			Data:        Message{},
		}, {
			Type: EventMessageUpdated, Summary: "A message was edited", Description: "Every member.", Data: Message{},
		}, {
			Type: EventMessageDeleted, Summary: "A message was deleted for everyone: its tombstone",
			Description: "Every member; deleted is true, text and attachments are empty, the seq stays.", Data: Message{},
		}, {
			Type: EventMessageRead, Summary: "A member read the chat up to seq", Description: "Every member.", Data: ReceiptEvent{},
		}, {
			Type: EventMessageDelivered, Summary: "The chat reached one of a member's devices up to seq", Description: "Every member.", Data: ReceiptEvent{},
		}, {
			Type: EventTyping, Summary: "A member is typing, or stopped",
			Description: "The connections that joined the chat (join_chat), except the typist's own.", Data: TypingEvent{},
		}, {
			Type: EventChatUpdated, Summary: "A chat was created or its title, members or roles changed",
			Description: "Every member, and a member who left or was removed once more (members no longer include them): then drop the chat.",
			Data:        Chat{},
		}, {
			Type: EventGroupInvitation, Summary: "Someone tried to add you to a group and your group_adds setting made it an invitation",
			Description: "The invitee only. Accept with POST /invitations/{id}/accept, decline with POST /invitations/{id}/decline; it expires at expires_at.",
			Data:        Invitation{},
		}},
	}
}
