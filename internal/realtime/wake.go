package realtime

import "context"

// WakeBatch defers starting connection writers while one goroutine publishes a run of frames, so
// that a connection that gets several of them (a message_new and the ack of the same message,
// say, or the events of several chats) writes them in one writev(2) instead of one each. Frames
// are queued at once, in order; only the writers' start waits for Flush. A WakeBatch belongs to
// the goroutine that made it, and only reaches connections of this node through the in-process
// delivery of its publications (a frame that arrives through another node's bus wakes its writer
// at once).
type WakeBatch struct {
	conns []*conn
}

type wakeBatchKey struct{}

// WithWakeBatch returns ctx carrying a new WakeBatch: publications with the returned context
// (PublishUsers, PublishTopic, Later.Done) queue their frames without starting writers until
// Flush.
func WithWakeBatch(ctx context.Context) (context.Context, *WakeBatch) {
	b := &WakeBatch{}
	return context.WithValue(ctx, wakeBatchKey{}, b), b
}

func wakeBatchFrom(ctx context.Context) *WakeBatch {
	b, _ := ctx.Value(wakeBatchKey{}).(*WakeBatch)
	return b
}

// Flush starts the writers of the connections that frames were queued to since the last Flush.
func (b *WakeBatch) Flush() {
	for i, c := range b.conns {
		c.wake()
		b.conns[i] = nil
	}
	b.conns = b.conns[:0]
}
