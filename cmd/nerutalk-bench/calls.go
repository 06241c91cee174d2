package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// callsResults is the calls scenario: call set-ups with background calls in progress, and, in
// the same run on the same connections, chat message round trips as the yardstick.
type callsResults struct {
	Background int `json:"background_calls"` // active calls held open during the measurement
	Workers    int `json:"workers"`          // caller/callee pairs setting up calls in a closed loop
	// SetUp: POST /calls → call_initiated on the callee's socket → POST /calls/{id}/answer (with
	// credentials) → call_answered on the caller's socket. The end of each call is not timed.
	SetUp loopPhase `json:"setup"`
	// Message: send_message on the caller's socket → message_new on the callee's.
	Message loopPhase `json:"message_round_trip"`
	// Ratios of the two, measured in the same run: what survives the machine's drift.
	SetUpPerMessageP99 float64 `json:"setup_p99_per_message_p99"`
	MessagesPerSetUp   float64 `json:"messages_per_s_per_setups_per_s"`
	// ServerCPUMSPerSetUp is the server's CPU time per set-up (with the end of the call), with -pid.
	ServerCPUMSPerSetUp float64 `json:"server_cpu_ms_per_setup,omitempty"`
}

type loopPhase struct {
	PerS        spread    `json:"per_s"`
	P50MS       spread    `json:"p50_ms"`
	P99MS       spread    `json:"p99_ms"`
	ServerCores spread    `json:"server_cores"`
	Errors      uint64    `json:"errors"`
	Runs        []loopRun `json:"runs"`
}

func summarizePhase(runs []loopRun) loopPhase {
	p := authPhase(summarizeLoop(runs))
	return loopPhase(p)
}

// callWaits routes the frames a pair waits for to the waiting worker.
type callWaits struct {
	mu sync.Mutex
	ch map[*user]map[string]chan struct{} // user → frame type → signal
}

func (w *callWaits) add(u *user, types ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[string]chan struct{}{}
	for _, t := range types {
		m[t] = make(chan struct{}, 64)
	}
	w.ch[u] = m
}

func (w *callWaits) handle(c *conn, _ time.Time, f *inFrame) {
	w.mu.Lock()
	ch := w.ch[c.u][f.Type]
	w.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (w *callWaits) wait(ctx context.Context, u *user, typ string) error {
	w.mu.Lock()
	ch := w.ch[u][typ]
	w.mu.Unlock()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return fmt.Errorf("no %s for %s within 10 s", typ, u.username)
	case <-ctx.Done():
		return ctx.Err()
	}
}

type callAnswer struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Credentials struct {
		Provider string `json:"provider"`
		Channel  string `json:"channel"`
	} `json:"credentials"`
}

