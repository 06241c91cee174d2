package chat

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// onlineHub stands in for the realtime hub with every user online on one connection: like the hub
// it encodes each event once and queues the same bytes on each recipient's connection without
// blocking; a goroutine per connection drains its queue and timestamps every message_new.
type onlineHub struct {
	localSignals
	conns map[string]chan []byte
	lat   *latencies
	count atomic.Int64 // message_new frames delivered (the sender's own copy included)
	wg    sync.WaitGroup
}

func newOnlineHub(users []string, lat *latencies) *onlineHub {
	h := &onlineHub{conns: map[string]chan []byte{}, lat: lat}
	for _, u := range users {
		ch := make(chan []byte, 4096)
		h.conns[u] = ch
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			var mine []time.Duration // merged at the end: no lock per delivery
			for frame := range ch {
				// A light client: it finds the send time that the benchmark put in text.
				if !bytes.HasPrefix(frame, []byte(`{"type":"message_new"`)) {
					continue
				}
				h.count.Add(1)
				if i := bytes.Index(frame, []byte(`"text":"`)); i >= 0 {
					rest := frame[i+8:]
					if j := bytes.IndexByte(rest, '"'); j > 0 {
						if start, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
							mine = append(mine, time.Since(time.Unix(0, start)))
						}
					}
				}
			}
			h.lat.mu.Lock()
			h.lat.d = append(h.lat.d, mine...)
			h.lat.mu.Unlock()
		}()
	}
	return h
}

func (h *onlineHub) PublishUsers(_ context.Context, users []string, typ string, data any) {
	frame, err := json.Marshal(struct {
		Type string `json:"type"`
		Data any    `json:"data"`
	}{typ, data})
	if err != nil {
		panic(err)
	}
	for _, u := range users {
		select {
		case h.conns[u] <- frame:
		default:
			panic("connection queue overflow: the hub would drop this client as too slow")
		}
	}
}

func (h *onlineHub) PublishTopic(context.Context, string, string, any, string) {}
func (h *onlineHub) LeaveTopicUser(context.Context, string, string)            {}

func (h *onlineHub) close() {
	for _, ch := range h.conns {
		close(ch)
	}
	h.wg.Wait()
}

var (
	benchSenders   = flag.Int("chat.senders", 200, "BenchmarkSendGroups: concurrent senders, each waiting for its ack")
	benchClientIDs = flag.String("chat.client-ids", "v4", "BenchmarkSendGroups: client_id of each message: v4 (random UUIDs, as most apps send) or seq (sender-ordered)")
	benchSendHook  = flag.Bool("chat.send-hook", false, "BenchmarkSendGroups: register a SendHook that does nothing (what reading the members for the hooks costs)")
)

// nopHook is a SendHook that does nothing.
type nopHook struct{}

func (nopHook) MessagesStored(context.Context, *sql.Tx, []StoredMessage) error { return nil }

// latencies collects durations for percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	slices.Sort(l.d)
	return l.d[min(len(l.d)-1, int(float64(len(l.d))*p))]
}

// BenchmarkSendGroups measures acked messages per second through Service.Send into 10-member
// groups whose members are all online, with many concurrent senders (each waits for its ack
// before sending again), and the latency from send to ack and from send to delivery.
//
//	go test -run '^$' -bench BenchmarkSendGroups -benchtime 20000x ./internal/chat/ [-args -chat.senders 200 -chat.send-hook]
//
// NERUTALK_TEST_POSTGRES_URL set runs the PostgreSQL half too. CHAT_BENCH_PRAGMA, when set, is
// run on the SQLite write connection first (e.g. "PRAGMA cache_size=-65536"), to try settings.
func BenchmarkSendGroups(b *testing.B) {
	const groups, size = 100, 10
	senders := *benchSenders
	if *benchClientIDs != "v4" && *benchClientIDs != "seq" {
		b.Fatalf("-chat.client-ids must be v4 or seq, not %q", *benchClientIDs)
	}
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			if os.Getenv("CHAT_BENCH_PRAGMA") != "" && d == store.SQLite {
				if _, err := db.W.Exec(os.Getenv("CHAT_BENCH_PRAGMA")); err != nil {
					b.Fatal(err)
				}
			}
			var users []string
			for g := range groups {
				users = append(users, addUsers(b, db, fmtNames(g, size)...)...)
			}
			deliver, ack := &latencies{}, &latencies{}
			hub := newOnlineHub(users, deliver)
			o := Options{MaxGroupMembers: 1000, MaxTextChars: 4096, Accounts: accounts{}}
			if *benchSendHook {
				o.SendHooks = []SendHook{nopHook{}}
			}
			s := New(db, hub, o)
			chats := make([]string, groups)
			for g := range groups {
				m := users[g*size : (g+1)*size]
				v, _, err := s.Create(context.Background(), m[0], CreateInput{Type: Group, MemberIDs: m[1:]})
				if err != nil {
					b.Fatal(err)
				}
				chats[g] = v.ID
			}
			var next atomic.Int64
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						g := (w + int(i)) % groups
						sender := users[g*size+int(i)%size]
						clientID := fmt.Sprintf("%d-%d", w, i)
						if *benchClientIDs == "v4" {
							clientID = uuid.NewString()
						}
						t0 := time.Now()
						_, _, err := s.Send(context.Background(), sender, chats[g], SendInput{
							ClientID: clientID, Text: strconv.FormatInt(t0.UnixNano(), 10)})
						if err != nil {
							b.Error(err)
							return
						}
						ack.add(time.Since(t0))
					}
				}()
			}
			wg.Wait()
			acked := time.Since(start)
			if err := s.Close(context.Background()); err != nil { // publishes what is queued
				b.Fatal(err)
			}
			hub.close()
			all := time.Since(start)
			cpu := cpuTime() - cpu0
			b.StopTimer()
			if want := int64(b.N) * size; hub.count.Load() != want {
				b.Fatalf("%d frames delivered, want %d", hub.count.Load(), want)
			}
			others := int64(b.N) * (size - 1) // deliveries to the members other than the sender
			b.ReportMetric(float64(b.N)/acked.Seconds(), "acked_msgs/s")
			b.ReportMetric(float64(others)/all.Seconds(), "deliveries/s")
			b.ReportMetric(float64(ack.percentile(0.50).Microseconds())/1000, "ack_p50_ms")
			b.ReportMetric(float64(ack.percentile(0.99).Microseconds())/1000, "ack_p99_ms")
			b.ReportMetric(float64(deliver.percentile(0.50).Microseconds())/1000, "delivery_p50_ms")
			b.ReportMetric(float64(deliver.percentile(0.99).Microseconds())/1000, "delivery_p99_ms")
			// CPU of the whole process (service, database driver, SQLite, the simulated clients)
			// per message: on a machine shared with other work it tells more than the rates.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu_µs/msg")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fmtNames(g, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("g%du%d", g, i)
	}
	return out
}
