package main

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// traffic sends messages into chats over the WebSocket and measures what comes back: the acks on
// the senders' connections and the message_new deliveries on every member's connection.
//
// Concurrency: each sender is a goroutine that paces its sends; each connection's read goroutine
// runs handle, which only touches atomics, the connection's own seen-set and the chat's ack list
// (both behind their own mutex). The current step is published through an atomic pointer, and
// counted by send time, so a late frame of the warm-up never counts in the measured window.
type traffic struct {
	r     *runner
	users []*user
	conns []*conn
	chats map[string]*benchChat // read-only once traffic starts

	no       atomic.Uint64 // message numbers
	cur      atomic.Pointer[trafficStep]
	inflight atomic.Int64 // sends not yet acked nor refused

	unique, dups, foreign atomic.Uint64 // message_new frames
	late                  atomic.Uint64 // message_new frames after a higher seq of their chat
	acked, expected       atomic.Uint64 // acks, and the deliveries they promise (members per ack)
	errMu                 sync.Mutex
	errCodes              map[string]int
}

func newTraffic(r *runner, users []*user, conns []*conn, chats []*benchChat) *traffic {
	t := &traffic{r: r, users: users, conns: conns, chats: map[string]*benchChat{}, errCodes: map[string]int{}}
	for _, c := range chats {
		t.chats[c.id] = c
	}
	return t
}

// trafficStep is the live tally of one measured run.
type trafficStep struct {
	windowStart, windowEnd int64 // Unix ns; messages sent in [start, end) are measured

	sent, skipped, sendErrs, errs, acks, deliveries atomic.Uint64
	ackLat, e2e, history                            histogram
	historyErrs                                     atomic.Uint64
}

func (s *trafficStep) inWindow(sent time.Time) bool {
	ns := sent.UnixNano()
	return ns >= s.windowStart && ns < s.windowEnd
}

// handle is the frame handler of every connection in a traffic scenario.
func (t *traffic) handle(c *conn, recv time.Time, f *inFrame) {
	switch f.Type {
	case "message_new":
		sent, _, ok := parsePayload(f.Data.Text)
		if !ok {
			t.foreign.Add(1)
			return
		}
		first, late := c.markSeen(f.Data.ChatID, f.Data.Seq)
		if !first {
			t.dups.Add(1)
			return
		}
		if late {
			t.late.Add(1)
		}
		t.unique.Add(1)
		if st := t.cur.Load(); st != nil && st.inWindow(sent) {
			st.deliveries.Add(1)
			st.e2e.Record(recv.Sub(sent))
		}
	case "ack":
		if !strings.HasPrefix(f.ID, "m") {
			return
		}
		sent, _, ok := parsePayload(f.Data.Text)
		c.inflight.Add(-1)
		t.inflight.Add(-1)
		ch := t.chats[f.Data.ChatID]
		if !ok || ch == nil {
			t.countError("ack_without_message")
			return
		}
		ch.addAck(ackRecord{ChatID: f.Data.ChatID, Seq: f.Data.Seq, ClientID: f.Data.ClientID})
		t.acked.Add(1)
		t.expected.Add(uint64(len(ch.members)))
		if st := t.cur.Load(); st != nil && st.inWindow(sent) {
			st.acks.Add(1)
			st.ackLat.Record(recv.Sub(sent))
		}
	case "error":
		if !strings.HasPrefix(f.ID, "m") {
			return
		}
		c.inflight.Add(-1)
		t.inflight.Add(-1)
		t.countError(f.Data.Code)
		if st := t.cur.Load(); st != nil {
			st.errs.Add(1)
		}
	}
}

func (t *traffic) countError(code string) {
	if code == "" {
		code = "unknown"
	}
	t.errMu.Lock()
	t.errCodes[code]++
	t.errMu.Unlock()
}

// senderSpec is one connection that sends into one chat.
type senderSpec struct {
	conn *conn
	chat *benchChat
}

