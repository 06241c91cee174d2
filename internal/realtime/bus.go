package realtime

import (
	"context"
	"sync"
)

// MessageKind says what a bus Message asks every node to do.
type MessageKind uint8

// The kinds of bus message.
const (
	// KindUsers delivers Frame to every connection of each of Users.
	KindUsers MessageKind = iota + 1
	// KindTopic delivers Frame to the connections that joined Topic, except those of ExceptUser.
	KindTopic
	// KindLeaveTopic makes every connection of each of Users leave Topic.
	KindLeaveTopic
	// KindSignal hands Frame to the handler registered for the signal named Topic (Hub.OnSignal)
	// on every node: how a feature tells the other nodes that something changed (the chat
	// package drops its cached members this way).
	KindSignal
	// KindSession delivers Frame to the connections of Users[0] opened with the auth session
	// named Topic (Hub.PublishSession).
	KindSession
	// KindPresence delivers Frame (a presence event of the user Topic) to the connections that
	// follow that user: one message per presence change, whatever the size of the user's chats.
	KindPresence
)

// Message is one publish or leave operation, carried between nodes by the Bus. Frame is the
// encoded envelope, shared by every recipient: nobody may modify it.
type Message struct {
	Kind       MessageKind `json:"kind"`
	Users      []string    `json:"users,omitempty"`
	Topic      string      `json:"topic,omitempty"`
	ExceptUser string      `json:"except_user,omitempty"`
	Frame      []byte      `json:"frame,omitempty"`
}

// Bus carries Messages to every node, this one included; each node delivers them to its own
// connections. The in-process LocalBus serves a single node; RedisBus connects several.
type Bus interface {
	// Publish sends m to every node. It must be quick: the hub may call it while it holds a lock
	// that orders presence events.
	Publish(ctx context.Context, m Message) error
	// Subscribe makes deliver receive every message published from now on, on this node, in the
	// order each publisher published them. deliver does not block. Its context is the publisher's
	// when the message never left the process (LocalBus), else the bus's own. The returned
	// function ends the subscription.
	Subscribe(deliver func(context.Context, Message)) (cancel func())
}

// LocalBus is the in-process Bus: Publish hands the message to the subscribers synchronously,
// so a publisher's messages reach them in order.
type LocalBus struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(context.Context, Message)
}

// NewLocalBus returns an in-process bus.
func NewLocalBus() *LocalBus { return &LocalBus{subs: map[int]func(context.Context, Message){}} }

// Publish delivers m to every subscriber, with ctx, before returning.
func (b *LocalBus) Publish(ctx context.Context, m Message) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, deliver := range b.subs {
		deliver(ctx, m)
	}
	return nil
}

// Subscribe adds a subscriber.
func (b *LocalBus) Subscribe(deliver func(context.Context, Message)) (cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	b.subs[id] = deliver
	return func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}
