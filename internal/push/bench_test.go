package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/push/provider"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// fcmLikeSender does what a client does before the network: it builds the FCM v1 request body
// (JSON) for every message, and counts.
type fcmLikeSender struct{ n atomic.Int64 }

func (f *fcmLikeSender) Send(_ context.Context, t provider.Target, m provider.Message) error {
	body := map[string]any{"message": map[string]any{
		"token": t.Token, "notification": map[string]string{"title": m.Title, "body": m.Body}, "data": m.Data,
		"android": map[string]any{"priority": string(m.Priority), "collapse_key": m.CollapseKey},
	}}
	if _, err := json.Marshal(body); err != nil {
		return err
	}
	f.n.Add(1)
	return nil
}

// benchBatch is PUSH_BENCH_BATCH (rows claimed at once), 0 = the default.
func benchBatch() int {
	n, _ := strconv.Atoi(os.Getenv("PUSH_BENCH_BATCH"))
	return n
}

// seedDevices creates n users with one Android device each, in bulk.
func seedDevices(b *testing.B, db *store.DB, n int) {
	b.Helper()
	ctx := context.Background()
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < n; start += 50 {
			end := min(start+50, n)
			var users, devices strings.Builder
			var ua, da []any
			for i := start; i < end; i++ {
				if i > start {
					users.WriteString(", ")
					devices.WriteString(", ")
				}
				id, did := newID(), newID()
				name := fmt.Sprintf("bench%06d", i)
				p := len(ua)
				fmt.Fprintf(&users, "($%d, $%d, $%d, $%d, 'x', $%d, $%d, 1, 1)", p+1, p+2, p+3, p+4, p+2, p+2)
				ua = append(ua, id, name, name+"@example.com", "Bench "+name)
				q := len(da)
				fmt.Fprintf(&devices, "($%d, $%d, 's', 'android', 'fcm', $%d, 'en', 1, 1)", q+1, q+2, q+3)
				da = append(da, did, id, "fcm-token-"+name)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, email, display_name, password_hash, username_key, display_key, created_at, updated_at) VALUES `+users.String(), ua...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO push_devices (id, user_id, session_id, platform, provider, token, locale, created_at, updated_at) VALUES `+devices.String(), da...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBroadcast measures a broadcast to 10,000 devices: POST /notifications/broadcast's
// work (one notification per user, in one transaction) and then the outbox draining through
// workers (expansion into deliveries, rendering, the FCM-like sender, the outcomes) until every
// device got its push. pushes/s counts deliveries handed to the sender over the whole run;
// peak-heap-MiB is the largest heap in use seen while it ran.
func BenchmarkBroadcast(b *testing.B) {
	const devices = 10_000
	for _, d := range storetest.Dialects {
		for _, workers := range []int{1, 2} {
			if d == store.SQLite && workers > 1 {
				continue // one writer: a second worker only queues behind the first
			}
			b.Run(fmt.Sprintf("%s/workers=%d", d, workers), func(b *testing.B) {
				db := storetest.Open(b, d)
				seedDevices(b, db, devices)
				sender := &fcmLikeSender{}
				svcs := make([]*Service, workers)
				for i := range svcs {
					svcs[i] = New(db, Options{Sender: sender, Accounts: accounts{}, AdminLimiter: ratelimit.Noop{}, Batch: benchBatch()})
				}
				ctx := context.Background()
				var peak atomic.Uint64
				stop := make(chan struct{})
				var sampler sync.WaitGroup
				sampler.Add(1)
				go func() {
					defer sampler.Done()
					t := time.NewTicker(10 * time.Millisecond)
					defer t.Stop()
					var ms runtime.MemStats
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							runtime.ReadMemStats(&ms)
							if ms.HeapInuse > peak.Load() {
								peak.Store(ms.HeapInuse)
							}
						}
					}
				}()
				runtime.GC()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					before := sender.n.Load()
					q, err := svcs[0].Broadcast(ctx, "admin", AdminBroadcastInput{Title: "Maintenance", Body: "Tonight at 22:00"})
					if err != nil || q.Queued != devices {
						b.Fatalf("broadcast: %+v %v", q, err)
					}
					var wg sync.WaitGroup
					for _, s := range svcs {
						wg.Add(1)
						go func(s *Service) {
							defer wg.Done()
							for idle := 0; idle < 2; {
								n, err := s.RunOnce(ctx)
								if err != nil {
									b.Error(err)
									return
								}
								if n == 0 {
									idle++
								} else {
									idle = 0
								}
							}
						}(s)
					}
					wg.Wait()
					if got := sender.n.Load() - before; got != devices {
						b.Fatalf("sent %d, want %d", got, devices)
					}
				}
				elapsed := time.Since(start)
				b.StopTimer()
				close(stop)
				sampler.Wait()
				b.ReportMetric(float64(sender.n.Load())/elapsed.Seconds(), "pushes/s")
				b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
			})
		}
	}
}

// busSignals is an in-process bus for signals: every registered handler (one per node) runs.
type busSignals struct {
	mu       sync.Mutex
	handlers []func(context.Context, []byte)
}

func (b *busSignals) OnSignal(_ string, fn func(context.Context, []byte)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handlers = append(b.handlers, fn)
}

func (b *busSignals) PublishSignal(ctx context.Context, _ string, payload []byte) {
	b.mu.Lock()
	hs := append([]func(context.Context, []byte){}, b.handlers...)
	b.mu.Unlock()
	for _, h := range hs {
		h(ctx, payload)
	}
}

// notifySender signals every send.
type notifySender struct{ sent chan struct{} }

func (n notifySender) Send(context.Context, provider.Target, provider.Message) error {
	n.sent <- struct{}{}
	return nil
}

// BenchmarkWakeLatency measures the time from an admin send on one node to the push reaching the
// sender through another node's worker, whose poll interval is 1 s: the wake signal over the bus
// (push.wake) is what makes it prompt. ms/push is that latency.
func BenchmarkWakeLatency(b *testing.B) {
	for _, bc := range []struct {
		d    store.Dialect
		wake bool
	}{{store.SQLite, true}, {store.Postgres, true}, {store.SQLite, false}} {
		name := string(bc.d) + "/wake"
		if !bc.wake {
			name = string(bc.d) + "/poll-only"
		}
		b.Run(name, func(b *testing.B) {
			db := storetest.Open(b, bc.d)
			seedDevices(b, db, 1)
			var user string
			if err := db.R.QueryRow(`SELECT user_id FROM push_devices`).Scan(&user); err != nil {
				b.Fatal(err)
			}
			var bus Signals = &busSignals{}
			if !bc.wake {
				bus = nil // the worker finds the rows at its next poll
			}
			sender := notifySender{sent: make(chan struct{}, 1)}
			front := New(db, Options{Sender: sender, Accounts: accounts{}, Signals: bus, AdminLimiter: ratelimit.Noop{}, PollInterval: time.Second})
			worker := New(db, Options{Sender: sender, Accounts: accounts{}, Signals: bus, PollInterval: time.Second})
			stop := worker.Start()
			defer stop(context.Background())
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := front.Send(ctx, "admin", AdminSendInput{UserIDs: []string{user}, Title: "ping"}); err != nil {
					b.Fatal(err)
				}
				<-sender.sent
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/push")
		})
	}
}
