// Package chat is NeruTalk's messaging domain: direct and group chats, members and roles,
// messages with a per-chat seq, history, edits, deletes for everyone, read and delivered receipts,
// typing indicators and resync, over REST (Mount) and over WebSocket commands (RegisterCommands).
// It also tells the realtime hub who sees whose presence (Contacts).
//
// # Dependencies
//
// chat imports no other feature. What it needs of them it declares with its own types, and the
// server adapts: Publisher (the realtime hub, whose methods take plain types), Files (media's
// uploads: FileInfo, FileRef), Accounts (auth's MissingUsers, and Cards for the member
// profiles that chats carry: see profiles.go), SendHooks (push's outbox), ActiveCalls (call's
// live calls) and the OnMembersChanged and OnBlocksChanged hooks (location's shares). Only ws.go, the WebSocket
// adapter, imports realtime: the command table, realtime.Later for the deferred ack of
// send_message and the hub's wake batch for the pipeline; the group commit and the pipeline see
// them as plain funcs.
//
// # Seq and durability
//
// Every message of a chat has a seq 1, 2, 3... with no gaps and no duplicates. The transaction
// that stores messages first reserves their seqs with UPDATE chats SET last_seq = last_seq + n
// RETURNING last_seq and inserts them in the same transaction, so a reserved seq is never lost.
// A sender's ack (the REST answer, the WebSocket ack) is sent only after that commit. A send is
// idempotent on (sender, client_id): a retry answers the original message and stores nothing.
//
// # Attachments
//
// A message's attachment_ids are checked before the op enters the group commit (the sender's own
// files, through the Files interface). The batch's transaction then
// attaches them (Files.AttachTx: media's attach counts live in the same database, and the
// files' rows are locked, so a concurrent file delete either wins and the send alone fails with
// invalid_attachment, or finds the file attached) and inserts the message_attachments rows with
// the message: a crash cannot leave a message pointing at a file that the orphan sweep deletes,
// and a retry (same client_id) attaches nothing. Attachment metadata is read with one statement
// per page: chat's query over message_attachments, joined with media's tables by Files.FilesOf
// (media's SQL, so neither package names the other's tables); the events carry what the send
// validated, so fan-out queries nothing. Deleting a message for everyone (or a chat) removes its
// rows in its transaction and releases the files after the commit; a crash in between leaves a
// file counted as attached (kept, never lost). CanRead is media's Access: a current member of a
// chat where a message that is not deleted carries the file may download it.
//
// # Send hooks
//
// Options.SendHooks are told, inside the batch's transaction, after the messages and their
// attachments are written, about every message it stored (not retries), each with its chat's
// type, title and members at commit time (from the roster cache when its members_version is the
// batch's, else one query in the transaction; nothing is read when no hook is registered). A
// hook writes its own rows with the transaction (push's outbox), so a message is never committed
// without them; a hook error rolls the batch back and the writer retries each op alone, like
// any store error.
//
// # Concurrency model
//
//   - The writer goroutine is a group commit. Send and Mark queue an op and wait for it (the
//     WebSocket's send_message queues it without waiting: the pipeline calls the op's answered
//     func once the events of its batch are published, and cmdSend makes that the Done of the
//     realtime.Later it returns). The writer takes everything
//     queued (up to Options.MaxBatch), commits it in one transaction and answers each op. While
//     it commits, the next batch accumulates, so batches grow with the load; and it paces itself
//     (Options.CommitEvery): a batch that would start sooner than that after the previous one
//     gathers what arrives until then, so moderate loads commit in fewer, larger transactions
//     instead of paying a transaction's fixed cost per message. Ops that fail on their own (not a
//     member, client_id used in another chat, seq beyond the last message) are answered without
//     failing the batch; if the transaction itself fails, each op is retried in its own
//     transaction so that one bad op cannot fail the others.
//     On PostgreSQL the chats are split between two such writers (lanes, Options.WriterLanes)
//     by a hash of their id: one lane's transaction runs while the other's commits, a chat's ops
//     always go through the same lane, and the lanes' transactions never touch the same chat.
//     The code: batch.go is the algorithm (which ops become messages, seq reservation, retries
//     and refusals), batch_sql.go its statements on each engine, batch_tx.go the transaction and
//     SQLite's prepared-statement cache, batch_keys.go the keys it groups by (clientKey: a
//     sender's client_id; memberKey: a user in a chat), writer.go the goroutine and its pacing.
//   - Other writes (chat and member changes, edits, deletes) run their own transaction.
//   - orderMu is held from the start of every write transaction until its events are queued, so
//     the event queue is in commit order (shared by the writer's lanes, which touch distinct
//     chats; alone by every other write). The pipeline goroutine publishes the queue one event at
//     a time: each chat's message_new events go out by ascending seq, after their commit. It
//     publishes whatever is queued (up to 64 items) under one wake batch (the hub's, adapted in
//     ws.go), so the
//     connections written to start writing once, after the run: a sender's message_new and its
//     ack leave in one write.
//   - Membership lives in a read-through cache (chat id -> roster) so that checking a sender and
//     finding the audience of an event query nothing. A membership change queues an item that
//     invalidates the cache entries, makes removed users leave the chat's topic
//     (LeaveTopicUser) and publishes chat_updated; the change's caller returns after the item
//     ran, so a removed member receives nothing of the chat afterwards. The write transaction
//     checks membership again against the database (the senders' read-mark update reports who
//     is a member; a batch with a non-member reruns with an explicit check), so a stale cache
//     cannot let a removed member send. Each event goes out with one PublishUsers call for all members (encoded once).
//   - Typing indicators live in memory only (typing.go), behind one mutex and an injected Clock.
//   - On PostgreSQL every transaction that touches a chat locks its chats row before any of its
//     chat_members rows, and a batch locks its chats in id order, so transactions never wait on
//     each other in a cycle. On SQLite all writes share one connection and are serialized.
//
// Across nodes: a membership change publishes the signal chat.members_changed on the realtime
// bus, and every node drops its cached roster of the chat and the contact lists of its members.
// Delivery does not depend on the signal's timing: each send reads chats.members_version (raised
// by every membership change, under the chat's row lock) with its seqs, edits, deletes and
// receipts read it too, and the pipeline reloads a cached roster older than that before
// publishing, so an event reaches exactly the members of the moment it was committed, on every
// node; the database check refuses removed senders everywhere.
package chat
