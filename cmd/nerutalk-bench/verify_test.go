package main

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSeqSet(t *testing.T) {
	t.Parallel()
	var s seqSet
	r := rand.New(rand.NewPCG(3, 4))
	want := map[int64]bool{}
	for range 5000 {
		v := r.Int64N(20000) - 5
		added := s.add(v)
		wantAdded := v >= 1 && !want[v]
		if added != wantAdded {
			t.Fatalf("add(%d) = %v, want %v", v, added, wantAdded)
		}
		if v >= 1 {
			want[v] = true
		}
	}
	if s.len() != len(want) {
		t.Errorf("len = %d, want %d", s.len(), len(want))
	}
	for v := int64(-2); v < 20100; v++ {
		if s.has(v) != want[v] {
			t.Fatalf("has(%d) = %v, want %v", v, s.has(v), want[v])
		}
	}
	var nilSet *seqSet
	if nilSet.has(1) || nilSet.len() != 0 {
		t.Error("nil set is not empty")
	}
}

func msg(seq int64, client string, ours bool) storedMessage {
	text := "hello"
	if ours {
		text = makePayload(time.Unix(1, 0), uint64(seq), 60)
	}
	return storedMessage{Seq: seq, ClientID: client, Text: text}
}

func TestCheckChat(t *testing.T) {
	t.Parallel()
	acks := []ackRecord{{"c", 1, "a"}, {"c", 2, "b"}, {"c", 3, "x"}}
	tests := []struct {
		name    string
		acked   []ackRecord
		stored  []storedMessage
		lastSeq int64
		want    chatCheck
		ok      bool
	}{
		{"all good", acks, []storedMessage{msg(1, "a", true), msg(2, "b", true), msg(3, "x", true)}, 3,
			chatCheck{Acked: 3, Stored: 3, LastSeq: 3, MaxSeq: 3}, true},
		{"others' messages are fine", []ackRecord{{"c", 2, "a"}}, []storedMessage{msg(1, "z", false), msg(2, "a", true)}, 2,
			chatCheck{Acked: 1, Stored: 2, LastSeq: 2, MaxSeq: 2}, true},
		{"stored under another seq", acks[:1], []storedMessage{msg(1, "z", false), msg(2, "a", true)}, 2,
			chatCheck{Acked: 1, Stored: 2, LastSeq: 2, MaxSeq: 2, SeqMismatch: 1}, false},
		{"missing", acks, []storedMessage{msg(1, "a", true), msg(2, "b", true)}, 2,
			chatCheck{Acked: 3, Stored: 2, LastSeq: 2, MaxSeq: 2, Missing: 1}, false},
		{"duplicate", acks[:2], []storedMessage{msg(1, "a", true), msg(2, "b", true), msg(3, "b", true)}, 3,
			chatCheck{Acked: 2, Stored: 3, LastSeq: 3, MaxSeq: 3, Duplicates: 1}, false},
		{"gap", acks[:2], []storedMessage{msg(1, "a", true), msg(2, "b", true), msg(4, "y", false)}, 4,
			chatCheck{Acked: 2, Stored: 3, LastSeq: 4, MaxSeq: 4, SeqGaps: 1}, false},
		{"repeat and disorder", acks[:2], []storedMessage{msg(2, "b", true), msg(1, "a", true), msg(2, "q", false)}, 2,
			chatCheck{Acked: 2, Stored: 3, LastSeq: 2, MaxSeq: 2, SeqRepeats: 2}, false},
		{"unacked but stored is reported, not failed", acks[:1], []storedMessage{msg(1, "a", true), msg(2, "t", true)}, 2,
			chatCheck{Acked: 1, Stored: 2, LastSeq: 2, MaxSeq: 2, Unacked: 1}, true},
		{"last_seq beyond what is stored", acks[:1], []storedMessage{msg(1, "a", true)}, 5,
			chatCheck{Acked: 1, Stored: 1, LastSeq: 5, MaxSeq: 1}, false},
		{"a message landed after last_seq was read", acks[:1], []storedMessage{msg(1, "a", true), msg(2, "n", false)}, 1,
			chatCheck{Acked: 1, Stored: 2, LastSeq: 1, MaxSeq: 2}, true},
		{"the same ack twice counts once", []ackRecord{{"c", 1, "a"}, {"c", 1, "a"}}, []storedMessage{msg(1, "a", true)}, 1,
			chatCheck{Acked: 2, Stored: 1, LastSeq: 1, MaxSeq: 1}, true},
		{"empty", nil, nil, 0, chatCheck{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := checkChat(tt.acked, tt.stored, tt.lastSeq)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("checkChat mismatch (-want +got):\n%s", diff)
			}
			if got.ok() != tt.ok {
				t.Errorf("ok() = %v, want %v", got.ok(), tt.ok)
			}
		})
	}
}

func TestStorageCheckAdds(t *testing.T) {
	t.Parallel()
	var s storageCheck
	s.add("a", chatCheck{Acked: 2, Stored: 2, MaxSeq: 2, LastSeq: 2})
	if !s.OK {
		t.Fatalf("after a good chat: %+v", s)
	}
	s.add("b", chatCheck{Acked: 1, Missing: 1})
	s.fail("c", errTest)
	if s.OK || s.Failed != 2 || s.Chats != 3 || s.Missing != 1 || s.Acked != 3 || len(s.Failures) != 2 {
		t.Errorf("after failures: %+v", s)
	}
}

var errTest = errString("boom")

type errString string

func (e errString) Error() string { return string(e) }
