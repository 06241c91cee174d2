package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// RedisBusOptions configures NewRedisBus.
type RedisBusOptions struct {
	// Stream is the Redis stream every node of one deployment shares ("nerutalk:bus" when empty).
	Stream string
	// MaxLen is about how many entries the stream keeps (100,000 when zero): how far a node may
	// fall behind, or be cut off from Redis, and still catch up with nothing lost.
	MaxLen int64
	// Queue bounds the publications waiting to be written to Redis (65,536 when zero). A
	// publication that finds it full is dropped and counted; clients recover it through sync.
	Queue  int
	Logger *slog.Logger
	// Registerer receives the bus metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// RedisBus carries Messages between nodes through one Redis stream. A publication is delivered on
// its own node at once, synchronously, like LocalBus, and queued; one goroutine appends the queue
// to the stream in pipelined batches (XADD), and another reads the stream (XREAD) and delivers
// what the other nodes wrote. A stream, unlike Redis pub/sub, keeps its entries: a node that loses
// its connection to Redis reads on from the last entry it had, so a short outage loses nothing.
//
// Every entry carries its node's id and a per-node counter. A reader skips its own entries and
// entries it has seen (a retried batch may be written twice), and counts the entries it missed
// (nerutalk_bus_gaps_total): the stream was trimmed past them, or their node dropped them. The
// messages themselves are in the database; a client fetches what it missed with sync.
type RedisBus struct {
	rdb    *redis.Client
	stream string
	maxLen int64
	node   string
	log    *slog.Logger
	m      *busMetrics
	subs   *LocalBus

	mu     sync.Mutex // orders seq with the queue; guards closed
	seq    uint64
	closed bool
	out    chan []byte

	ctx      context.Context // ends when the bus is closed
	cancel   context.CancelFunc
	wrote    chan struct{} // closed when the writer has drained the queue
	read     chan struct{} // closed when the reader has stopped
	received map[string]uint64
}

// NewRedisBus starts a bus on rdb. It reads the stream from its current end: what was published
// before it started is not delivered.
func NewRedisBus(ctx context.Context, rdb *redis.Client, o RedisBusOptions) (*RedisBus, error) {
	if o.Stream == "" {
		o.Stream = "nerutalk:bus"
	}
	if o.MaxLen <= 0 {
		o.MaxLen = 100_000
	}
	if o.Queue <= 0 {
		o.Queue = 65_536
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newBusMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	last, err := rdb.XRevRangeN(ctx, o.Stream, "+", "-", 1).Result()
	if err != nil {
		return nil, fmt.Errorf("realtime: redis bus: read the end of %s: %w", o.Stream, err)
	}
	from := "0-0"
	if len(last) > 0 {
		from = last[0].ID
	}
	b := &RedisBus{
		rdb: rdb, stream: o.Stream, maxLen: o.MaxLen, node: hex.EncodeToString(id[:]),
		log: o.Logger, m: m, subs: NewLocalBus(), out: make(chan []byte, o.Queue),
		wrote: make(chan struct{}), read: make(chan struct{}), received: map[string]uint64{},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	go b.writeLoop()
	go b.readLoop(from)
	return b, nil
}

// Node is this bus's id, written in every entry it publishes.
func (b *RedisBus) Node() string { return b.node }

// Subscribe adds a subscriber, which receives this node's publications with the publisher's
// context and the other nodes' with the bus's.
func (b *RedisBus) Subscribe(deliver func(context.Context, Message)) (cancel func()) {
	return b.subs.Subscribe(deliver)
}

// Publish delivers m on this node before it returns and queues it for the others. It does not wait
// for Redis; it fails only when the queue is full or the bus is closed.
func (b *RedisBus) Publish(ctx context.Context, m Message) error {
	_ = b.subs.Publish(ctx, m)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("realtime: redis bus is closed")
	}
	b.seq++
	select {
	case b.out <- appendBusEntry(nil, busEntry{Node: b.node, Seq: b.seq, Msg: m}):
		return nil
	default:
		b.m.dropped.Inc()
		return errors.New("realtime: redis bus queue is full: the publication reaches this node only")
	}
}

// Close stops publishing, writes what is queued (until ctx ends) and stops reading.
func (b *RedisBus) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.out)
	}
	b.mu.Unlock()
	var err error
	select {
	case <-b.wrote:
	case <-ctx.Done():
		err = fmt.Errorf("realtime: redis bus: queue not drained: %w", ctx.Err())
	}
	b.cancel()
	<-b.wrote
	<-b.read
	return err
}

// busWriteBatch bounds the entries of one pipeline.
const busWriteBatch = 512

