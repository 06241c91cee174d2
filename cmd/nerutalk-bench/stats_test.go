package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSpreadOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []float64
		want spread
	}{
		{"empty", nil, spread{Runs: []float64{}}},
		{"one", []float64{5}, spread{Median: 5, Min: 5, Max: 5, Runs: []float64{5}}},
		{"odd keeps run order", []float64{30, 10, 20}, spread{Median: 20, Min: 10, Max: 30, RelPct: 100, Runs: []float64{30, 10, 20}}},
		{"even averages the middle", []float64{4, 1, 3, 2}, spread{Median: 2.5, Min: 1, Max: 4, RelPct: 120, Runs: []float64{4, 1, 3, 2}}},
		{"zero median", []float64{0, 0, 1}, spread{Median: 0, Min: 0, Max: 1, Runs: []float64{0, 0, 1}}},
		{"rounds", []float64{1.23456}, spread{Median: 1.235, Min: 1.235, Max: 1.235, Runs: []float64{1.235}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, spreadOf(tt.in)); diff != "" {
				t.Errorf("spreadOf(%v) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestPerSecond(t *testing.T) {
	t.Parallel()
	if got := perSecond(300, 30); got != 10 {
		t.Errorf("perSecond(300, 30) = %v, want 10", got)
	}
	if got := perSecond(5, 0); got != 0 {
		t.Errorf("perSecond(5, 0) = %v, want 0", got)
	}
}
