package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nerutalk/nerutalk/internal/realtime/rfc6455"
)

// The fanout scenario against Centrifugo (-target centrifugo), the yardstick for NeruTalk's
// delivery cost: K subscribers connect with the Centrifugo JSON protocol over WebSocket
// (/connection/websocket; a connect command with an HS256 connection token, then a subscribe to
// one channel of the -centrifugo-namespace namespace), and one of them publishes into the channel
// over its own connection (a client publish command, allowed in the namespace), which is what a
// NeruTalk member's send_message is: one client sends, every member's connection receives.
// Latency, loss and CPU are measured exactly as against NeruTalk; what Centrifugo does not do is
// persist and order each message in a database (its history is kept in memory), so the ratio of
// CPU per delivery is what NeruTalk pays for that on top of the fan-out.

// cfState is what every Centrifugo connection's read loop reports into.
type cfState struct {
	cur                   atomic.Pointer[trafficStep]
	unique, dups, foreign atomic.Uint64
	acked, expected, errs atomic.Uint64
	inflight              atomic.Int64
	members               int
	mu                    sync.Mutex
	errCodes              map[string]int
	sentAt                sync.Map // publish command id → time sent (the sender's replies carry no data)
	pubID                 atomic.Uint32
	no                    atomic.Uint64 // message numbers
}

// cfConn is one Centrifugo client connection.
type cfConn struct {
	ws       *rfc6455.Conn
	wmu      sync.Mutex
	last     uint64 // highest publication offset received (read loop only)
	inflight atomic.Int64
	done     chan struct{}
	readErr  error
}

func (c *cfConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	nc := c.ws.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err := c.ws.WriteTexts([][]byte{b})
	_ = nc.SetWriteDeadline(time.Time{})
	if err != nil && !errors.Is(err, rfc6455.ErrClosed) {
		_ = c.ws.Close()
	}
	return err
}

func (c *cfConn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// cfToken makes an HS256 connection JWT for user sub.
func cfToken(secret, sub string, exp time.Time) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": sub, "exp": exp.Unix()})
	unsigned := head + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(m.Sum(nil))
}

// cfReply is a reply to a command (setup only: publish replies are scanned, not decoded).
type cfReply struct {
	ID    uint32 `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// cfDial connects, authenticates and subscribes one client to channel (none when it is ""),
// synchronously.
func (r *runner) cfDial(ctx context.Context, i int, channel string) (*cfConn, error) {
	o := r.opt
	nd := r.dialer.clients[min(i/max(r.dialer.perIP, 1), len(r.dialer.clients)-1)]
	u := "ws" + strings.TrimPrefix(o.base, "http") + "/connection/websocket"
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, resp, err := rfc6455.Dial(dctx, u, nil, nd)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("centrifugo dial: status %d: %w", resp.StatusCode, err)
		}
		return nil, fmt.Errorf("centrifugo dial: %w", err)
	}
	ws.SetReadLimit(4 << 20)
	c := &cfConn{ws: ws, done: make(chan struct{})}
	_ = ws.NetConn().SetReadDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = ws.NetConn().SetReadDeadline(time.Time{}) }()
	cmds := []string{
		fmt.Sprintf(`{"id":1,"connect":{"token":%q,"name":"nerutalk-bench"}}`, cfToken(o.cfSecret, fmt.Sprintf("u%d", i), time.Now().Add(4*time.Hour))),
	}
	if channel != "" {
		cmds = append(cmds, fmt.Sprintf(`{"id":2,"subscribe":{"channel":%q}}`, channel))
	}
	for k, cmd := range cmds {
		if err := c.write([]byte(cmd)); err != nil {
			_ = ws.Close()
			return nil, err
		}
		if err := c.awaitReply(uint32(k + 1)); err != nil {
			_ = ws.Close()
			return nil, fmt.Errorf("centrifugo %s: %w", []string{"connect", "subscribe"}[k], err)
		}
	}
	return c, nil
}

// awaitReply reads until the reply with id arrives (setup: nothing else is expected but pings).
func (c *cfConn) awaitReply(id uint32) error {
	for {
		op, msg, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		if op != rfc6455.OpText {
			continue
		}
		for _, line := range bytes.Split(msg, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if string(line) == "{}" {
				_ = c.write([]byte("{}"))
				continue
			}
			var rep cfReply
			if json.Unmarshal(line, &rep) != nil || rep.ID != id {
				continue
			}
			if rep.Error != nil {
				return fmt.Errorf("error %d: %s", rep.Error.Code, rep.Error.Message)
			}
			return nil
		}
	}
}

// readLoop reads pushes and replies until the connection ends.
func (c *cfConn) readLoop(ctx context.Context, st *cfState) {
	defer close(c.done)
	stop := context.AfterFunc(ctx, func() { _ = c.ws.Close() })
	defer stop()
	for {
		op, msg, err := c.ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
				err = ctx.Err()
			}
			c.readErr = err
			return
		}
		recv := time.Now()
		if op != rfc6455.OpText {
			continue
		}
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			c.handle(st, recv, bytes.TrimSpace(line))
		}
	}
}

var (
	cfPushKey   = []byte(`"push":`)
	cfTextKey   = []byte(`"text":"`)
	cfOffsetKey = []byte(`"offset":`)
	cfIDKey     = []byte(`"id":`)
	cfErrorKey  = []byte(`"error":`)
)

