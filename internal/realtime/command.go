package realtime

import (
	"context"
	"encoding/json"
	"sync"
)

// Client is one WebSocket connection as a command handler sees it.
type Client interface {
	UserID() string
	ConnID() string
	// SessionID is the auth session of the access token the connection was opened with (one per
	// signed-in device): what Hub.PublishSession and Hub.CloseSessions address.
	SessionID() string
	// Join subscribes this connection to the ephemeral events published to topic (PublishTopic).
	Join(topic string)
	// Leave undoes Join.
	Leave(topic string)
}

// CommandFunc handles one client frame type. Its result becomes the data of the "ack" frame (nil
// gives {}); an error becomes an "error" frame carrying the apperr code and detail. A handler
// runs on the connection's read loop: frames of one connection are handled in order.
type CommandFunc func(ctx context.Context, c Client, data json.RawMessage) (any, error)

// Later is what a command returns when its answer is not ready yet (a message waiting for its
// commit): the connection goes on reading and handling the next frames, and answers this frame
// once the producer calls Done, with result's value (ack) or error (error frame). The answers of
// a connection's frames still go out in the order of the frames; at most maxPendingAnswers of
// them wait at once, after which the read loop waits for the oldest.
type Later struct {
	result func() (any, error)

	mu     sync.Mutex
	done   bool
	notify func(ctx context.Context) // the waiting connection's, once it registered
}

// NewLater returns a Later whose answer result gives once Done has been called.
func NewLater(result func() (any, error)) *Later { return &Later{result: result} }

// Done marks the answer ready. The connection queues it (and the answers of later frames that
// were waiting behind it) at once, on the caller's goroutine: with a WakeBatch in ctx, its writer
// starts at the batch's Flush, together with the events published meanwhile. Call it once.
func (l *Later) Done(ctx context.Context) {
	l.mu.Lock()
	l.done = true
	notify := l.notify
	l.mu.Unlock()
	if notify != nil {
		notify(ctx)
	}
}

func (l *Later) isDone() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

// onDone registers fn to run at Done; when the Later is already done it registers nothing and
// reports true.
func (l *Later) onDone(fn func(ctx context.Context)) (already bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return true
	}
	l.notify = fn
	return false
}
