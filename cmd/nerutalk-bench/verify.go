package main

import (
	"fmt"
	"slices"
)

// seqSet is a growable bit set of message sequence numbers (seq ≥ 1). It is not safe for
// concurrent use: its owner (a connection's receiver) guards it.
type seqSet struct {
	words []uint64
	n     int
	top   int64 // the highest seq added
}

// add marks seq and reports whether it was new.
func (s *seqSet) add(seq int64) bool {
	if seq < 1 {
		return false
	}
	w, bit := int(seq/64), uint(seq%64)
	if w >= len(s.words) {
		s.words = append(s.words, make([]uint64, max(w+1, 2*len(s.words))-len(s.words))...)
	}
	if s.words[w]&(1<<bit) != 0 {
		return false
	}
	s.words[w] |= 1 << bit
	s.n++
	return true
}

func (s *seqSet) has(seq int64) bool {
	if s == nil || seq < 1 {
		return false
	}
	w := int(seq / 64)
	return w < len(s.words) && s.words[w]&(1<<uint(seq%64)) != 0
}

func (s *seqSet) len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// ackRecord is one message the server acknowledged: where it was stored and under which seq.
type ackRecord struct {
	ChatID   string
	Seq      int64
	ClientID string
}

// storedMessage is one message as read back through GET /chats/{id}/messages.
type storedMessage struct {
	Seq      int64  `json:"seq"`
	ClientID string `json:"client_id"`
	Text     string `json:"text"`
}

// chatCheck is the verdict on one chat's stored history against the acks the tool received.
type chatCheck struct {
	Acked       int   `json:"acked"`
	Stored      int   `json:"stored"`       // messages read back
	Missing     int   `json:"missing"`      // acked but not stored
	Duplicates  int   `json:"duplicates"`   // extra copies of an acked client_id
	SeqMismatch int   `json:"seq_mismatch"` // stored under another seq than the ack said
	SeqGaps     int   `json:"seq_gaps"`     // seq numbers absent between 1 and the highest
	SeqRepeats  int   `json:"seq_repeats"`  // a seq seen twice, or the list not ascending
	Unacked     int   `json:"unacked"`      // the tool's messages stored without an ack reaching it (timeouts)
	LastSeq     int64 `json:"last_seq"`     // the chat's last_seq as GET /chats/{id} reported it before the read
	MaxSeq      int64 `json:"max_seq"`      // the highest seq read back
}

// ok is true when every acked message is stored exactly once under its seq, seq is gapless and
// every seq up to the chat's last_seq is stored (a later message may have landed since).
func (c chatCheck) ok() bool {
	return c.Missing == 0 && c.Duplicates == 0 && c.SeqMismatch == 0 && c.SeqGaps == 0 &&
		c.SeqRepeats == 0 && c.LastSeq <= c.MaxSeq
}

// checkChat compares a chat's history (in the order the API returned it) with the acks, all
// taken before the history was read. lastSeq is the chat's last_seq read before the history.
func checkChat(acked []ackRecord, stored []storedMessage, lastSeq int64) chatCheck {
	c := chatCheck{Acked: len(acked), Stored: len(stored), LastSeq: lastSeq}
	seen := map[int64]bool{}
	byClient := map[string][]int64{}
	var prev int64
	for _, m := range stored {
		if m.Seq <= prev || seen[m.Seq] {
			c.SeqRepeats++
		}
		prev = max(prev, m.Seq)
		seen[m.Seq] = true
		c.MaxSeq = max(c.MaxSeq, m.Seq)
		if m.ClientID != "" {
			byClient[m.ClientID] = append(byClient[m.ClientID], m.Seq)
		}
	}
	for s := int64(1); s <= c.MaxSeq; s++ {
		if !seen[s] {
			c.SeqGaps++
		}
	}
	ackedIDs := make(map[string]bool, len(acked))
	for _, a := range acked {
		if ackedIDs[a.ClientID] {
			continue // the same ack twice is the client's bookkeeping, not the server's
		}
		ackedIDs[a.ClientID] = true
		seqs := byClient[a.ClientID]
		switch {
		case len(seqs) == 0:
			c.Missing++
			continue
		case len(seqs) > 1:
			c.Duplicates += len(seqs) - 1
		}
		if !slices.Contains(seqs, a.Seq) {
			c.SeqMismatch++
		}
	}
	for _, m := range stored {
		if _, _, ours := parsePayload(m.Text); ours && !ackedIDs[m.ClientID] {
			c.Unacked++
		}
	}
	return c
}

// storageCheck adds up the verdicts over all chats.
type storageCheck struct {
	Chats       int      `json:"chats"`
	Acked       int      `json:"acked"`
	Stored      int      `json:"stored"`
	Missing     int      `json:"missing"`
	Duplicates  int      `json:"duplicates"`
	SeqMismatch int      `json:"seq_mismatch"`
	SeqGaps     int      `json:"seq_gaps"`
	SeqRepeats  int      `json:"seq_repeats"`
	Unacked     int      `json:"unacked"`
	Failed      int      `json:"failed_chats"`
	Failures    []string `json:"failures,omitempty"` // the first few chats that failed, with why
	OK          bool     `json:"ok"`
}

func (s *storageCheck) add(chatID string, c chatCheck) {
	s.Chats++
	s.Acked += c.Acked
	s.Stored += c.Stored
	s.Missing += c.Missing
	s.Duplicates += c.Duplicates
	s.SeqMismatch += c.SeqMismatch
	s.SeqGaps += c.SeqGaps
	s.SeqRepeats += c.SeqRepeats
	s.Unacked += c.Unacked
	if !c.ok() {
		s.Failed++
		if len(s.Failures) < 5 {
			s.Failures = append(s.Failures, fmt.Sprintf("chat %s: %+v", chatID, c))
		}
	}
	s.OK = s.Failed == 0
}

// fail records a chat that could not be read back at all.
func (s *storageCheck) fail(chatID string, err error) {
	s.Chats++
	s.Failed++
	if len(s.Failures) < 5 {
		s.Failures = append(s.Failures, fmt.Sprintf("chat %s: %v", chatID, err))
	}
	s.OK = false
}
