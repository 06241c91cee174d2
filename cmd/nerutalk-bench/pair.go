package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The bystander pair (bystander.go) is measured on the generator's host, which also runs the
// abuse. On one machine the two share the generator's core: an abuser writing a 2 MB upload to a
// loopback socket spends milliseconds in the kernel (on loopback the receiving side's TCP work
// runs in the sender's context), and the bystander's client waits for that core behind it. The
// bystander then measures its own client's queue, not the server. Real abusers sit on other
// machines, so by default (-bystander-isolation idle) the pair runs in a process of its own at
// normal priority and the tool's process, which runs the abuse, moves itself to SCHED_IDLE: the
// abuse still runs flat out, on whatever CPU the bystander's client leaves. -bystander-isolation
// process keeps both at the same priority; none runs the pair inside the tool as before.

// Bystander isolation modes (-bystander-isolation).
const (
	isolateNone    = "none"
	isolateProcess = "process"
	isolateIdle    = "idle"
)

// pairEnv marks a process started as the bystander pair (see pairChildMain).
const pairEnv = "NERUTALK_BENCH_PAIR"

// pairEvents receives what the pair does: each send (recv is zero), each ack and each delivery,
// with the message's send time. It is called from several goroutines.
type pairEvents func(kind byte, sent, recv time.Time)

// Kinds of pair events.
const (
	pairSent      = 's'
	pairAcked     = 'a'
	pairDelivered = 'd'
)

// connectPair opens the pair's WebSockets (a sends, b receives) and reports acks and deliveries
// of the tool's own messages to ev.
func (r *runner) connectPair(ctx context.Context, a, b *user, ev pairEvents) ([]*conn, error) {
	h := func(c *conn, recv time.Time, f *inFrame) {
		switch {
		case f.Type == "ack" && c.u == a:
			c.inflight.Add(-1)
			if at, _, ok := parsePayload(f.Data.Text); ok {
				ev(pairAcked, at, recv)
			}
		case f.Type == "error" && c.u == a:
			c.inflight.Add(-1)
		case f.Type == "message_new" && c.u == b:
			if at, _, ok := parsePayload(f.Data.Text); ok {
				ev(pairDelivered, at, recv)
			}
		}
	}
	r.setDialer(2)
	conns := make([]*conn, 2)
	if err := r.connectAll(ctx, []*user{a, b}, conns, 0, 2, h); err != nil {
		r.closeAll(conns)
		return nil, err
	}
	return conns, nil
}

// sendPair sends from the pair's first connection into chatID at -bystander-rate (open loop,
// skipping a tick while -max-inflight messages are unanswered) until ctx ends.
func (r *runner) sendPair(ctx context.Context, conns []*conn, chatID string, ev pairEvents) {
	o := r.opt
	every := time.Duration(float64(time.Second) / o.bystanderRate)
	next := time.Now()
	for n := uint64(0); ctx.Err() == nil; n++ {
		next = next.Add(every)
		if !sleepUntil(ctx, next) {
			return
		}
		now := time.Now()
		if conns[0].inflight.Load() >= int64(o.inflight) {
			continue
		}
		conns[0].inflight.Add(1)
		ev(pairSent, now, time.Time{})
		data := map[string]any{"chat_id": chatID, "client_id": fmt.Sprintf("by-%d-%d", now.UnixNano(), n), "text": makePayload(now, n, o.size)}
		if conns[0].send(ctx, "send_message", "s"+strconv.FormatUint(n, 10), data) != nil {
			return
		}
	}
}

// startPair connects the pair and sends until stop, which stops sending, waits a moment for the
// answers still due (as a phase's drain does) and closes the connections. It runs the pair inside
// this process: in the tool with -bystander-isolation none, in the pair's own process otherwise.
func (r *runner) startPair(ctx context.Context, a, b *user, chatID string, ev pairEvents) (stop func(), err error) {
	conns, err := r.connectPair(ctx, a, b, ev)
	if err != nil {
		return nil, err
	}
	sendCtx, stopSend := context.WithCancel(ctx)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		r.sendPair(sendCtx, conns, chatID, ev)
	}()
	return func() {
		stopSend()
		<-sent
		for deadline := time.Now().Add(5 * time.Second); conns[0].inflight.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		r.closeAll(conns)
	}, nil
}

