package ratelimit

import (
	"context"
	"testing"
	"time"
)

// peekSteps drives a Counter: Peek never records, and reports what Allow recorded.
func peekSteps(t *testing.T, c Counter, advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	want := func(step string, n int, retry bool) {
		t.Helper()
		got, r, err := c.Peek(ctx, "k")
		if err != nil || got != n || (r > 0) != retry {
			t.Fatalf("%s: Peek = %d, %v, %v; want %d, retry %v", step, got, r, err, n, retry)
		}
	}
	want("fresh", 0, false)
	for range 5 {
		want("peeking again", 0, false) // Peek records nothing
	}
	for i := range 3 {
		if ok, _, err := c.Allow(ctx, "k"); !ok || err != nil {
			t.Fatalf("Allow %d: %v %v", i, ok, err)
		}
		want("after Allow", i+1, i+1 == 3)
	}
	if ok, _, _ := c.Allow(ctx, "k"); ok {
		t.Fatal("Allow over the burst")
	}
	if advance != nil {
		advance(20 * time.Second) // one event is forgiven every 20 s
		want("after one interval", 2, false)
		advance(40 * time.Second)
		want("after the window", 0, false)
	}
	if n, _, _ := c.Peek(ctx, "other"); n != 0 {
		t.Fatalf("other key holds %d", n)
	}
}

func TestMemoryPeek(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := NewMemory(Rate{Events: 3, Per: time.Minute}, WithClock(clk.Now))
	peekSteps(t, m, clk.Advance)
	if m.Len() != 1 {
		t.Fatalf("Peek remembered keys: %d, want only the one Allow recorded", m.Len())
	}
}

func TestRedisPeek(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	peekSteps(t, NewRedis(rdb, prefix, Rate{Events: 3, Per: time.Hour}), nil) // the server's clock: no advancing
}

func TestNoopPeek(t *testing.T) {
	t.Parallel()
	if n, r, err := (Noop{}).Peek(context.Background(), "k"); n != 0 || r != 0 || err != nil {
		t.Fatalf("Noop.Peek = %d %v %v", n, r, err)
	}
}