// runOpts is how one measured run is driven.
type runOpts struct {
	rate        float64 // messages per second, all senders together
	warmup      time.Duration
	window      time.Duration
	historyRate float64 // GET /chats/{id}/messages?limit=50 per second during the window (0 = none)
	maxInflight int64   // per sender
	timeOrdered bool    // client ids are UUIDv7 instead of random UUIDv4
	size        int     // payload bytes
	drain       time.Duration
	slo         time.Duration // ack p99 above this marks the run saturated
	profile     string        // when not empty (and -profile-dir), the name of a CPU profile of the window
}

// trafficRun is the outcome of one measured run.
type trafficRun struct {
	TargetRate     float64         `json:"target_msgs_per_s"`
	Sent           uint64          `json:"sent"`
	Skipped        uint64          `json:"skipped"`
	Errors         uint64          `json:"errors"`
	AckedPerS      float64         `json:"acked_per_s"`
	DeliveriesPerS float64         `json:"deliveries_per_s"`
	Ack            latencySummary  `json:"ack_latency"`
	E2E            latencySummary  `json:"e2e_latency"`
	History        *latencySummary `json:"history_latency,omitempty"`
	HistoryErrors  uint64          `json:"history_errors,omitempty"`
	Expected       uint64          `json:"deliveries_expected"`
	Delivered      uint64          `json:"deliveries_unique"`
	Missing        uint64          `json:"deliveries_missing"`
	Duplicates     uint64          `json:"deliveries_duplicate"`
	Unacked        int64           `json:"unacked_after_drain"`
	CPU            cpuUse          `json:"cpu"`
	// CPU per acked message and per delivery over the window, in µs: the server's process(es),
	// and the database's (-db-cpu-match; -1 without it). -1 when unknown (no -pid, nothing acked).
	ServerUSPerAck      float64 `json:"server_cpu_us_per_acked_msg"`
	ServerUSPerDelivery float64 `json:"server_cpu_us_per_delivery"`
	DBUSPerAck          float64 `json:"db_cpu_us_per_acked_msg"`
	verdict
}

// perEvent is cores × 1e6 / (events per second): µs of CPU per event; -1 when unknown.
func perEvent(cores, perS float64) float64 {
	if cores < 0 || perS <= 0 {
		return -1
	}
	return round3(cores * 1e6 / perS)
}

// quiet reports whether every send has been answered and every promised delivery has arrived.
func (t *traffic) quiet() bool {
	return t.inflight.Load() <= 0 && t.unique.Load() >= t.expected.Load()
}

