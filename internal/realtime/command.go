package realtime

import (
	"context"
	"encoding/json"
)

// Client is one WebSocket connection as a command handler sees it.
type Client interface {
	UserID() string
	ConnID() string
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
// once Ready is closed, with Result's value (ack) or error (error frame). The answers of a
// connection's frames still go out in the order of the frames; at most maxPendingAnswers of
// them wait at once, after which the read loop waits for the oldest.
type Later struct {
	Ready  <-chan struct{}
	Result func() (any, error)
}