// calls holds -call-background calls active and measures call set-ups per second and their
// latency with -call-workers pairs in a closed loop, then message round trips on the same pairs.
func (r *runner) calls(ctx context.Context, res *result) error {
	o := r.opt
	if err := r.api.checkServer(ctx, "/calls", "/calls/{id}/answer", "/calls/{id}/end"); err != nil {
		return err
	}
	pairs := o.callBackground + o.callWorkers
	n := 2 * pairs
	if limit := r.connLimit(n); limit < n {
		return fmt.Errorf("%d users need %d connections; the open-file limits allow %d", n, n, limit)
	}
	r.setDialer(n)
	users, err := r.registerUsers(ctx, runPrefix(), n)
	if err != nil {
		return err
	}
	chats := make([]*benchChat, pairs)
	if err := parallel(ctx, pairs, o.setupWorkers, func(ctx context.Context, p int) error {
		ch, err := r.createDirect(ctx, users, 2*p, 2*p+1)
		chats[p] = ch
		return err
	}, func(done int) { r.logf("created %d/%d direct chats", done, pairs) }); err != nil {
		return err
	}
	waits := &callWaits{ch: map[*user]map[string]chan struct{}{}}
	for p := range pairs {
		waits.add(users[2*p], "call_answered")
		waits.add(users[2*p+1], "call_initiated", "message_new")
	}
	conns := make([]*conn, n)
	defer r.closeAll(conns)
	if err := r.connectAll(ctx, users, conns, 0, n, waits.handle); err != nil {
		r.hintLimits(err)
		return err
	}
	res.Generator.Connections, res.Generator.SourceIPs = n, len(r.dialer.clients)
	if _, closed := r.settleSetup(conns, nil); closed > 0 {
		return fmt.Errorf("the server closed %d connections while the users came online", closed)
	}
	// The background calls: started and answered, then left active.
	if err := parallel(ctx, o.callBackground, o.setupWorkers, func(ctx context.Context, p int) error {
		var c callAnswer
		if err := r.api.authed(ctx, users[2*p], http.MethodPost, "/calls", map[string]any{"chat_id": chats[p].id, "kind": "audio"}, &c); err != nil {
			return fmt.Errorf("background call: %w", err)
		}
		return r.api.authed(ctx, users[2*p+1], http.MethodPost, "/calls/"+c.ID+"/answer", nil, nil)
	}, func(done int) { r.logf("background calls %d/%d", done, o.callBackground) }); err != nil {
		return err
	}
	r.frames.waitQuiet(time.Second, time.Minute)

	out := &callsResults{Background: o.callBackground, Workers: o.callWorkers}
	base := o.callBackground
	var setups, msgs []loopRun
	var seq atomic.Uint64
	for i := range o.runs {
		lr := r.timedLoop(ctx, o.callWorkers, func(ctx context.Context, w int) (time.Duration, error) {
			caller, callee, chat := users[2*(base+w)], users[2*(base+w)+1], chats[base+w]
			t0 := time.Now()
			var c callAnswer
			if err := r.api.authed(ctx, caller, http.MethodPost, "/calls", map[string]any{"chat_id": chat.id, "kind": "video"}, &c); err != nil {
				return 0, fmt.Errorf("start: %w", err)
			}
			if err := waits.wait(ctx, callee, "call_initiated"); err != nil {
				return 0, err
			}
			var a callAnswer
			if err := r.api.authed(ctx, callee, http.MethodPost, "/calls/"+c.ID+"/answer", nil, &a); err != nil {
				return 0, fmt.Errorf("answer: %w", err)
			}
			if a.Status != "active" || a.Credentials.Channel == "" {
				return 0, fmt.Errorf("answer: status %q, credentials %+v", a.Status, a.Credentials)
			}
			if err := waits.wait(ctx, caller, "call_answered"); err != nil {
				return 0, err
			}
			took := time.Since(t0)
			if err := r.api.authed(ctx, caller, http.MethodPost, "/calls/"+c.ID+"/end", nil, nil); err != nil {
				return took, fmt.Errorf("end: %w", err)
			}
			return took, nil
		})
		r.logf("call set-up run %d/%d: %.1f/s, p50 %.1f ms, p99 %.1f ms, errors %d, server %s cores", i+1, o.runs,
			lr.PerS, lr.Latency.P50MS, lr.Latency.P99MS, lr.Errors, cores(lr.CPU.ServerCores))
		setups = append(setups, lr)
		mr := r.timedLoop(ctx, o.callWorkers, func(ctx context.Context, w int) (time.Duration, error) {
			p := base + w
			t0 := time.Now()
			id := strconv.FormatUint(seq.Add(1), 10)
			if err := conns[2*p].send(ctx, "send_message", "", map[string]any{"chat_id": chats[p].id, "client_id": "m" + id + "-" + chats[p].id[:8], "text": "hello"}); err != nil {
				return 0, err
			}
			if err := waits.wait(ctx, users[2*p+1], "message_new"); err != nil {
				return 0, err
			}
			return time.Since(t0), nil
		})
		r.logf("message round trip run %d/%d: %.1f/s, p50 %.1f ms, p99 %.1f ms, errors %d", i+1, o.runs,
			mr.PerS, mr.Latency.P50MS, mr.Latency.P99MS, mr.Errors)
		msgs = append(msgs, mr)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	out.SetUp, out.Message = summarizePhase(setups), summarizePhase(msgs)
	if m := out.Message.P99MS.Median; m > 0 {
		out.SetUpPerMessageP99 = round3(out.SetUp.P99MS.Median / m)
	}
	if s := out.SetUp.PerS.Median; s > 0 {
		out.MessagesPerSetUp = round3(out.Message.PerS.Median / s)
		if c := out.SetUp.ServerCores.Median; c > 0 {
			out.ServerCPUMSPerSetUp = round3(c * 1000 / s)
		}
	}
	res.Results = out
	res.check(out.SetUp.Errors == 0, "%d call set-up errors (first: %s)", out.SetUp.Errors, firstErrOf(setups))
	res.check(out.Message.Errors == 0, "%d message errors (first: %s)", out.Message.Errors, firstErrOf(msgs))
	res.say("call set-ups: %8.1f/s  p50 %6.1f ms  p99 %6.1f ms  server %s cores  (%d workers, %d calls in progress)",
		out.SetUp.PerS.Median, out.SetUp.P50MS.Median, out.SetUp.P99MS.Median, cores(out.SetUp.ServerCores.Median), o.callWorkers, o.callBackground)
	res.say("messages:     %8.1f/s  p50 %6.1f ms  p99 %6.1f ms  (same pairs, same run)",
		out.Message.PerS.Median, out.Message.P50MS.Median, out.Message.P99MS.Median)
	res.say("ratios: set-up p99 / message p99 = %.2f; messages/s per set-up/s = %.2f; server CPU per set-up %.2f ms",
		out.SetUpPerMessageP99, out.MessagesPerSetUp, out.ServerCPUMSPerSetUp)
	return nil
}
