package chat

import (
	"context"
)

// The server events this package publishes.
const (
	EventMessageNew       = "message_new"
	EventMessageUpdated   = "message_updated"
	EventMessageDeleted   = "message_deleted"
	EventMessageRead      = "message_read"
	EventMessageDelivered = "message_delivered"
	EventTyping           = "typing_indicator"
	EventChatUpdated      = "chat_updated"
)

// Publisher delivers events to WebSocket connections; the realtime hub satisfies it. Its methods
// must not block on slow connections.
type Publisher interface {
	// PublishUsers sends one event to every connection of the users (encoded once).
	PublishUsers(ctx context.Context, userIDs []string, typ string, data any)
	// PublishTopic sends one event to the connections that joined topic, except exceptUserID's.
	PublishTopic(ctx context.Context, topic, typ string, data any, exceptUserID string)
	// LeaveTopicUser unsubscribes every connection of the user from topic.
	LeaveTopicUser(ctx context.Context, topic, userID string)
	// OnSignal registers fn for the signal name; PublishSignal runs it on every node, on this one
	// before it returns. fn must not block.
	OnSignal(name string, fn func(ctx context.Context, payload []byte))
	PublishSignal(ctx context.Context, name string, payload []byte)
}

// topic is the realtime topic of a chat's ephemeral events (typing), joined with join_chat.
func topic(chatID string) string { return "chat:" + chatID }

// event is one item of the ordered event pipeline.
type event struct {
	chatID string
	typ    string // "" for an item that only runs apply
	data   any
	// users is the audience; nil means the chat's members when the event is published.
	users []string
	// membersVersion is the chat's members_version when the event was committed (messages,
	// edits, deletes, receipts): a cached member list older than it is reloaded before the event
	// goes out (another node may have changed the members, and this node's cache may not know yet).
	membersVersion int64
	// apply runs on the pipeline before the event is published (cache invalidation, topic leaves),
	// so that it takes effect exactly between the events committed before and after it.
	apply func(ctx context.Context)
	// done, when not nil, is closed once the item has been handled.
	done chan struct{}
	// answer, when not nil, is called once the item has been handled (a WebSocket send's ack).
	answer func(ctx context.Context)
}

// pipeline publishes events one at a time in the order they were queued. Writers queue under
// Service.orderMu right after their commit, so the queue order is the commit order: each chat's
// message_new events go out by ascending seq, and a membership change takes effect between the
// messages committed before it and after it.
type pipeline struct {
	ch   chan event
	done chan struct{}
	// wakeBatch returns a context under which the connections that publications queue frames on
	// start writing only when flush is called: the pipeline publishes a run of items under one, so
	// a sender's message_new and its ack leave in one write. hubWakeBatch (ws.go) adapts the
	// realtime hub's.
	wakeBatch func(ctx context.Context) (_ context.Context, flush func())
}

func (s *Service) runPipeline() {
	defer close(s.events.done)
	// Everything already queued is published under one WakeBatch (at most maxWakeBatch items): a
	// connection that gets several frames of it — a message and its ack, or the messages of
	// several chats — writes them at once. The batch is reused: flush empties it.
	ctx, flush := s.events.wakeBatch(context.Background())
	for ev := range s.events.ch {
		s.publish(ctx, ev)
	more:
		for n := 1; n < maxWakeBatch; n++ {
			select {
			case next, ok := <-s.events.ch:
				if !ok {
					break more
				}
				s.publish(ctx, next)
			default:
				break more
			}
		}
		flush()
	}
}

// maxWakeBatch bounds how many pipeline items may hold back the writers' start.
const maxWakeBatch = 64

// publish handles one pipeline item.
func (s *Service) publish(ctx context.Context, ev event) {
	if ev.apply != nil {
		ev.apply(ctx)
	}
	if ev.typ != "" {
		users := ev.users
		large := false
		if users == nil {
			r, err := s.rosters.get(ctx, ev.chatID)
			if err == nil && r.version < ev.membersVersion {
				s.rosters.invalidate(ev.chatID)
				r, err = s.rosters.get(ctx, ev.chatID)
			}
			if err != nil && !isNotFound(err) {
				s.log.Error("chat: event audience", "chat_id", ev.chatID, "type", ev.typ, "err", err)
			}
			if r != nil {
				users = r.ids
				large = r.typ == Group && s.largeGroup(len(r.ids))
			}
		}
		if rcpt, ok := ev.data.(ReceiptEvent); ok && large {
			// A receipt of a large group to every member would cost members² frames as they
			// read: it goes to the connections that joined the chat (the screen showing it) and
			// to the reader's own devices.
			s.pub.PublishTopic(ctx, topic(ev.chatID), ev.typ, ev.data, rcpt.UserID)
			s.pub.PublishUsers(ctx, []string{rcpt.UserID}, ev.typ, ev.data)
		} else if len(users) > 0 {
			s.pub.PublishUsers(ctx, users, ev.typ, ev.data)
		}
	}
	if ev.done != nil {
		close(ev.done)
	}
	if ev.answer != nil {
		ev.answer(ctx)
	}
}

// enqueue queues events; the caller holds orderMu.
func (s *Service) enqueue(evs ...event) {
	for _, ev := range evs {
		s.events.ch <- ev
	}
}
