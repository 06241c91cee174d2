package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// parseList reads a comma-separated list of positive numbers, each optionally suffixed with k
// (thousands), such as "1k,5k,10k" or "500,2500". The result is in the order given.
func parseList(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := 1.0
		if rest, ok := strings.CutSuffix(strings.ToLower(f), "k"); ok {
			f, mult = rest, 1000
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		if v*mult <= 0 {
			return nil, fmt.Errorf("%q must be positive", f)
		}
		out = append(out, v*mult)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

// parseIntList is parseList for whole counts.
func parseIntList(s string) ([]int, error) {
	fl, err := parseList(s)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(fl))
	for i, v := range fl {
		if v != math.Trunc(v) || v > math.MaxInt32 {
			return nil, fmt.Errorf("%v is not a whole count", v)
		}
		out[i] = int(v)
	}
	return out, nil
}

// schedule spaces one sender's messages: the i-th is due at start + offset + i·interval. A
// sender that falls behind sends at once (open loop: the rate does not bend to the server's
// latency), so a saturated server shows up as a growing backlog rather than as a slower sender.
type schedule struct {
	start    time.Time
	interval time.Duration
	end      time.Time
	i        int64
}

// newSchedule splits a total rate over senders: sender k of n gets rate/n, phase-shifted by
// k/n of an interval so the senders do not fire together.
func newSchedule(start, end time.Time, total float64, k, n int) *schedule {
	per := total / float64(n)
	interval := time.Duration(float64(time.Second) / per)
	offset := time.Duration(int64(interval) * int64(k) / int64(n))
	return &schedule{start: start.Add(offset), interval: interval, end: end}
}

// next returns when the next message is due, and false once that is past the end.
func (s *schedule) next() (time.Time, bool) {
	at := s.start.Add(time.Duration(s.i) * s.interval)
	if !at.Before(s.end) {
		return time.Time{}, false
	}
	s.i++
	return at, true
}

// verdict tells whether a step kept up with its target rate.
type verdict struct {
	Saturated bool   `json:"saturated"`
	Why       string `json:"why,omitempty"`
}

// judge applies the saturation rule: the step is saturated when the rate achieved is below 95 %
// of the target, when the generator had to skip sends because too many were unacknowledged,
// when the server answered with errors or when latency (p99 of the acks) exceeded slo.
func judge(target, achieved float64, skipped, errs uint64, p99, slo time.Duration) verdict {
	var why []string
	if achieved < 0.95*target {
		why = append(why, fmt.Sprintf("achieved %.0f/s of %.0f/s", achieved, target))
	}
	if skipped > 0 {
		why = append(why, fmt.Sprintf("%d sends skipped (too many unacknowledged)", skipped))
	}
	if errs > 0 {
		why = append(why, fmt.Sprintf("%d errors", errs))
	}
	if slo > 0 && p99 > slo {
		why = append(why, fmt.Sprintf("p99 %v above %v", p99.Round(time.Millisecond), slo))
	}
	return verdict{Saturated: len(why) > 0, Why: strings.Join(why, "; ")}
}
