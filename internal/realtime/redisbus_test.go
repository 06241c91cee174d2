package realtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func TestBusEntryRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range []busEntry{
		{Node: "n1", Seq: 1, Msg: Message{Kind: KindUsers, Users: []string{"a", "bé"}, Frame: []byte(`{"type":"x"}`)}},
		{Node: "n2", Seq: 1 << 40, Msg: Message{Kind: KindTopic, Topic: "chat:1", ExceptUser: "a", Frame: []byte(`{}`)}},
		{Node: "n3", Seq: 7, Msg: Message{Kind: KindLeaveTopic, Topic: "chat:1", Users: []string{"b"}}},
		{Node: "n4", Seq: 8, Msg: Message{Kind: KindSignal, Topic: "chat.changed", Frame: []byte{0, 1, 2}}},
		{Node: "n5", Seq: 9, Msg: Message{Kind: KindSession, Topic: "session-1", Users: []string{"a"}, Frame: []byte(`{}`)}},
		{Node: "n6", Seq: 10, Msg: Message{Kind: KindPresence, Topic: "user-1", Frame: []byte(`{"type":"presence"}`)}},
	} {
		got, err := decodeBusEntry(appendBusEntry(nil, e))
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if diff := cmp.Diff(e, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestBusEntryRejectsMalformed(t *testing.T) {
	t.Parallel()
	good := appendBusEntry(nil, busEntry{Node: "n", Seq: 1, Msg: Message{Kind: KindUsers, Users: []string{"a"}}})
	for name, b := range map[string][]byte{
		"empty":          nil,
		"other version":  append([]byte{9}, good[1:]...),
		"unknown kind":   append([]byte{busCodecVersion, 0}, good[2:]...),
		"kind too large": append([]byte{busCodecVersion, byte(KindPresence + 1)}, good[2:]...),
		"truncated":      good[:len(good)-1],
		"huge user list": {busCodecVersion, byte(KindUsers), 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad varint":     {busCodecVersion, byte(KindUsers), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := decodeBusEntry(b); !errors.Is(err, errBusEntry) {
			t.Errorf("%s: err = %v, want errBusEntry", name, err)
		}
	}
}

// FuzzDecodeBusEntry: entries come from Redis, which any node (or anyone with access) may write
// to. Decoding never panics, and what decodes encodes back to the same bytes.
func FuzzDecodeBusEntry(f *testing.F) {
	f.Add(appendBusEntry(nil, busEntry{Node: "n", Seq: 3, Msg: Message{Kind: KindUsers, Users: []string{"a", "b"}, Frame: []byte("{}")}}))
	f.Add(appendBusEntry(nil, busEntry{Node: "n", Seq: 1, Msg: Message{Kind: KindSignal, Topic: "s"}}))
	f.Add([]byte{busCodecVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeBusEntry(b)
		if err != nil {
			return
		}
		if again := appendBusEntry(nil, e); !bytes.Equal(again, b) {
			// Varints have one shortest form; a longer form decodes but encodes shorter.
			if e2, err := decodeBusEntry(again); err != nil || !cmp.Equal(e, e2) {
				t.Fatalf("re-encoded entry decodes differently: %+v vs %+v (%v)", e, e2, err)
			}
		}
	})
}

// testRedis returns a client of the test Redis and a stream name no other test uses.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	rdb, prefix := storetest.Redis(t)
	return rdb, prefix + ":bus"
}

func newTestBus(t *testing.T, rdb *redis.Client, o RedisBusOptions) *RedisBus {
	t.Helper()
	b, err := NewRedisBus(context.Background(), rdb, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// collector records what a subscriber receives.
type collector struct {
	mu  sync.Mutex
	got []Message
	ch  chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1<<16)} }

func (c *collector) deliver(_ context.Context, m Message) {
	c.mu.Lock()
	c.got = append(c.got, m)
	c.mu.Unlock()
	c.ch <- struct{}{}
}

// wait returns what was received once there are at least n messages, failing if they do not come.
func (c *collector) wait(t *testing.T, n int) []Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.got) >= n {
			defer c.mu.Unlock()
			return append([]Message(nil), c.got...)
		}
		have := len(c.got)
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("received %d messages, want %d", have, n)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestRedisBusCarriesMessagesBetweenNodes(t *testing.T) {
	t.Parallel()
	rdb, stream := testRedis(t)
	a := newTestBus(t, rdb, RedisBusOptions{Stream: stream})
	b := newTestBus(t, rdb, RedisBusOptions{Stream: stream})
	atA, atB := newCollector(), newCollector()
	a.Subscribe(atA.deliver)
	b.Subscribe(atB.deliver)

	var want []Message
	for i := range 1000 {
		m := Message{Kind: KindUsers, Users: []string{"u"}, Frame: []byte{byte(i), byte(i >> 8)}}
		if err := a.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	// The publishing node delivered each at once, before Publish returned.
	if got := atA.wait(t, 0); len(got) != 1000 {
		t.Fatalf("the publishing node delivered %d of 1000 synchronously", len(got))
	}
	if diff := cmp.Diff(want, atB.wait(t, 1000)); diff != "" {
		t.Fatalf("the other node received (-want +got):\n%s", diff)
	}
	// Nothing more comes: a node skips its own entries when it reads them back.
	if err := b.Publish(context.Background(), Message{Kind: KindSignal, Topic: "end"}); err != nil {
		t.Fatal(err)
	}
	if got := atA.wait(t, 1001); len(got) != 1001 || got[1000].Topic != "end" {
		t.Fatalf("node a received %d messages, want its 1000 then b's one", len(got))
	}
	if n := counterValue(t, b.m.gaps); n != 0 {
		t.Errorf("gaps = %v, want 0", n)
	}
	var lag dto.Metric
	if err := b.m.lag.Write(&lag); err != nil {
		t.Fatal(err)
	}
	if n := lag.GetHistogram().GetSampleCount(); n != 1000 {
		t.Errorf("lag samples on node b = %d, want one per entry received (1000)", n)
	}
}

func TestStreamIDMillis(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id   string
		ms   int64
		want bool
	}{
		{"1795671449123-0", 1795671449123, true},
		{"0-1", 0, true},
		{"1795671449123", 0, false},
		{"x-0", 0, false},
		{"", 0, false},
	} {
		if ms, ok := streamIDMillis(tt.id); ok != tt.want || ms != tt.ms {
			t.Errorf("streamIDMillis(%q) = %d, %v; want %d, %v", tt.id, ms, ok, tt.ms, tt.want)
		}
	}
}

