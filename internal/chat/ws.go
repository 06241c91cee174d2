package chat

import (
	"context"
	"encoding/json"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/realtime"
)

// The WebSocket commands of the chat (client frame types).
const (
	CmdSendMessage      = "send_message"
	CmdJoinChat         = "join_chat"
	CmdLeaveChat        = "leave_chat"
	CmdTyping           = "typing_indicator"
	CmdMessageRead      = "message_read"
	CmdMessageDelivered = "message_delivered"
	CmdSync             = "sync"
)

// hubWakeBatch is the event pipeline's wakeBatch: the realtime hub's WakeBatch, which holds back
// the writers of the connections it queues frames on until Flush.
func hubWakeBatch(ctx context.Context) (context.Context, func()) {
	ctx, wb := realtime.WithWakeBatch(ctx)
	return ctx, wb.Flush
}

// CommandRegistry is where commands are registered and the protocol described: the realtime hub.
type CommandRegistry interface {
	Handle(typ string, fn realtime.CommandFunc)
	Describe(p realtime.Protocol)
}

// RegisterCommands registers the chat's WebSocket commands on the hub, and describes them and
// the chat's events (Protocol).
func (s *Service) RegisterCommands(reg CommandRegistry) {
	reg.Describe(Protocol())
	reg.Handle(CmdSendMessage, s.cmdSend)
	reg.Handle(CmdJoinChat, s.cmdJoin)
	reg.Handle(CmdLeaveChat, s.cmdLeave)
	reg.Handle(CmdTyping, s.cmdTyping)
	reg.Handle(CmdMessageRead, s.cmdMark(true))
	reg.Handle(CmdMessageDelivered, s.cmdMark(false))
	reg.Handle(CmdSync, s.cmdSync)
}

var errBadFrame = apperr.New(apperr.KindBadRequest, "bad_request", "data is not the JSON object this command takes")

// decode reads a command's data into v, and requires a well-formed chat_id.
func decode(data json.RawMessage, v any, chatID *string) error {
	if err := json.Unmarshal(data, v); err != nil {
		return errBadFrame
	}
	return checkID("chat_id", *chatID)
}

// SendCommand is the data of send_message.
type SendCommand struct {
	ChatID string `json:"chat_id"`
	SendInput
}

// cmdSend answers with the stored message, the same one again for a retried client_id. The
// answer is deferred (realtime.Later): the connection handles its next frames while the message
// waits for its commit, so a client that sends in a burst gets its messages into one commit
// instead of one commit each.
func (s *Service) cmdSend(ctx context.Context, c realtime.Client, data json.RawMessage) (any, error) {
	var in SendCommand
	if err := decode(data, &in, &in.ChatID); err != nil {
		return nil, err
	}
	o, err := s.checkSend(ctx, c.UserID(), in.ChatID, in.SendInput)
	if err != nil {
		return nil, err
	}
	// The pipeline calls o.answered once the events of o's batch are published, after o.res is
	// set: the Later is then Done and answers with the stored message.
	later := realtime.NewLater(o.answer)
	o.answered = later.Done
	if err := s.queueOp(ctx, o); err != nil {
		return nil, err
	}
	return later, nil
}

// ChatRef is the data of join_chat and leave_chat.
type ChatRef struct {
	ChatID string `json:"chat_id"`
}

// cmdJoin subscribes the connection to the chat's ephemeral events (typing); members only.
func (s *Service) cmdJoin(ctx context.Context, c realtime.Client, data json.RawMessage) (any, error) {
	var in ChatRef
	if err := decode(data, &in, &in.ChatID); err != nil {
		return nil, err
	}
	if _, _, err := s.member(ctx, in.ChatID, c.UserID()); err != nil {
		return nil, err
	}
	c.Join(topic(in.ChatID))
	return nil, nil
}

func (s *Service) cmdLeave(_ context.Context, c realtime.Client, data json.RawMessage) (any, error) {
	var in ChatRef
	if err := decode(data, &in, &in.ChatID); err != nil {
		return nil, err
	}
	c.Leave(topic(in.ChatID))
	return nil, nil
}

// TypingCommand is the data of typing_indicator from a client.
type TypingCommand struct {
	ChatID string `json:"chat_id"`
	Typing bool   `json:"typing" doc:"true while the user types (repeat every few seconds), false when they stop"`
}

func (s *Service) cmdTyping(ctx context.Context, c realtime.Client, data json.RawMessage) (any, error) {
	var in TypingCommand
	if err := decode(data, &in, &in.ChatID); err != nil {
		return nil, err
	}
	return nil, s.Typing(ctx, c.UserID(), in.ChatID, in.Typing)
}

// Typing records that userID is or stopped typing in chatID; see typing.set for the throttle.
func (s *Service) Typing(ctx context.Context, userID, chatID string, on bool) error {
	if _, _, err := s.memberUnblocked(ctx, chatID, userID); err != nil {
		return err
	}
	s.typing.set(chatID, userID, on)
	return nil
}

// MarkCommand is the data of message_read and message_delivered from a client.
type MarkCommand struct {
	ChatID string `json:"chat_id"`
	Seq    int64  `json:"seq" doc:"Every message up to this seq (a high-water mark: a lower one changes nothing)"`
}

func (s *Service) cmdMark(read bool) realtime.CommandFunc {
	return func(ctx context.Context, c realtime.Client, data json.RawMessage) (any, error) {
		var in MarkCommand
		if err := decode(data, &in, &in.ChatID); err != nil {
			return nil, err
		}
		return nil, s.Mark(ctx, c.UserID(), in.ChatID, in.Seq, read)
	}
}

// SyncCommand is the data of sync.
type SyncCommand struct {
	ChatID   string `json:"chat_id"`
	AfterSeq int64  `json:"after_seq" minimum:"0" doc:"Replay the messages after this seq (the last one the client holds)"`
	Limit    int    `json:"limit" required:"false" minimum:"0" maximum:"200" doc:"Page size, 1 to 200 (0 or absent: 50)"`
}

// cmdSync replays what the client missed: the ack is a Page {chat_id, items, has_more,
// next_cursor, last_seq} of the messages after after_seq; while has_more is true the client syncs
// again from the last item's seq.
func (s *Service) cmdSync(ctx context.Context, c realtime.Client, data json.RawMessage) (any, error) {
	var in SyncCommand
	if err := decode(data, &in, &in.ChatID); err != nil {
		return nil, err
	}
	if in.AfterSeq < 0 {
		return nil, apperr.Invalid("after_seq", "must be at least 0")
	}
	if in.Limit < 0 || in.Limit > 200 {
		return nil, apperr.Invalid("limit", "between 1 and 200")
	}
	return s.History(ctx, c.UserID(), in.ChatID, HistoryQuery{After: in.AfterSeq, Limit: in.Limit})
}
