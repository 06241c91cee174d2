package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram keeps durations in microseconds in log-linear buckets: values below 128 µs
// exactly, above that with 64 buckets per power of two, so any percentile it reports is within
// 1/64 (1.6 %) of the true sample. The counters are atomic: many connection goroutines record
// into one histogram without a lock.
const (
	histSubBits    = 6                // 64 sub-buckets per power of two
	histSub        = 1 << histSubBits // 64
	histLinear     = 2 * histSub      // values below 128 are exact
	histMaxExp     = 40               // up to 2^46 µs (over two years)
	histBucketsLen = histLinear + histMaxExp*histSub
)

// histogram is a concurrent latency histogram. The zero value is ready to use.
type histogram struct {
	counts [histBucketsLen]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // µs
	max    atomic.Uint64 // µs
	min    atomic.Uint64 // µs + 1 (0 = no sample yet)
}

func bucketOf(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	e := bits.Len64(us) - (histSubBits + 1) // ≥ 1
	if e > histMaxExp {
		return histBucketsLen - 1
	}
	m := us >> uint(e) // in [64, 127]
	return histLinear + (e-1)*histSub + int(m-histSub)
}

// bucketRange returns the smallest and largest value that fall in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < histLinear {
		return uint64(i), uint64(i)
	}
	e := uint((i-histLinear)/histSub + 1)
	m := uint64((i-histLinear)%histSub + histSub)
	return m << e, (m+1)<<e - 1
}

// Record adds one duration; negative durations (clock noise) count as zero.
func (h *histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		cur := h.max.Load()
		if us <= cur || h.max.CompareAndSwap(cur, us) {
			break
		}
	}
	for {
		cur := h.min.Load()
		if (cur != 0 && us+1 >= cur) || h.min.CompareAndSwap(cur, us+1) {
			break
		}
	}
}

// Count is the number of samples.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Max is the largest sample.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Min is the smallest sample (0 when empty).
func (h *histogram) Min() time.Duration {
	v := h.min.Load()
	if v == 0 {
		return 0
	}
	return time.Duration(v-1) * time.Microsecond
}

// Mean is the average sample.
func (h *histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load()/n) * time.Microsecond
}

// Quantile returns the q-quantile (0 < q ≤ 1) by the nearest-rank method: the value below which
// ceil(q·n) samples lie, reported as the middle of its bucket and clamped to [Min, Max]. It is
// 0 for an empty histogram.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			v = max(v, uint64(h.Min()/time.Microsecond))
			v = min(v, h.max.Load())
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

// Merge adds every sample of o to h (o must not be recorded into concurrently).
func (h *histogram) Merge(o *histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
	if m := o.min.Load(); m != 0 && (h.min.Load() == 0 || m < h.min.Load()) {
		h.min.Store(m)
	}
}

// latencySummary is how a histogram appears in results, in milliseconds.
type latencySummary struct {
	Count  uint64  `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }

func (h *histogram) Summary() latencySummary {
	return latencySummary{
		Count: h.Count(), MeanMS: ms(h.Mean()),
		P50MS: ms(h.Quantile(.5)), P90MS: ms(h.Quantile(.9)), P99MS: ms(h.Quantile(.99)),
		P999MS: ms(h.Quantile(.999)), MaxMS: ms(h.Max()),
	}
}
