package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The loopback scenario measures what this machine charges for moving small frames over loopback
// TCP with nothing else going on: no WebSocket framing, no JSON, no database, no server. N
// connections, one write(2) of one frame per delivery, one reader goroutine per connection (as
// the generator reads), both ends in this process. Its CPU per frame is the floor under every
// real-time figure of the other scenarios, which pay it once per delivered frame on each side:
// a chat step's server + generator cores cannot fall below frames/s × this cost.

type loopbackStep struct {
	TargetPerS    float64 `json:"target_frames_per_s"`
	FramesPerS    spread  `json:"frames_per_s"`
	Cores         spread  `json:"cores"` // both ends together
	UserCores     spread  `json:"user_cores"`
	SystemCores   spread  `json:"system_cores"`
	CPUUSPerFrame spread  `json:"cpu_us_per_frame"` // both ends together
	StolenCores   spread  `json:"stolen_cores"`
}

type loopbackResults struct {
	Conns      int            `json:"conns"`
	FrameBytes int            `json:"frame_bytes"`
	Writers    int            `json:"writers"`
	Steps      []loopbackStep `json:"steps"`
}

// loopbackRun is one measured window.
type loopbackRun struct {
	framesPerS, user, sys, steal float64
}

func (r *runner) loopback(ctx context.Context, res *result) error {
	o := r.opt
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	n := o.loopbackConns
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	frame := make([]byte, o.loopbackFrame)
	for i := range frame {
		frame[i] = 'x'
	}
	var received atomic.Int64 // bytes read by every client
	var readers sync.WaitGroup
	var clients, servers []net.Conn
	defer func() {
		for _, c := range append(clients, servers...) {
			c.Close()
		}
		readers.Wait()
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	for len(clients) < n {
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			r.warn("loopback: %d of %d connections opened: %v", len(clients), n, err)
			break
		}
		clients = append(clients, c)
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 4096)
			for {
				k, err := c.Read(buf)
				received.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
	for len(servers) < len(clients) {
		select {
		case c := <-accepted:
			servers = append(servers, c)
		case <-time.After(5 * time.Second):
			return errors.New("loopback: accepted fewer connections than were dialled")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(servers) == 0 {
		return errors.New("loopback: no connection")
	}
	writers := runtime.GOMAXPROCS(0)
	out := &loopbackResults{Conns: len(servers), FrameBytes: len(frame), Writers: writers}
	r.logf("loopback: %d connections, %d-byte frames, %d writer goroutines, rates %v frames/s", len(servers), len(frame), writers, o.loopbackRates)
	for _, rate := range o.loopbackRates {
		var runs []loopbackRun
		for i := range o.runs {
			lr, err := r.loopbackWindow(ctx, servers, frame, rate, writers, &received)
			if err != nil {
				return err
			}
			r.logf("  loopback %.0f frames/s run %d/%d: %.0f frames/s, user %.2f + system %.2f cores, %.1f µs per frame",
				rate, i+1, o.runs, lr.framesPerS, lr.user, lr.sys, perFrameUS(lr))
			runs = append(runs, lr)
		}
		st := loopbackStep{TargetPerS: rate}
		pick := func(f func(loopbackRun) float64) spread {
			v := make([]float64, len(runs))
			for i, x := range runs {
				v[i] = round3(f(x))
			}
			return spreadOf(v)
		}
		st.FramesPerS = pick(func(x loopbackRun) float64 { return x.framesPerS })
		st.Cores = pick(func(x loopbackRun) float64 { return x.user + x.sys })
		st.UserCores = pick(func(x loopbackRun) float64 { return x.user })
		st.SystemCores = pick(func(x loopbackRun) float64 { return x.sys })
		st.CPUUSPerFrame = pick(perFrameUS)
		st.StolenCores = pick(func(x loopbackRun) float64 { return x.steal })
		out.Steps = append(out.Steps, st)
		res.say("%7.0f frames/s target  %8.0f frames/s  cores %.2f (user %.2f, system %.2f)  %.1f µs of CPU per frame, both ends  stolen %.2f",
			rate, st.FramesPerS.Median, st.Cores.Median, st.UserCores.Median, st.SystemCores.Median, st.CPUUSPerFrame.Median, st.StolenCores.Median)
	}
	res.Results = out
	return nil
}

func perFrameUS(x loopbackRun) float64 {
	if x.framesPerS <= 0 {
		return 0
	}
	return (x.user + x.sys) / x.framesPerS * 1e6
}

// loopbackWindow writes frames at rate (spread over the connections in turn, by writers
// goroutines each owning a share of them) for the warm-up and the window, and measures the window.
func (r *runner) loopbackWindow(ctx context.Context, conns []net.Conn, frame []byte, rate float64, writers int, received *atomic.Int64) (loopbackRun, error) {
	o := r.opt
	start := time.Now()
	ws, we := start.Add(o.warmup), start.Add(o.warmup+o.window)
	var wg sync.WaitGroup
	var werr atomic.Value
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []net.Conn
			for i := w; i < len(conns); i += writers {
				mine = append(mine, conns[i])
			}
			per := rate / float64(writers)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			sent, next := 0, 0
			for ctx.Err() == nil {
				now := <-tick.C
				if !now.Before(we) {
					return
				}
				for due := int(now.Sub(start).Seconds() * per); sent < due; sent++ {
					if _, err := mine[next].Write(frame); err != nil {
						werr.CompareAndSwap(nil, err)
						return
					}
					next = (next + 1) % len(mine)
				}
			}
		}()
	}
	var run loopbackRun
	if sleepUntil(ctx, ws) {
		b0, u0 := received.Load(), rusageSelf()
		st0, _ := machineSteal()
		t0 := time.Now()
		if sleepUntil(ctx, we) {
			el := time.Since(t0).Seconds()
			u1 := rusageSelf()
			st1, _ := machineSteal()
			run = loopbackRun{
				framesPerS: float64(received.Load()-b0) / float64(len(frame)) / el,
				user:       (u1.user - u0.user) / el, sys: (u1.sys - u0.sys) / el, steal: (st1 - st0) / el,
			}
		}
	}
	wg.Wait()
	if err, _ := werr.Load().(error); err != nil && !errors.Is(err, io.EOF) {
		return run, fmt.Errorf("loopback write: %w", err)
	}
	// Let the readers catch up before the next window.
	time.Sleep(200 * time.Millisecond)
	return run, ctx.Err()
}

type cpuTimes struct{ user, sys float64 }

func rusageSelf() cpuTimes {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuTimes{user: float64(ru.Utime.Nano()) / 1e9, sys: float64(ru.Stime.Nano()) / 1e9}
}
