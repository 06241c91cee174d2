// Package location is NeruTalk's location feature: live positions (PUT /location and the
// location_update command), time-boxed shares with a user or a chat at exact or approximate
// precision, nearby discoverable users, history with a per-user retention, and geofences with
// enter, exit and dwell events. The geometry is in the subpackage geo; docs/location.md explains
// the privacy rules and the approximate grid.
//
// # Concurrency
//
// Service methods are safe for concurrent use and hold no lock across I/O. A position report runs
// on the caller's goroutine (an HTTP handler, or a connection's read loop): one transaction
// stores the latest position and, when the throttle allows, a history point — a single
// conditional upsert decides both, so reports of one user handled at once on two nodes cannot
// both win — then the report is published to the viewers of the owner's active shares (read from
// the database and, for chats, from the chat's member cache) and checked against the owner's
// geofences found through the cell index. Geofence transitions are conditional UPDATEs: each is
// reported once, on whichever node makes it.
//
// Start runs two goroutines until its stop function is called: share expiry every ExpiryEvery
// (one UPDATE ... WHERE status = 'active' AND expires_at <= now RETURNING: each share expires
// once, on one node) and history pruning every PruneEvery (batched DELETEs). Nothing else is
// cached but parsed geofence shapes (keyed by id and updated_at, so never stale) and prepared
// statements.
//
// Events leave through the Publisher (the realtime hub), which carries them to every node.
package location