// handle takes one protocol message: a ping ({}), a publication push, or a publish reply. It
// scans instead of decoding (the generator's cost per frame stays low, as with NeruTalk's
// frames).
func (c *cfConn) handle(st *cfState, recv time.Time, line []byte) {
	switch {
	case len(line) == 0:
	case string(line) == "{}":
		_ = c.write([]byte("{}")) // the server's ping: answer with a pong
	case bytes.Contains(line, cfPushKey):
		text, ok := scanString(line, cfTextKey)
		sent, _, ok2 := parsePayload(text)
		if !ok || !ok2 {
			st.foreign.Add(1)
			return
		}
		off, _ := scanUint(line, cfOffsetKey)
		if off != 0 && off <= c.last {
			st.dups.Add(1)
			return
		}
		c.last = max(c.last, off)
		st.unique.Add(1)
		if s := st.cur.Load(); s != nil && s.inWindow(sent) {
			s.deliveries.Add(1)
			s.e2e.Record(recv.Sub(sent))
		}
	default: // a reply
		id, ok := scanUint(line, cfIDKey)
		if !ok {
			return
		}
		v, found := st.sentAt.LoadAndDelete(uint32(id))
		if !found {
			return
		}
		sent := v.(time.Time)
		c.inflight.Add(-1)
		st.inflight.Add(-1)
		if bytes.Contains(line, cfErrorKey) {
			code, _ := scanUint(line, []byte(`"code":`))
			st.countError("centrifugo_" + strconv.FormatUint(code, 10))
			if s := st.cur.Load(); s != nil {
				s.errs.Add(1)
			}
			return
		}
		st.acked.Add(1)
		st.expected.Add(uint64(st.members))
		if s := st.cur.Load(); s != nil && s.inWindow(sent) {
			s.acks.Add(1)
			s.ackLat.Record(recv.Sub(sent))
		}
	}
}

func (st *cfState) countError(code string) {
	st.mu.Lock()
	st.errCodes[code]++
	st.mu.Unlock()
}

// scanString returns the JSON string value after key (which ends with the opening quote); the
// tool's payloads have no escapes.
func scanString(b, key []byte) (string, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return "", false
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return string(rest[:j]), true
}

