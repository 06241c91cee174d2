package main

import (
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the bystander pair's process, as the tool's binary does.
func TestMain(m *testing.M) {
	if isPairChild() {
		if err := pairChildMain(os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestPairEventLines(t *testing.T) {
	t.Parallel()
	sent := time.Unix(0, 1764900000123456789)
	recv := sent.Add(1500 * time.Microsecond)
	tests := []struct {
		kind byte
		recv time.Time
	}{{pairSent, time.Time{}}, {pairAcked, recv}, {pairDelivered, recv}}
	for _, tc := range tests {
		line := pairEventLine(tc.kind, sent, tc.recv)
		k, s, r, ok := parsePairEvent(line)
		if !ok || k != tc.kind || !s.Equal(sent) || !r.Equal(tc.recv) {
			t.Fatalf("%q: got %c %v %v %v", line, k, s, r, ok)
		}
	}
	for _, bad := range []string{"", "ready", "a 1", "a x 2", "ab 1 2", "a 1 2 3"} {
		if _, _, _, ok := parsePairEvent(bad); ok {
			t.Fatalf("%q parsed", bad)
		}
	}
}
