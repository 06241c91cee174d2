package main

import (
	"math"
	"slices"
)

// spread summarises one figure over repeated runs: the median (what the summary quotes), the
// smallest and largest value, and every run's value in order.
type spread struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	RelPct float64   `json:"spread_pct"` // (max-min)/median in percent; 0 when the median is 0
	Runs   []float64 `json:"runs"`
}

// spreadOf computes the median and spread of values (the median of an even count is the mean
// of the two middle values).
func spreadOf(values []float64) spread {
	if len(values) == 0 {
		return spread{Runs: []float64{}}
	}
	s := slices.Clone(values)
	slices.Sort(s)
	var med float64
	if n := len(s); n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	sp := spread{Median: round3(med), Min: round3(s[0]), Max: round3(s[len(s)-1]), Runs: make([]float64, len(values))}
	for i, v := range values {
		sp.Runs[i] = round3(v)
	}
	if med != 0 {
		sp.RelPct = round3((s[len(s)-1] - s[0]) / math.Abs(med) * 100)
	}
	return sp
}

// spreadBy collects one figure from each run.
func spreadBy[T any](runs []T, f func(T) float64) spread {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	return spreadOf(v)
}

func round3(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1000) / 1000
}

// perSecond is n events over seconds, 0 when the window is empty.
func perSecond(n uint64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return round3(float64(n) / seconds)
}