func (b *RedisBus) writeLoop() {
	defer close(b.wrote)
	batch := make([][]byte, 0, busWriteBatch)
	for first := range b.out {
		batch = append(batch[:0], first)
	more:
		for len(batch) < busWriteBatch {
			select {
			case e, ok := <-b.out:
				if !ok {
					break more
				}
				batch = append(batch, e)
			default:
				break more
			}
		}
		for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
			err := b.write(batch)
			if err == nil {
				b.m.published.Add(float64(len(batch)))
				break
			}
			b.m.errors.WithLabelValues("write").Inc()
			b.log.Warn("realtime: redis bus: write failed, retrying", "entries", len(batch), "err", err)
			select {
			case <-time.After(wait):
			case <-b.ctx.Done(): // closed and out of time: what is left reaches this node only
				b.m.dropped.Add(float64(len(batch)))
				for range b.out {
					b.m.dropped.Inc()
				}
				return
			}
		}
	}
}

// write appends batch to the stream in one round trip. A retry after a partial failure may write
// an entry twice; readers skip the second by its counter.
func (b *RedisBus) write(batch [][]byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := b.rdb.Pipeline()
	for _, e := range batch {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: b.stream, MaxLen: b.maxLen, Approx: true, Values: []any{"m", e}})
	}
	_, err := pipe.Exec(ctx)
	return err
}

// busReadBatch bounds the entries of one XREAD; busBlock how long it waits for one.
const (
	busReadBatch = 512
	busBlock     = 500 * time.Millisecond
)

func (b *RedisBus) readLoop(from string) {
	defer close(b.read)
	wait := 10 * time.Millisecond
	for b.ctx.Err() == nil {
		res, err := b.rdb.XRead(b.ctx, &redis.XReadArgs{
			Streams: []string{b.stream, from}, Count: busReadBatch, Block: busBlock,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if b.ctx.Err() != nil {
				return
			}
			b.m.errors.WithLabelValues("read").Inc()
			b.log.Warn("realtime: redis bus: read failed, retrying", "from", from, "err", err)
			select {
			case <-time.After(wait):
			case <-b.ctx.Done():
				return
			}
			wait = min(2*wait, time.Second)
			continue
		}
		wait = 10 * time.Millisecond
		ctx, wb := WithWakeBatch(b.ctx)
		for _, s := range res {
			for _, x := range s.Messages {
				from = x.ID
				b.receive(ctx, x)
			}
		}
		wb.Flush()
	}
}

// receive delivers one stream entry written by another node.
func (b *RedisBus) receive(ctx context.Context, x redis.XMessage) {
	raw, _ := x.Values["m"].(string)
	e, err := decodeBusEntry([]byte(raw))
	if err != nil {
		b.m.errors.WithLabelValues("decode").Inc()
		b.log.Warn("realtime: redis bus: skipped an entry", "id", x.ID, "err", err)
		return
	}
	if e.Node == b.node {
		return
	}
	last := b.received[e.Node]
	if e.Seq <= last {
		return // written twice by a retried batch
	}
	if last != 0 && e.Seq != last+1 {
		b.m.gaps.Add(float64(e.Seq - last - 1))
		b.log.Warn("realtime: redis bus: entries of a node were lost", "node", e.Node, "lost", e.Seq-last-1)
	}
	b.received[e.Node] = e.Seq
	b.m.received.Inc()
	if ms, ok := streamIDMillis(x.ID); ok {
		b.m.lag.Observe(max(0, time.Since(time.UnixMilli(ms)).Seconds()))
	}
	_ = b.subs.Publish(ctx, e.Msg)
}

// streamIDMillis reads the time part of a stream entry id ("<unix ms>-<n>"): when Redis took it.
func streamIDMillis(id string) (int64, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(ms, 10, 64)
	return v, err == nil
}

// busMetrics are the Redis bus's Prometheus collectors.
type busMetrics struct {
	published, received, dropped, gaps prometheus.Counter
	errors                             *prometheus.CounterVec
	lag                                prometheus.Histogram
}

func newBusMetrics(reg prometheus.Registerer) (*busMetrics, error) {
	m := &busMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nerutalk_bus_published_total", Help: "Bus entries this node wrote to the Redis stream.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nerutalk_bus_received_total", Help: "Bus entries of other nodes this node read and delivered.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nerutalk_bus_dropped_total",
			Help: "Publications that reached this node only: the queue to Redis was full, or Redis was down at shutdown.",
		}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nerutalk_bus_gaps_total",
			Help: "Entries of other nodes this node never read (trimmed from the stream before it read them, or dropped by their node).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nerutalk_bus_errors_total", Help: "Failed Redis bus operations, by operation (write, read, decode).",
		}, []string{"op"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nerutalk_bus_lag_seconds",
			Help:    "From Redis taking an entry of another node (its stream id's time) to this node delivering it (millisecond resolution; clocks of Redis and the node must agree).",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 5},
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.published, m.received, m.dropped, m.gaps, m.errors, m.lag} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("realtime: register bus metrics: %w", err)
		}
	}
	return m, nil
}
