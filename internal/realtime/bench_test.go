package realtime

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/config"
)

// BenchmarkPublishUsers fans one event out to 1,000 users with one real WebSocket connection
// each (loopback, reading clients in this process).
//
//   - delivered: one op is a PublishUsers call and the wait until all 1,000 clients have read
//     the frame (end-to-end fan-out latency; frames/s is the delivery rate).
//   - call: one op is the PublishUsers call alone (encode once, enqueue 1,000 times); delivery is
//     awaited with the timer stopped.
func BenchmarkPublishUsers(b *testing.B) {
	const fanout = 1000
	e := newEnv(b, func(c *config.Config) { c.WSSendQueue = 1 << 16 }, nil)
	users := make([]string, fanout)
	var received atomic.Int64
	round := make(chan struct{}, 1)
	for i := range users {
		users[i] = fmt.Sprintf("user-%04d", i)
		c := e.dial(b, users[i])
		go func() {
			for {
				if _, _, err := c.ws.Read(context.Background()); err != nil {
					return
				}
				if received.Add(1)%fanout == 0 {
					select {
					case round <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	waitFor(b, "connections", func() bool { return e.hub.connCount(users[fanout-1]) == 1 })
	payload := map[string]any{
		"id": "0190f3a2-7c1e-7b5e-9f0a-3c2d1e0f4a5b", "chat_id": "0190f3a2-7c1e-7b5e-9f0a-000000000001",
		"seq": 12345, "sender_id": "0190f3a2-7c1e-7b5e-9f0a-000000000002", "kind": "text",
		"text": strings.Repeat("hello ", 20), "created_at": time.Now().UTC(),
	}
	ctx := context.Background()
	wait := func(target int64) {
		for received.Load() < target {
			select {
			case <-round:
			case <-time.After(10 * time.Second):
				b.Fatalf("delivered %d of %d frames", received.Load(), target)
			}
		}
	}

	b.Run("delivered", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			base := received.Load()
			e.hub.PublishUsers(ctx, users, "message_new", payload)
			wait(base + fanout)
		}
		b.ReportMetric(float64(b.N*fanout)/time.Since(start).Seconds(), "frames/s")
	})
	b.Run("call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			base := received.Load()
			e.hub.PublishUsers(ctx, users, "message_new", payload)
			b.StopTimer()
			wait(base + fanout)
			b.StartTimer()
		}
	})
	if n := metricValue(e.hub.metrics.slow); n != 0 {
		b.Fatalf("%v slow-consumer disconnects during the benchmark", n)
	}
}
