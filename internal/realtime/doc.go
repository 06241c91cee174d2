// Package realtime is NeruTalk's real-time transport: the one WebSocket at GET /api/v1/ws, the
// hub that routes events to connections, the Bus that carries publications between nodes, and
// presence. It knows no domain: features register commands (Hub.Handle) and publish events
// (Hub.PublishUsers, Hub.PublishTopic); the chat package declares the small Publisher interface it
// needs and the hub satisfies it. The wire protocol is documented in docs/websocket.md.
//
// # Extension points for features
//
// Besides Handle and the Publish methods, a feature may use:
//
//   - Client.SessionID: the auth session (one signed-in device) of a command's connection.
//   - Hub.PublishSession: an event to the connections of one session of a user, on every node.
//   - Hub.OnDisconnect: a hook run on the node that held a connection, after it closed for any
//     cause and was unregistered, on the connection's goroutine, with an uncancelled context that
//     carries the caller. Several features may register; hooks must be quick.
//   - Hub.OnPresence: a hook run when a user comes online or goes offline (after the grace
//     period, across nodes), once per change, on the node that saw it.
//   - Hub.OnSignal / Hub.PublishSignal: a feature's notice to its own handler on every node.
//
// docs/websocket.md ("For feature authors") has the table.
//
// # Lifecycle of a connection
//
// ServeHTTP authenticates the access token (Authorization header or ?token=) before upgrading, so
// a bad token is a plain 401 problem document. The WebSocket protocol itself (handshake, frames,
// control frames, close handshake) is the small server-side implementation in package rfc6455.
// After the upgrade the connection gets a goroutine of its own (the handler's goroutine, with its
// deep net/http stack, ends): it registers the connection, records presence, and then becomes the
// read loop until the connection closes; it then unregisters the connection and returns. A
// connection ends when the client closes it, when its access token expires (4001), when its
// session is revoked (4003, CloseSessions), when a ping gets no pong (4002), when its send queue
// overflows (4008), when it abuses the rate limit or the wire-frame budget (4029: every frame
// counts, pings and fragments too) or keeps sending bad frames (1008), when
// a frame exceeds the size limit (1009), when it breaks the protocol (1002, or 1007 for text that
// is not UTF-8), or at Shutdown (1001).
//
// # Concurrency model
//
//   - Per connection there is one long-lived goroutine, the read loop: it decodes frames and runs
//     command handlers one at a time, in order, and answers the client's pings. A command whose
//     answer must wait (a message waiting for its commit) returns a Later: the read loop goes on,
//     and the producer's Later.Done queues the answer, on the producer's goroutine, together with
//     the answers of later frames that were waiting behind it; so every answer goes out in frame
//     order, and no goroutine waits for them. The writer is a
//     goroutine that exists only while there is something to write: queueing a frame starts it
//     when none runs; it drains the whole send queue at each pass, writes all the frames in one
//     writev(2) (one WebSocket message per envelope, headers built in place, payloads not
//     copied), and ends when the queue is empty. So an idle connection costs one parked goroutine.
//   - Pings come from one goroutine per hub, which visits one user shard per 1/32 of the ping
//     interval: a connection that has not answered a ping written at least one interval ago is
//     closed with 4002 (a ping its writer has not written yet, on a busy node, does not count),
//     the others get a ping (written by their writer).
//   - Every outgoing frame (events, acks, errors) goes through the connection's bounded send queue.
//     Enqueueing never blocks: when the queue is full the connection is closed as too slow, and the
//     others keep receiving. Memory follows the backlog, not the limit.
//   - Publishing encodes the frame once and hands the same bytes to the Bus; the in-process
//     LocalBus delivers synchronously, so frames published by one goroutine are queued, and
//     therefore written, to each connection in publication order. Acks are queued after the
//     events their command published. A publisher that sends runs of frames (the chat's event
//     pipeline) carries a WakeBatch in its context: frames are queued at once but the writers
//     start at the batch's Flush, so a connection that got several of them in the run (a message
//     and its own ack, or the messages of several chats) writes them in one writev(2).
//     nerutalk_ws_frames_out_total / nerutalk_ws_writes_total is the frames per write.
//   - Connections are indexed in 32 user shards and topic memberships in 32 topic shards, each
//     behind its own RWMutex; delivery holds a shard's read lock only while it queues frames.
//     Lock order: a presence announce lock, then a user or topic shard, then a connection's queue
//     lock; conn.mu (a connection's topic set), then a topic shard.
//   - Closing is idempotent (close records the first cause and starts the writer, which flushes
//     when the cause allows and sends the close frame; the read loop keeps reading until the peer
//     answers it). A watchdog drops the socket if the close has not completed within
//     closeTimeout, so a stalled peer cannot hold a goroutine.
//   - The Bus carries every publication to every node. LocalBus delivers synchronously, in
//     process. RedisBus (redisbus.go) delivers on its own node the same way and appends to a Redis
//     stream that the other nodes read; entries carry node id and counter, so duplicates are
//     skipped and gaps counted, and a node that loses Redis reads on from its last entry.
//     KindSignal carries a feature's notice to every node's OnSignal handler.
//   - Presence is tracked behind a small interface (presenceTracker): in memory for one node, in
//     Redis for several (redispresence.go: counts per node, grace deadlines in a sorted set taken
//     by one node's janitor, crashed nodes released by the others, and each node's own counts
//     rewritten into Redis when Redis lost them). A user is online
//     while a connection is open and for PresenceGrace after the last one closes, so a quick
//     reconnect produces no events. Presence goes by interest (interest.go): each node indexes, per
//     user, the local connections that follow them (automatically: PresenceAudience.AutoPresence,
//     refreshed by RefreshPresence; or by presence_subscribe, capped per connection). A change is
//     one KindPresence bus message, delivered on each node to the user's followers only; each
//     announcement and each snapshot read the status and queue their frames under the user's
//     announce lock, so every client sees a user's changes in order. Lock order: announce locks
//     (in shard order), then conn.mu, then an interest shard, then a connection's queue lock.
package realtime
