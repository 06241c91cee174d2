package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsCoverValues(t *testing.T) {
	t.Parallel()
	prev := -1
	for _, us := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 65535, 1 << 20, 1<<40 + 12345} {
		i := bucketOf(us)
		lo, hi := bucketRange(i)
		if us < lo || us > hi {
			t.Errorf("bucketOf(%d) = %d with range [%d, %d]: value outside", us, i, lo, hi)
		}
		if i < prev {
			t.Errorf("bucketOf(%d) = %d, below the previous value's bucket %d", us, i, prev)
		}
		prev = i
		if us >= histLinear && float64(hi-lo)/float64(lo) > 1.0/64 {
			t.Errorf("bucket %d [%d, %d] wider than 1/64", i, lo, hi)
		}
	}
	// Consecutive buckets tile the line without holes.
	for i := 1; i < histBucketsLen; i++ {
		_, hiPrev := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != hiPrev+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, hiPrev)
		}
	}
}

func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestQuantilesWithinError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 0-100ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(100 * time.Millisecond))) }},
		{"exponential mean 2ms", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(2*time.Millisecond)) }},
		{"bimodal", func(r *rand.Rand) time.Duration {
			if r.IntN(100) == 0 {
				return 400*time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond)))
			}
			return time.Duration(r.Int64N(int64(time.Millisecond)))
		}},
		{"sub-128µs exact", func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(128)) * time.Microsecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(1, 2))
			var h histogram
			var all []time.Duration
			for range 20000 {
				d := tt.gen(r).Truncate(time.Microsecond)
				h.Record(d)
				all = append(all, d)
			}
			slices.Sort(all)
			for _, q := range []float64{.5, .9, .99, .999, 1} {
				got, want := h.Quantile(q), exactQuantile(all, q)
				tol := float64(want)/64 + float64(time.Microsecond)
				if math.Abs(float64(got-want)) > tol {
					t.Errorf("Quantile(%v) = %v, want %v ± %v", q, got, want, time.Duration(tol))
				}
			}
			if got, want := h.Max(), all[len(all)-1]; got != want {
				t.Errorf("Max() = %v, want %v", got, want)
			}
			if got, want := h.Min(), all[0]; got != want {
				t.Errorf("Min() = %v, want %v", got, want)
			}
			if got := h.Count(); got != uint64(len(all)) {
				t.Errorf("Count() = %d, want %d", got, len(all))
			}
		})
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	t.Parallel()
	var h histogram
	if got := h.Quantile(.99); got != 0 {
		t.Errorf("empty Quantile = %v, want 0", got)
	}
	if got := h.Summary(); got != (latencySummary{}) {
		t.Errorf("empty Summary = %+v, want zero", got)
	}
	h.Record(-time.Second)
	if got := h.Max(); got != 0 {
		t.Errorf("negative sample recorded as %v, want 0", got)
	}
}

func TestHistogramConcurrentAndMerge(t *testing.T) {
	t.Parallel()
	var a, b histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				a.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if got := a.Count(); got != 8000 {
		t.Fatalf("Count = %d, want 8000", got)
	}
	if got, want := a.Max(), 7999*time.Microsecond; got != want {
		t.Errorf("Max = %v, want %v", got, want)
	}
	b.Record(time.Hour)
	b.Merge(&a)
	if got := b.Count(); got != 8001 {
		t.Errorf("merged Count = %d, want 8001", got)
	}
	if got := b.Max(); got != time.Hour {
		t.Errorf("merged Max = %v, want 1h", got)
	}
	if got := b.Min(); got != 0 {
		t.Errorf("merged Min = %v, want 0", got)
	}
}