// scanUint returns the unsigned number after key.
func scanUint(b, key []byte) (uint64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	rest := b[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	return v, err == nil
}

// cfSize is one group size measured against Centrifugo.
type cfSize struct {
	Members  int           `json:"members"`
	Channel  string        `json:"channel"`
	Steps    []stepResult  `json:"steps"`
	SetupS   float64       `json:"setup_s"`
	Delivery deliveryCheck `json:"delivery"`
}

type cfResults struct {
	Target    string   `json:"target"`
	Namespace string   `json:"namespace"`
	Publish   string   `json:"publish"`
	Sizes     []cfSize `json:"sizes"`
}

// cfFanout runs the fanout scenario against Centrifugo.
func (r *runner) cfFanout(ctx context.Context, res *result) error {
	o := r.opt
	if o.cfSecret == "" {
		return errors.New("-target centrifugo needs -centrifugo-secret (the client.token.hmac_secret_key of its config)")
	}
	sizes := slices.Clone(o.fanoutSizes)
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	n := sizes[len(sizes)-1]
	if limit := r.connLimit(n); limit < n {
		return fmt.Errorf("%d subscribers need %d connections; the open-file limits allow %d", n, n, limit)
	}
	r.setDialer(n)
	prefix := runPrefix()
	out := &cfResults{Target: "centrifugo", Namespace: o.cfNamespace, Publish: "client publish command over the sender's WebSocket"}
	ro := r.runOpts()
	for _, k := range sizes {
		channel := fmt.Sprintf("%s:%s-fanout-%d", o.cfNamespace, prefix, k)
		st := &cfState{members: k, errCodes: map[string]int{}}
		conns := make([]*cfConn, k)
		t0 := time.Now()
		if err := r.cfConnect(ctx, st, conns, func(int) string { return channel }); err != nil {
			r.cfCloseAll(conns)
			r.hintLimits(err)
			return err
		}
		res.Generator.Connections, res.Generator.SourceIPs = k, len(r.dialer.clients)
		size := cfSize{Members: k, Channel: channel, SetupS: round3(time.Since(t0).Seconds())}
		r.logf("centrifugo: %d subscribers of %s in %.1fs; fanout at %v deliveries/s", k, channel, size.SetupS, o.fanoutRates)
		for _, d := range o.fanoutRates {
			ro.rate = d / float64(k)
			var runs []trafficRun
			for i := range o.runs {
				if ctx.Err() != nil {
					break
				}
				run := r.cfRun(ctx, st, []cfSender{{conns[0], channel}}, ro)
				r.logf("  %.0f deliveries/s run %d/%d: acked %.0f/s, deliveries %.0f/s, e2e p50 %.1f p99 %.1f ms, missing %d, cpu server %s gen %s, server %s µs/delivery%s",
					d, i+1, o.runs, run.AckedPerS, run.DeliveriesPerS, run.E2E.P50MS, run.E2E.P99MS, run.Missing,
					cores(run.CPU.ServerCores), cores(run.CPU.GeneratorCores), us(run.ServerUSPerDelivery), satNote(run.verdict))
				runs = append(runs, run)
			}
			if len(runs) == 0 {
				break
			}
			s := summarizeStep(ro.rate, runs, o.slo)
			s.TargetDeliveries = d
			size.Steps = append(size.Steps, s)
			if s.Saturated && !o.keepGoing {
				break
			}
		}
		cfQuiesce(ctx, st, o.drain)
		size.Delivery = st.delivery(conns)
		dl := &size.Delivery
		res.check(dl.OK, "centrifugo fanout to %d: %d acked, %d unanswered, %d deliveries missing, %d duplicate, %d connections closed %v",
			k, dl.Acked, dl.Unanswered, dl.Missing, dl.Duplicates, dl.Closed, dl.ErrorCodes)
		r.cfCloseAll(conns)
		out.Sizes = append(out.Sizes, size)
	}
	res.Results = out
	for _, sz := range out.Sizes {
		for _, s := range sz.Steps {
			res.say("centrifugo %5d subscribers  %7.0f deliv/s target  %8.0f deliv/s  (%6.1f msg/s)  e2e p50 %6.1f p99 %7.1f max %7.1f ms  cpu srv %s gen %s stolen %s  server %s µs/delivery%s",
				sz.Members, s.TargetDeliveries, s.DeliveriesPerS.Median, s.AckedPerS.Median, s.E2EP50MS.Median, s.E2EP99MS.Median,
				s.E2EMaxMS.Median, cores(s.ServerCores.Median), cores(s.GeneratorCores.Median), cores(s.StolenCores.Median),
				us(s.ServerUSPerDelivery.Median), satNote(s.verdict))
		}
		res.say("centrifugo %5d subscribers: %d published and answered, %d deliveries expected, %d missing, %d duplicate",
			sz.Members, sz.Delivery.Acked, sz.Delivery.Expected, sz.Delivery.Missing, sz.Delivery.Duplicates)
	}
	return nil
}

// cfSender is a connection that publishes, and the channel it publishes into.
type cfSender struct {
	conn    *cfConn
	channel string
}

// cfRun publishes from the senders at o.rate, all together (each on its own schedule, offset
// from the others as the chat scenario's senders are), for the warm-up and the window and
// measures the window.
func (r *runner) cfRun(ctx context.Context, st *cfState, senders []cfSender, o runOpts) trafficRun {
	cfQuiesce(ctx, st, r.opt.backlog)
	ts := &trafficStep{}
	start := time.Now().Add(50 * time.Millisecond)
	ws, we := start.Add(o.warmup), start.Add(o.warmup+o.window)
	ts.windowStart, ts.windowEnd = ws.UnixNano(), we.UnixNano()
	exp0, uniq0, dup0 := st.expected.Load(), st.unique.Load(), st.dups.Load()
	st.cur.Store(ts)
	var wg sync.WaitGroup
	var cpu cpuUse
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !sleepUntil(ctx, ws) {
			return
		}
		m := startCPU(r.opt.serverPIDs(), r.opt.dbMatch)
		if sleepUntil(ctx, we) {
			cpu = m.stop()
		}
	}()
	for k, sd := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.cfPublish(ctx, st, ts, sd, newSchedule(start, we, o.rate, k, len(senders)), o)
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(o.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil && !st.quiet() {
		time.Sleep(20 * time.Millisecond)
	}
	secs := o.window.Seconds()
	run := trafficRun{
		TargetRate: o.rate, Sent: ts.sent.Load(), Skipped: ts.skipped.Load(), Errors: ts.errs.Load() + ts.sendErrs.Load(),
		AckedPerS: perSecond(ts.acks.Load(), secs), DeliveriesPerS: perSecond(ts.deliveries.Load(), secs),
		Ack: ts.ackLat.Summary(), E2E: ts.e2e.Summary(),
		Expected: st.expected.Load() - exp0, Delivered: st.unique.Load() - uniq0, Duplicates: st.dups.Load() - dup0,
		Unacked: st.inflight.Load(), CPU: cpu,
	}
	if run.Expected > run.Delivered {
		run.Missing = run.Expected - run.Delivered
	}
	run.ServerUSPerAck = perEvent(cpu.ServerCores, run.AckedPerS)
	run.ServerUSPerDelivery = perEvent(cpu.ServerCores, run.DeliveriesPerS)
	run.DBUSPerAck = perEvent(cpu.DBCores, run.AckedPerS)
	run.verdict = judge(o.rate, float64(ts.acks.Load())/secs, run.Skipped, run.Errors, ts.ackLat.Quantile(.99), o.slo)
	return run
}

// cfPublish publishes from one sender on its schedule.
func (r *runner) cfPublish(ctx context.Context, st *cfState, ts *trafficStep, sd cfSender, sch *schedule, o runOpts) {
	for ctx.Err() == nil {
		at, ok := sch.next()
		if !ok || !sleepUntil(ctx, at) {
			return
		}
		if sd.conn.closed() {
			ts.sendErrs.Add(1)
			continue
		}
		if sd.conn.inflight.Load() >= o.maxInflight {
			ts.skipped.Add(1)
			continue
		}
		no := st.no.Add(1)
		id := st.pubID.Add(1) + 1000 // 1 and 2 were connect and subscribe
		now := time.Now()
		st.sentAt.Store(id, now)
		sd.conn.inflight.Add(1)
		st.inflight.Add(1)
		cmd := fmt.Sprintf(`{"id":%d,"publish":{"channel":%q,"data":{"text":%q}}}`, id, sd.channel, makePayload(now, no, o.size))
		if err := sd.conn.write([]byte(cmd)); err != nil {
			st.sentAt.Delete(id)
			sd.conn.inflight.Add(-1)
			st.inflight.Add(-1)
			ts.sendErrs.Add(1)
			continue
		}
		ts.sent.Add(1)
	}
}

func (st *cfState) quiet() bool {
	return st.inflight.Load() <= 0 && st.unique.Load() >= st.expected.Load()
}

// delivery is the check of everything published so far: every publish answered, every member's
// publication received once, no foreign frame, no connection closed.
func (st *cfState) delivery(conns []*cfConn) deliveryCheck {
	dl := deliveryCheck{Acked: st.acked.Load(), Expected: st.expected.Load(), Duplicates: st.dups.Load(),
		Foreign: st.foreign.Load(), Unanswered: st.inflight.Load()}
	if u := st.unique.Load(); dl.Expected > u {
		dl.Missing = dl.Expected - u
	}
	for _, c := range conns {
		if c != nil && c.closed() {
			dl.Closed++
		}
	}
	st.mu.Lock()
	if len(st.errCodes) > 0 {
		dl.ErrorCodes = maps.Clone(st.errCodes)
	}
	st.mu.Unlock()
	dl.OK = dl.Acked > 0 && dl.Unanswered == 0 && dl.Missing == 0 && dl.Duplicates == 0 && dl.Closed == 0 && dl.Foreign == 0
	return dl
}

// cfQuiesce waits until every publish is answered and every promised delivery has arrived, or
// nothing has moved for a while, or limit has passed.
func cfQuiesce(ctx context.Context, st *cfState, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, lastMove := st.unique.Load(), time.Now()
	for !st.quiet() && ctx.Err() == nil && time.Now().Before(deadline) && time.Since(lastMove) < 5*time.Second {
		time.Sleep(20 * time.Millisecond)
		if u := st.unique.Load(); u != last {
			last, lastMove = u, time.Now()
		}
	}
}

// cfConnect dials len(conns) clients in parallel, client i subscribed to channelOf(i), each
// with its read loop reporting into st.
func (r *runner) cfConnect(ctx context.Context, st *cfState, conns []*cfConn, channelOf func(int) string) error {
	return parallel(ctx, len(conns), r.opt.dialWorkers, func(ctx context.Context, i int) error {
		c, err := r.cfDial(ctx, i, channelOf(i))
		if err != nil {
			return err
		}
		conns[i] = c
		go c.readLoop(r.connCtx, st)
		return nil
	}, func(done int) { r.logf("centrifugo: connected %d/%d", done, len(conns)) })
}

func (r *runner) cfCloseAll(conns []*cfConn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(2 * time.Second))
			_ = c.ws.WriteClose(rfc6455.StatusNormalClosure, "bench done")
			_ = c.ws.Close()
			<-c.done
		}()
	}
	wg.Wait()
}