func TestRedisBusSkipsDuplicatesAndCountsGaps(t *testing.T) {
	t.Parallel()
	rdb, stream := testRedis(t)
	b := newTestBus(t, rdb, RedisBusOptions{Stream: stream})
	got := newCollector()
	b.Subscribe(got.deliver)
	ctx := context.Background()
	add := func(raw []byte) {
		t.Helper()
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"m", raw}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(seq uint64) []byte {
		return appendBusEntry(nil, busEntry{Node: "other", Seq: seq, Msg: Message{Kind: KindSignal, Topic: "s", Frame: []byte{byte(seq)}}})
	}
	add(entry(1))
	add(entry(2))
	add(entry(2))                                                                              // a retried batch wrote it twice
	add([]byte("not an entry"))                                                                // skipped and counted
	add(entry(5))                                                                              // 3 and 4 were lost
	add(appendBusEntry(nil, busEntry{Node: b.Node(), Seq: 1, Msg: Message{Kind: KindSignal}})) // our own
	add(entry(6))
	var seqs []byte
	for _, m := range got.wait(t, 4) {
		seqs = append(seqs, m.Frame[0])
	}
	if !bytes.Equal(seqs, []byte{1, 2, 5, 6}) {
		t.Fatalf("delivered %v, want [1 2 5 6]", seqs)
	}
	if n := counterValue(t, b.m.gaps); n != 2 {
		t.Errorf("gaps = %v, want 2", n)
	}
	if n := counterValue(t, b.m.errors.WithLabelValues("decode")); n != 1 {
		t.Errorf("decode errors = %v, want 1", n)
	}
}

