// Command nerutalk-bench is NeruTalk's load generator. It drives a running server over its
// public API exactly as apps do — REST for accounts, chats and history, one WebSocket per user
// for sending and receiving — and reports what the server sustains.
//
//	nerutalk-bench -scenario idle|fanout|chat|auth|loopback|calls|bystander [-addr http://127.0.0.1:8080] [-pid PID] [flags]
//
// Scenarios (each prints one JSON line on stdout and a human summary on stderr):
//
//   - idle: N authenticated, quiet WebSockets (every user in a direct chat and a group); after a
//     settle time, the server's RSS, Go heap and goroutines per connection, against a baseline
//     taken before the first connection.
//   - fanout: one group of K online members; a member posts at stepped rates; deliveries/s,
//     send-to-receive latency and loss.
//   - chat: U users online in G groups of S, M of them posting at a stepped total rate until
//     saturation, with history reads alongside; acked msgs/s, deliveries/s, latencies, and a
//     final check that every acked message was delivered to every member once and is stored
//     once under a gapless seq.
//   - auth: logins/s (a password hash each) and refreshes/s, closed loop.
//   - bystander: a bystander pair exchanges messages at a steady rate while phases run one
//     abuse each (NUL bytes, 1-byte fragments, ping floods, large 16-bit PNGs, a connection
//     flood on one token, refresh loops, REST send floods, group floods): the pair's ack and
//     delivery p50/p99 per phase against the quiet phase, and how often the abuse was refused.
//   - loopback: no server; N loopback TCP connections with both ends in this process, frames
//     written one write(2) each at stepped rates: the CPU a frame costs this machine, the floor
//     under the real-time figures of the other scenarios.
//
// Method: every message text (-size bytes, 100 by default) starts with its send time and number,
// so acks and deliveries are timed on the same host clock without bookkeeping. Senders are open
// loop (a schedule, not "send after the ack"), bounded by -max-inflight unacknowledged messages
// each; a step is saturated when the acked rate falls below 95 % of the target, sends had to be
// skipped, the server refused sends, or the ack p99 exceeds -slo. Each step is a warm-up then a
// measured window, repeated -runs times; results give the median with min, max and spread.
// Only messages sent inside the window count towards rates and latencies; every message counts
// towards the loss and duplicate checks.
//
// Concurrency: one goroutine reads each WebSocket and hands frames to the scenario's handler,
// which updates atomic counters, lock-free histograms and small per-connection or per-chat
// state behind their own mutexes; one goroutine per sender paces sends. Setup work (registering,
// creating chats, dialing) runs on bounded worker pools. Every run is bounded in time
// (-max-duration) and the tool only talks to loopback addresses.
//
// bench/run.sh builds the server and this tool, starts fresh servers and runs the scenarios;
// docs/BENCHMARKS.md explains the method and records results.
package main
