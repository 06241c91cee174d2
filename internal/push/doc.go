// Package push reaches users who have no open connection: devices (FCM, APNs, Web Push
// endpoints registered per session), a durable outbox, the triggers that fill it (new messages,
// mentions, calls, geofence and location events), per-chat and global preferences, localized
// templates, and the admin send, broadcast and statistics. The provider clients live in
// push/provider behind provider.Sender.
//
// # The outbox
//
// A feature calls Enqueue (or a trigger: MessagesStored, CallRinging, CallEnded, GeofenceEvent,
// LocationShared) with the *sql.Tx that stores the cause, so a notification exists exactly when
// its cause was committed. Enqueue writes one notification row per user; a notification with a
// collapse key merges into the queued one of the same user and key (a burst of messages in a
// chat becomes one row with a count).
//
// Workers claim due rows in batches: status 'sending', a lease (Options.Lease) and attempts+1, in
// one UPDATE (FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent workers on every node take
// disjoint rows; on SQLite the one write connection serialises claims). A claimed notification
// is expanded: the preferences, presence (Options.Presence: online on any node) and the
// member's delivered_seq (Options.Chats) decide whether it is skipped, and otherwise one
// delivery row per matching device is inserted, in the transaction that marks the notification
// done. A claimed delivery is rendered (template of its type and the device's locale) and sent
// through Options.Sender; the outcome is recorded with an UPDATE conditioned on the lease still
// being this worker's: ErrInvalidToken removes the device, a RetryableError queues the row again
// after a backoff with jitter (never before Retry-After), and the last attempt makes it dead. A
// worker that dies mid-batch loses nothing: its rows are claimed again when their lease runs out
// (a row can then be sent twice, never lost — at-least-once).
//
// # Goroutines
//
// Start runs one worker goroutine per node; it handles one batch after another while there is
// work, then waits for Wake (a signal over the hub's bus, so every node's worker looks at once)
// or Options.PollInterval. Within a batch, sends run Options.Concurrency at a time; the batch's
// outcomes are written in one transaction. Stop cancels the worker and waits for its batch.
package push