// quiesce waits until the server has worked off its backlog, so that a run does not start on,
// and the final checks do not read, a server still busy with earlier messages. It gives up after
// limit, or once nothing has moved for -drain (what has not arrived by then is lost).
func (t *traffic) quiesce(ctx context.Context, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	next := time.Now().Add(5 * time.Second)
	lastMove, lastIn, lastUniq := time.Now(), t.inflight.Load(), t.unique.Load()
	for !t.quiet() {
		in, uniq := t.inflight.Load(), t.unique.Load()
		if in != lastIn || uniq != lastUniq {
			lastMove, lastIn, lastUniq = time.Now(), in, uniq
		}
		if time.Now().After(deadline) || time.Since(lastMove) > t.r.opt.drain || ctx.Err() != nil {
			t.r.warn("the server left %d sends unanswered and %d deliveries outstanding (waited %v)",
				in, int64(t.expected.Load())-int64(uniq), time.Since(deadline.Add(-limit)).Round(time.Second))
			return false
		}
		if time.Now().After(next) {
			t.r.logf("  waiting for the server's backlog: %d sends unanswered, %d deliveries outstanding",
				in, int64(t.expected.Load())-int64(uniq))
			next = time.Now().Add(5 * time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// run drives senders at o.rate for warm-up plus window, then waits for every ack and delivery.
func (t *traffic) run(ctx context.Context, senders []senderSpec, o runOpts) trafficRun {
	t.quiesce(ctx, t.r.opt.backlog)
	st := &trafficStep{}
	start := time.Now().Add(50 * time.Millisecond)
	ws := start.Add(o.warmup)
	we := ws.Add(o.window)
	st.windowStart, st.windowEnd = ws.UnixNano(), we.UnixNano()
	exp0, uniq0, dup0 := t.expected.Load(), t.unique.Load(), t.dups.Load()
	t.cur.Store(st)

	var wg sync.WaitGroup
	var cpu cpuUse
	wg.Add(1)
	go func() { // CPU over the measured window
		defer wg.Done()
		if !sleepUntil(ctx, ws) {
			return
		}
		m := startCPU(t.r.opt.serverPIDs(), t.r.opt.dbMatch)
		if o.profile != "" {
			t.r.prof.cpu(ctx, o.profile, o.window, t.r.logf)
		}
		if sleepUntil(ctx, we) {
			cpu = m.stop()
		}
	}()
	if o.historyRate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.historyLoad(ctx, st, ws, we, o.historyRate, senders)
		}()
	}
	for k, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.sendLoop(ctx, st, s, newSchedule(start, we, o.rate, k, len(senders)), o)
		}()
	}
	wg.Wait()

	// Drain: every send answered and every promised delivery arrived, or the drain time is up.
	deadline := time.Now().Add(o.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil && !t.quiet() {
		time.Sleep(20 * time.Millisecond)
	}
	secs := o.window.Seconds()
	run := trafficRun{
		TargetRate: o.rate, Sent: st.sent.Load(), Skipped: st.skipped.Load(),
		Errors:         st.errs.Load() + st.sendErrs.Load(),
		AckedPerS:      perSecond(st.acks.Load(), secs),
		DeliveriesPerS: perSecond(st.deliveries.Load(), secs),
		Ack:            st.ackLat.Summary(), E2E: st.e2e.Summary(),
		Expected: t.expected.Load() - exp0, Delivered: t.unique.Load() - uniq0,
		Duplicates: t.dups.Load() - dup0, Unacked: t.inflight.Load(), CPU: cpu,
	}
	run.ServerUSPerAck = perEvent(cpu.ServerCores, run.AckedPerS)
	run.ServerUSPerDelivery = perEvent(cpu.ServerCores, run.DeliveriesPerS)
	run.DBUSPerAck = perEvent(cpu.DBCores, run.AckedPerS)
	if run.Expected > run.Delivered {
		run.Missing = run.Expected - run.Delivered
	}
	if o.historyRate > 0 {
		h := st.history.Summary()
		run.History, run.HistoryErrors = &h, st.historyErrs.Load()
	}
	run.verdict = judge(o.rate, float64(st.acks.Load())/secs, run.Skipped, run.Errors,
		st.ackLat.Quantile(.99), o.slo)
	return run
}

// sendLoop paces one sender. A send is skipped (and counted) when the sender already has
// maxInflight messages unacknowledged: the generator never queues without bound.
func (t *traffic) sendLoop(ctx context.Context, st *trafficStep, s senderSpec, sch *schedule, o runOpts) {
	for ctx.Err() == nil {
		at, ok := sch.next()
		if !ok {
			return
		}
		if !sleepUntil(ctx, at) {
			return
		}
		if s.conn.closed() {
			st.sendErrs.Add(1)
			t.countError("sender_connection_closed")
			continue
		}
		if s.conn.inflight.Load() >= o.maxInflight {
			st.skipped.Add(1)
			continue
		}
		no := t.no.Add(1)
		now := time.Now()
		s.conn.inflight.Add(1)
		t.inflight.Add(1)
		clientID := uuid.NewString()
		if o.timeOrdered {
			clientID = uuid.Must(uuid.NewV7()).String()
		}
		err := s.conn.send(ctx, "send_message", "m"+strconv.FormatUint(no, 10), map[string]string{
			"chat_id": s.chat.id, "client_id": clientID, "text": makePayload(now, no, o.size),
		})
		if err != nil {
			s.conn.inflight.Add(-1)
			t.inflight.Add(-1)
			st.sendErrs.Add(1)
			t.countError("send_failed")
			continue
		}
		st.sent.Add(1)
	}
}

// historyLoad issues GET /chats/{id}/messages?limit=50 at rate per second during [from, to), each
// as a member of the chat (a random sender's chat), and records the latency.
func (t *traffic) historyLoad(ctx context.Context, st *trafficStep, from, to time.Time, rate float64, senders []senderSpec) {
	if !sleepUntil(ctx, from) {
		return
	}
	sch := &schedule{start: from, interval: time.Duration(float64(time.Second) / rate), end: to}
	sem := make(chan struct{}, 16) // bounded concurrency: a slow server cannot pile up requests
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		at, ok := sch.next()
		if !ok {
			return
		}
		if !sleepUntil(ctx, at) {
			return
		}
		s := senders[rand.IntN(len(senders))]
		select {
		case sem <- struct{}{}:
		default:
			st.historyErrs.Add(1) // 16 already outstanding: count as a failure to answer in time
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			_, err := t.r.api.history(ctx, s.conn.u, s.chat.id, -1, 50)
			if err != nil {
				st.historyErrs.Add(1)
				return
			}
			st.history.Record(time.Since(t0))
		}()
	}
}

