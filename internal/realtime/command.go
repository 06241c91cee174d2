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