// cfChat is the chat scenario against Centrifugo: the chat scenario's population (-chat-users
// connections, -chat-groups channels of -chat-group-size subscribers, -chat-senders publishers
// spread over the groups exactly as against NeruTalk) and its stepped total rates. Every message
// costs both servers the same frames (one publish in; its reply and one push per member out), so
// the CPU per message of the two, measured back to back, is what NeruTalk pays for persisting
// and ordering messages into many small groups. There are no history reads: Centrifugo's history
// is not what is measured.
func (r *runner) cfChat(ctx context.Context, res *result, floor *loopbackResults) error {
	o := r.opt
	if o.cfSecret == "" {
		return errors.New("-target centrifugo needs -centrifugo-secret (the client.token.hmac_secret_key of its config)")
	}
	n, size := o.chatUsers, o.chatGroupSize
	if o.chatGroups*size > n {
		return fmt.Errorf("-target centrifugo: %d groups of %d need %d users, one group each (have %d)", o.chatGroups, size, o.chatGroups*size, n)
	}
	if limit := r.connLimit(n); limit < n {
		return fmt.Errorf("%d users need %d connections; the open-file limits allow %d", n, n, limit)
	}
	senders := min(o.chatSenders, o.chatGroups*size)
	r.setDialer(n)
	prefix := runPrefix()
	// Group g holds users g*size ... g*size+size-1, as createGroups makes them; the users past
	// the groups connect without subscribing anywhere.
	channelOf := func(i int) string {
		if g := i / size; g < o.chatGroups {
			return fmt.Sprintf("%s:%s-chat-%d", o.cfNamespace, prefix, g)
		}
		return ""
	}
	st := &cfState{members: size, errCodes: map[string]int{}}
	conns := make([]*cfConn, n)
	defer r.cfCloseAll(conns)
	if err := r.cfConnect(ctx, st, conns, channelOf); err != nil {
		r.hintLimits(err)
		return err
	}
	res.Generator.Connections, res.Generator.SourceIPs = n, len(r.dialer.clients)
	// Sender k posts into group k mod G as that group's member (k / G) mod S.
	specs := make([]cfSender, senders)
	for k := range specs {
		g := k % o.chatGroups
		i := g*size + (k/o.chatGroups)%size
		specs[k] = cfSender{conns[i], channelOf(i)}
	}
	out := &chatResults{Users: n, Groups: o.chatGroups, GroupSize: size, Senders: senders}
	ro := r.runOpts()
	r.logf("centrifugo chat: %d users, %d channels of %d, %d senders, rates %v msg/s", n, o.chatGroups, size, senders, o.chatRates)
	for _, rate := range o.chatRates {
		ro.rate = rate
		var runs []trafficRun
		for i := range o.runs {
			if ctx.Err() != nil {
				break
			}
			run := r.cfRun(ctx, st, specs, ro)
			r.logf("  rate %.0f msg/s run %d/%d: acked %.0f/s, deliveries %.0f/s, ack p99 %.1f ms, e2e p50 %.1f p99 %.1f ms, missing %d, cpu server %s gen %s, server %s µs/msg%s",
				rate, i+1, o.runs, run.AckedPerS, run.DeliveriesPerS, run.Ack.P99MS, run.E2E.P50MS, run.E2E.P99MS, run.Missing,
				cores(run.CPU.ServerCores), cores(run.CPU.GeneratorCores), us(run.ServerUSPerAck), satNote(run.verdict))
			runs = append(runs, run)
		}
		if len(runs) == 0 {
			break
		}
		s := summarizeStep(rate, runs, o.slo)
		out.Steps = append(out.Steps, s)
		if s.Saturated && !o.keepGoing {
			break
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	out.Best = bestStep(out.Steps, e2eTarget)
	out.BestWithinBound, out.BoundP99MS = bestStep(out.Steps, o.bestP99), float64(o.bestP99)/float64(time.Millisecond)
	out.CPU = chatCPUTable(out.Steps, size, floor)
	cfQuiesce(ctx, st, o.drain)
	out.Delivery = st.delivery(conns)
	dl := &out.Delivery
	res.Results = out
	res.check(dl.OK, "centrifugo chat: %d acked, %d unanswered, %d deliveries missing, %d duplicate, %d foreign, %d connections closed %v",
		dl.Acked, dl.Unanswered, dl.Missing, dl.Duplicates, dl.Foreign, dl.Closed, dl.ErrorCodes)
	for _, s := range out.Steps {
		res.say("centrifugo %7.0f msg/s target  %8.0f acked/s  %8.0f deliv/s  ack p99 %6.1f  e2e p50 %6.1f p99 %7.1f ms  cpu srv %s gen %s stolen %s%s",
			s.TargetRate, s.AckedPerS.Median, s.DeliveriesPerS.Median, s.AckP99MS.Median, s.E2EP50MS.Median,
			s.E2EP99MS.Median, cores(s.ServerCores.Median), cores(s.GeneratorCores.Median), cores(s.StolenCores.Median), satNote(s.verdict))
	}
	sayChatCPU(res, out)
	return nil
}
