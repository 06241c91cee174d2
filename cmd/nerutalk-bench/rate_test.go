package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []float64
		ok   bool
	}{
		{"1k,5k,10K", []float64{1000, 5000, 10000}, true},
		{" 2.5k , 500 ,", []float64{2500, 500}, true},
		{"", nil, false},
		{"1,-2", nil, false},
		{"0", nil, false},
		{"abc", nil, false},
		{"NaN", nil, false},
		{"infk", nil, false},
	}
	for _, tt := range tests {
		got, err := parseList(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("parseList(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parseList(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
	if _, err := parseIntList("1.5"); err == nil {
		t.Error("parseIntList(1.5) accepted")
	}
	if got, err := parseIntList("1k,20k"); err != nil || !cmp.Equal(got, []int{1000, 20000}) {
		t.Errorf("parseIntList(1k,20k) = %v, %v", got, err)
	}
}

func TestScheduleSplitsTheRate(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	end := start.Add(10 * time.Second)
	const senders = 7
	total := 0
	var firsts []time.Time
	for k := range senders {
		s := newSchedule(start, end, 700, k, senders)
		first := true
		for {
			at, ok := s.next()
			if !ok {
				break
			}
			if at.Before(start) || !at.Before(end) {
				t.Fatalf("sender %d: %v outside [%v, %v)", k, at, start, end)
			}
			if first {
				firsts = append(firsts, at)
				first = false
			}
			total++
		}
	}
	if total < 6990 || total > 7000 {
		t.Errorf("%d sends in 10 s at 700/s, want about 7000", total)
	}
	for i := 1; i < len(firsts); i++ {
		if !firsts[i].After(firsts[i-1]) {
			t.Errorf("senders %d and %d start together: not phase-shifted", i-1, i)
		}
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		target, achieved float64
		skipped, errs    uint64
		p99, slo         time.Duration
		wantSaturated    bool
	}{
		{"kept up", 1000, 990, 0, 0, 10 * time.Millisecond, time.Second, false},
		{"too slow", 1000, 900, 0, 0, 10 * time.Millisecond, time.Second, true},
		{"skipped", 1000, 1000, 3, 0, 10 * time.Millisecond, time.Second, true},
		{"errors", 1000, 1000, 0, 1, 10 * time.Millisecond, time.Second, true},
		{"latency", 1000, 1000, 0, 0, 2 * time.Second, time.Second, true},
		{"no slo", 1000, 1000, 0, 0, time.Hour, 0, false},
	}
	for _, tt := range tests {
		v := judge(tt.target, tt.achieved, tt.skipped, tt.errs, tt.p99, tt.slo)
		if v.Saturated != tt.wantSaturated || (v.Saturated && v.Why == "") {
			t.Errorf("%s: judge = %+v, want saturated=%v with a reason", tt.name, v, tt.wantSaturated)
		}
	}
}

func TestBestStep(t *testing.T) {
	t.Parallel()
	mk := func(rate, acked, p99 float64, sat bool, missing uint64) stepResult {
		return stepResult{TargetRate: rate, AckedPerS: spread{Median: acked}, E2EP99MS: spread{Median: p99},
			Missing: missing, verdict: verdict{Saturated: sat}}
	}
	steps := []stepResult{mk(1000, 1000, 5, false, 0), mk(2000, 2000, 20, false, 0), mk(3000, 3000, 80, false, 0),
		mk(4000, 3900, 10, false, 1), mk(5000, 4000, 10, true, 0)}
	if got := bestStep(steps, 50*time.Millisecond); got == nil || got.TargetRate != 2000 {
		t.Errorf("bestStep = %+v, want the 2000 step", got)
	}
	if got := bestStep(steps[4:], 50*time.Millisecond); got != nil {
		t.Errorf("bestStep of saturated steps = %+v, want nil", got)
	}
}