// pairSpec is what the tool hands the pair's process on its standard input.
type pairSpec struct {
	WSBases     []string `json:"ws_bases"`
	A           pairUser `json:"a"`
	B           pairUser `json:"b"`
	ChatID      string   `json:"chat_id"`
	RatePerS    float64  `json:"rate_per_s"`
	MaxInflight int      `json:"max_inflight"`
	Size        int      `json:"size"`
}

type pairUser struct {
	ID     string `json:"id"`
	Access string `json:"access"`
}

// startPairProcess starts the pair in a process of its own (the tool's own binary again, with
// pairEnv set) and relays its events to ev. The pair is connected when it returns; stop ends it
// and waits for its last events.
func (r *runner) startPairProcess(ctx context.Context, a, b *user, chatID string, ev pairEvents) (stop func() error, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), pairEnv+"=1")
	cmd.Stderr = r.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	kill := func() { _ = in.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() }
	spec := pairSpec{WSBases: r.opt.wsBases, A: pairUser{a.id, a.token()}, B: pairUser{b.id, b.token()}, ChatID: chatID,
		RatePerS: r.opt.bystanderRate, MaxInflight: r.opt.inflight, Size: r.opt.size}
	if err := json.NewEncoder(in).Encode(spec); err != nil {
		kill()
		return nil, fmt.Errorf("bystander pair process: %w", err)
	}
	lines := bufio.NewScanner(out)
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for lines.Scan() {
			if first {
				first = false
				if lines.Text() != "ready" {
					ready <- fmt.Errorf("bystander pair process: %s", lines.Text())
					return
				}
				ready <- nil
				continue
			}
			kind, sent, recv, ok := parsePairEvent(lines.Text())
			if ok {
				ev(kind, sent, recv)
			}
		}
		if first {
			ready <- errors.New("bystander pair process: ended before it connected")
		}
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		kill()
		return nil, err
	}
	return func() error {
		_ = in.Close() // the pair stops sending, waits for its answers and exits
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("bystander pair process: %w", err)
		}
		return nil
	}, nil
}

// pairEventLine and parsePairEvent are the pair process's output: "<kind> <sent ns> <recv ns>".
func pairEventLine(kind byte, sent, recv time.Time) string {
	var rn int64
	if !recv.IsZero() {
		rn = recv.UnixNano()
	}
	return fmt.Sprintf("%c %d %d\n", kind, sent.UnixNano(), rn)
}

func parsePairEvent(line string) (kind byte, sent, recv time.Time, ok bool) {
	f := strings.Fields(line)
	if len(f) != 3 || len(f[0]) != 1 {
		return 0, time.Time{}, time.Time{}, false
	}
	s, err1 := strconv.ParseInt(f[1], 10, 64)
	r, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, time.Time{}, time.Time{}, false
	}
	if r != 0 {
		recv = time.Unix(0, r)
	}
	return f[0][0], time.Unix(0, s), recv, true
}

// isPairChild reports whether this process was started as the bystander pair.
func isPairChild() bool { return os.Getenv(pairEnv) == "1" }

// pairChildMain runs the bystander pair described on in (a pairSpec), writes "ready" once it is
// connected and then its events to out, and stops when in is closed: it stops sending, waits a
// moment for the last answers, and closes its connections.
func pairChildMain(in io.Reader, out io.Writer) error {
	br := bufio.NewReader(in)
	var spec pairSpec
	if err := json.NewDecoder(br).Decode(&spec); err != nil {
		return fmt.Errorf("pair spec: %w", err)
	}
	if len(spec.WSBases) == 0 || spec.RatePerS <= 0 {
		return errors.New("pair spec: no server or no rate")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := &options{wsBases: spec.WSBases, bystanderRate: spec.RatePerS, inflight: max(spec.MaxInflight, 1),
		size: spec.Size, dialWorkers: 2, perIP: 25000}
	r := &runner{opt: o, connCtx: ctx, stderr: io.Discard, start: time.Now()}
	var mu sync.Mutex
	write := func(s string) { // a failed write means the tool is gone, and so is our input
		mu.Lock()
		defer mu.Unlock()
		_, _ = io.WriteString(out, s)
	}
	a, b := &user{id: spec.A.ID, access: spec.A.Access}, &user{idx: 1, id: spec.B.ID, access: spec.B.Access}
	stop, err := r.startPair(ctx, a, b, spec.ChatID, func(kind byte, sent, recv time.Time) { write(pairEventLine(kind, sent, recv)) })
	if err != nil {
		write("error " + err.Error() + "\n")
		return err
	}
	write("ready\n")
	_, _ = io.Copy(io.Discard, br) // until the tool closes our input
	stop()
	return nil
}