// A node cut off from Redis reads on from where it was: nothing published meanwhile is lost.
func TestRedisBusLosesNothingWhenItsConnectionDrops(t *testing.T) {
	t.Parallel()
	rdb, stream := testRedis(t)
	// The reading node has a client of its own, so that its connections can be killed.
	ropts, err := redis.ParseURL(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	var id [4]byte
	rand.Read(id[:])
	name := "bus-reader-" + hex.EncodeToString(id[:])
	ropts.ClientName = name
	readerRDB := redis.NewClient(ropts)
	t.Cleanup(func() { readerRDB.Close() })

	a := newTestBus(t, rdb, RedisBusOptions{Stream: stream})
	b := newTestBus(t, readerRDB, RedisBusOptions{Stream: stream})
	got := newCollector()
	b.Subscribe(got.deliver)
	ctx := context.Background()
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if err := a.Publish(ctx, Message{Kind: KindSignal, Topic: "n", Frame: []byte{byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 100)
	got.wait(t, 100)
	killed := killClients(t, rdb, name)
	publish(100, 200)
	msgs := got.wait(t, 200)
	for i, m := range msgs {
		if m.Frame[0] != byte(i) {
			t.Fatalf("message %d carries %d: out of order or lost", i, m.Frame[0])
		}
	}
	if killed == 0 {
		t.Fatal("no connection of the reading node was killed")
	}
}

// killClients closes the Redis connections named name and returns how many there were.
func killClients(t *testing.T, rdb *redis.Client, name string) int {
	t.Helper()
	ctx := context.Background()
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		var id string
		match := false
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch {
			case k == "id":
				id = v
			case k == "name" && v == name:
				match = true
			}
		}
		if match {
			if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

func TestRedisBusDropsWhenTheQueueIsFull(t *testing.T) {
	t.Parallel()
	rdb, stream := testRedis(t)
	b := newTestBus(t, rdb, RedisBusOptions{Stream: stream, Queue: 1})
	local := newCollector()
	b.Subscribe(local.deliver)
	var failed int
	for range 1000 {
		if err := b.Publish(context.Background(), Message{Kind: KindSignal, Topic: "x"}); err != nil {
			failed++
		}
	}
	// Every publication reached this node; those that found the queue full say so and are counted.
	if got := local.wait(t, 1000); len(got) != 1000 {
		t.Fatalf("local deliveries = %d, want 1000", len(got))
	}
	if n := counterValue(t, b.m.dropped); int(n) != failed {
		t.Errorf("dropped = %v, but %d publications failed", n, failed)
	}
}

func TestHubSignalsReachEveryNode(t *testing.T) {
	t.Parallel()
	rdb, stream := testRedis(t)
	hubs := make([]*Hub, 2)
	got := make([]chan string, 2)
	for i := range hubs {
		bus := newTestBus(t, rdb, RedisBusOptions{Stream: stream})
		h, err := New(withBus(bus))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Shutdown(context.Background()) })
		got[i] = make(chan string, 1)
		h.OnSignal("test.changed", func(_ context.Context, p []byte) { got[i] <- string(p) })
		hubs[i] = h
	}
	hubs[0].PublishSignal(context.Background(), "test.changed", []byte("chat-1"))
	hubs[0].PublishSignal(context.Background(), "nobody.listens", []byte("x"))
	select { // on the publishing node the handler has run when PublishSignal returns
	case p := <-got[0]:
		if p != "chat-1" {
			t.Fatalf("node 0 got %q", p)
		}
	default:
		t.Fatal("the publishing node's handler had not run when PublishSignal returned")
	}
	select {
	case p := <-got[1]:
		if p != "chat-1" {
			t.Fatalf("node 1 got %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other node's handler never ran")
	}
}

// BenchmarkRedisBus measures the bus between two nodes through the test Redis: one op is one
// message_new-sized publication (10 users, a 400-byte frame) published on one node and delivered
// on the other.
//
//	NERUTALK_TEST_REDIS_URL=redis://127.0.0.1:6379/0 go test -run '^$' -bench RedisBus ./internal/realtime/
func BenchmarkRedisBus(b *testing.B) {
	rdb, prefix := storetest.Redis(b)
	stream := prefix + ":bus"
	ctx := context.Background()
	pub, err := NewRedisBus(ctx, rdb, RedisBusOptions{Stream: stream})
	if err != nil {
		b.Fatal(err)
	}
	sub, err := NewRedisBus(ctx, rdb, RedisBusOptions{Stream: stream})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close(ctx)
	defer sub.Close(ctx)
	var got atomic.Int64
	done := make(chan struct{})
	want := int64(b.N)
	sub.Subscribe(func(context.Context, Message) {
		if got.Add(1) == want {
			close(done)
		}
	})
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}
	frame := bytes.Repeat([]byte("x"), 400)
	b.ResetTimer()
	for range b.N {
		for pub.Publish(ctx, Message{Kind: KindUsers, Users: users, Frame: frame}) != nil {
			time.Sleep(time.Millisecond) // queue full: let the writer catch up
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("delivered %d of %d", got.Load(), want)
	}
}