// deliveryCheck compares, for every acked message, each member's connection against what it
// received. It runs after the last drain.
type deliveryCheck struct {
	Acked      uint64 `json:"acked"`
	Unanswered int64  `json:"unanswered"` // sends that got neither an ack nor an error
	Expected   uint64 `json:"expected"`
	Missing    uint64 `json:"missing"`
	Duplicates uint64 `json:"duplicates"`
	// OutOfOrder counts deliveries that reached a connection after a higher seq of their chat:
	// never on one node; across nodes, messages of one chat sent through two nodes at once.
	OutOfOrder uint64         `json:"out_of_order"`
	Foreign    uint64         `json:"foreign_frames"`
	Closed     int            `json:"connections_closed"`
	CloseWhy   []string       `json:"close_reasons,omitempty"`
	ErrorCodes map[string]int `json:"error_codes,omitempty"`
	OK         bool           `json:"ok"`
}

func (t *traffic) checkDeliveries() deliveryCheck {
	d := deliveryCheck{Duplicates: t.dups.Load(), OutOfOrder: t.late.Load(), Foreign: t.foreign.Load(), Unanswered: t.inflight.Load()}
	for _, ch := range t.chats {
		acks := ch.acks()
		d.Acked += uint64(len(acks))
		for _, m := range ch.members {
			c := t.conns[m]
			for _, a := range acks {
				d.Expected++
				if c == nil || !c.hasSeen(a.ChatID, a.Seq) {
					d.Missing++
				}
			}
		}
	}
	d.Closed, d.CloseWhy = closedConns(t.conns)
	t.errMu.Lock()
	if len(t.errCodes) > 0 {
		d.ErrorCodes = map[string]int{}
		for k, v := range t.errCodes {
			d.ErrorCodes[k] = v
		}
	}
	t.errMu.Unlock()
	d.OK = d.Acked > 0 && d.Unanswered == 0 && d.Missing == 0 && d.Duplicates == 0 && d.Closed == 0
	return d
}

// verifyStorage reads every chat's history back through the API (as its first member) and
// checks it against the acks. Call it after quiesce.
func (t *traffic) verifyStorage(ctx context.Context) storageCheck {
	var mu sync.Mutex
	var out storageCheck
	chats := make([]*benchChat, 0, len(t.chats))
	for _, c := range t.chats {
		chats = append(chats, c)
	}
	_ = parallel(ctx, len(chats), t.r.opt.setupWorkers, func(ctx context.Context, i int) error {
		ch := chats[i]
		u := t.users[ch.members[0]]
		// Acks first, then last_seq, then the history: whatever was acked or counted before the
		// read must be in it, even if the server is still storing later messages.
		acks := ch.acks()
		info, err := t.r.api.getChat(ctx, u, ch.id)
		var msgs []storedMessage
		if err == nil {
			msgs, err = t.r.api.allMessages(ctx, u, ch.id)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			out.fail(ch.id, err)
			return nil
		}
		out.add(ch.id, checkChat(acks, msgs, info.LastSeq))
		return nil
	}, nil)
	return out
}

// sleepUntil waits until at; false if ctx ended first.
func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
