package chat

import (
	"testing"
	"time"
)

// TestArrivalRate: the writer paces (waits for company) only at rates where its interval
// gathers paceGain ops or more, is not fooled by small bursts, and follows a change of load
// within a few tens of milliseconds.
func TestArrivalRate(t *testing.T) {
	t.Parallel()
	const every = 5 * time.Millisecond
	type load struct {
		batches int           // this many batches
		ops     int           // of ops each
		gap     time.Duration // one every gap
	}
	cases := []struct {
		name  string
		loads []load
		pace  bool
	}{
		{"nothing seen yet", nil, false},
		{"a first message", []load{{1, 1, 0}}, false},
		{"a bystander's 20/s", []load{{40, 1, 50 * time.Millisecond}}, false},
		{"a trickle: 250/s", []load{{200, 1, 4 * time.Millisecond}}, false},
		{"250/s in bursts of 4 committed back to back", []load{{200, 4, 16 * time.Millisecond}}, false},
		{"500/s committed one by one", []load{{200, 1, 2 * time.Millisecond}}, true},
		{"2,500/s in 5 ms batches", []load{{100, 12, 5 * time.Millisecond}}, true},
		{"2,500/s arriving after a trickle, within 20 ms",
			[]load{{100, 1, 10 * time.Millisecond}, {4, 12, 5 * time.Millisecond}}, true},
		{"a trickle after 2,500/s, within 300 ms",
			[]load{{100, 12, 5 * time.Millisecond}, {15, 1, 20 * time.Millisecond}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var r arrivalRate
			now := time.Unix(1_700_000_000, 0)
			for _, l := range c.loads {
				for range l.batches {
					now = now.Add(l.gap)
					r.observe(l.ops, now)
				}
			}
			if got := r.expected(every) >= paceGain; got != c.pace {
				t.Fatalf("paces %v expecting %.2f ops in %v, want %v", got, r.expected(every), every, c.pace)
			}
		})
	}
}

// TestArrivalRateClockStep: a clock that steps back neither panics nor inflates the estimate.
func TestArrivalRateClockStep(t *testing.T) {
	t.Parallel()
	var r arrivalRate
	now := time.Unix(1_700_000_000, 0)
	r.observe(1, now)
	r.observe(1, now.Add(-time.Hour))
	if e := r.expected(5 * time.Millisecond); e >= paceGain {
		t.Fatalf("expects %.2f ops after a clock step", e)
	}
}
