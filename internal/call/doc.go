// Package call runs voice and video calls: their lifecycle in the database, their events on the
// WebSocket, WebRTC signaling for the embedded p2p provider, and media credentials (Agora
// AccessToken2, LiveKit JWTs, TURN REST credentials). It carries no media. See docs/calls.md.
//
// Concurrency: the service has no goroutine of its own except the sweeper (Start) and the
// disconnect-grace timers (one per user going offline). Every change of a call is one
// transaction that starts with a conditional UPDATE of the call's row (lockLive): on PostgreSQL
// it holds the row lock until the commit, on SQLite the single write connection serialises, so
// concurrent requests on one call — on one node or many — apply one after the other, and a
// request that finds the call over gets call_ended. Events are published after the commit, by
// the goroutine that made the change; the hub and its bus carry them to every node. The sweeper
// of every node races the others and the requests through the same conditional UPDATEs.
package call
