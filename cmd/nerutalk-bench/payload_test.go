package main

import (
	"strings"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	sent := time.Unix(1764099000, 123456789)
	for _, size := range []int{0, 48, 100, 1000} {
		p := makePayload(sent, 42, size)
		if len(p) < size {
			t.Errorf("size %d: payload of %d bytes", size, len(p))
		}
		gotT, gotNo, ok := parsePayload(p)
		if !ok || !gotT.Equal(sent) || gotNo != 42 {
			t.Errorf("size %d: parsePayload(%q) = %v, %d, %v; want %v, 42, true", size, p, gotT, gotNo, ok, sent)
		}
	}
}

func TestParsePayloadRejects(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"", "hello", "nb1 ", "nb1 123", "nb1 123 ", "nb1 x 1 pad", "nb1 123 y pad", "nb1 -5 1 pad", "nb1 0 1 pad",
		"NB1 123 1 pad", " nb1 123 1 pad", "nb1 99999999999999999999 1 pad",
	} {
		if _, _, ok := parsePayload(text); ok {
			t.Errorf("parsePayload(%q) accepted", text)
		}
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add(makePayload(time.Unix(0, 1), 1, 100))
	f.Add("nb1 1 1 ")
	f.Add("nb1 " + strings.Repeat("9", 30) + " 1 x")
	f.Fuzz(func(t *testing.T, text string) {
		sent, no, ok := parsePayload(text)
		if !ok {
			return
		}
		// Whatever parses must survive a round trip.
		again, no2, ok2 := parsePayload(makePayload(sent, no, len(text)))
		if !ok2 || !again.Equal(sent) || no2 != no {
			t.Fatalf("round trip of %q: %v %d %v, want %v %d", text, again, no2, ok2, sent, no)
		}
	})
}
