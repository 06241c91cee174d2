package main

import (
	"strconv"
	"strings"
	"time"
)

// Every message the tool sends carries its own send time and number in its text, so that any
// receiver (and the sender's ack) can compute latency without shared state:
//
//	"nb1 <send time, Unix ns> <message number> xxxxxxxx..."  padded to the requested size
//
// Sender and receivers run on the same host, so they read the same clock.
const payloadPrefix = "nb1 "

// makePayload builds a message text of about size bytes (never shorter than its header).
func makePayload(sent time.Time, no uint64, size int) string {
	var b strings.Builder
	b.Grow(max(size, 48))
	b.WriteString(payloadPrefix)
	b.WriteString(strconv.FormatInt(sent.UnixNano(), 10))
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(no, 10))
	b.WriteByte(' ')
	for b.Len() < size {
		b.WriteByte('x')
	}
	return b.String()
}

// parsePayload reads the send time and message number back from a text. ok is false for any
// text the tool did not write (other traffic on the server, a malformed or truncated echo).
func parsePayload(text string) (sent time.Time, no uint64, ok bool) {
	rest, found := strings.CutPrefix(text, payloadPrefix)
	if !found {
		return time.Time{}, 0, false
	}
	tsStr, rest, found := strings.Cut(rest, " ")
	if !found {
		return time.Time{}, 0, false
	}
	noStr, _, found := strings.Cut(rest, " ")
	if !found {
		return time.Time{}, 0, false
	}
	ns, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil || ns <= 0 {
		return time.Time{}, 0, false
	}
	no, err = strconv.ParseUint(noStr, 10, 64)
	if err != nil {
		return time.Time{}, 0, false
	}
	return time.Unix(0, ns), no, true
}
