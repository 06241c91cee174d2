package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// loopRun is one measured window of a closed loop (each worker starts its next call when the
// previous one answers).
type loopRun struct {
	PerS     float64        `json:"per_s"`
	Latency  latencySummary `json:"latency"`
	Errors   uint64         `json:"errors"`
	FirstErr string         `json:"first_error,omitempty"`
	CPU      cpuUse         `json:"cpu"`
}

// closedLoop runs op on workers goroutines for warm-up plus window and measures the window.
func (r *runner) closedLoop(ctx context.Context, workers int, op func(ctx context.Context, w int) error) loopRun {
	return r.timedLoop(ctx, workers, func(ctx context.Context, w int) (time.Duration, error) {
		t0 := time.Now()
		err := op(ctx, w)
		return time.Since(t0), err
	})
}

// timedLoop is closedLoop for operations that time only part of themselves (a call set-up, not
// its end): op returns the duration to record. Operations that start in the warm-up or end after
// the window are not counted; after an error a worker pauses 100 ms (no spinning on a failing
// server).
func (r *runner) timedLoop(ctx context.Context, workers int, op func(ctx context.Context, w int) (time.Duration, error)) loopRun {
	start := time.Now()
	ws, we := start.Add(r.opt.warmup), start.Add(r.opt.warmup+r.opt.window)
	var h histogram
	var ok, errs atomic.Uint64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	var cpu cpuUse
	wg.Add(1)
	go func() {
		defer wg.Done()
		if sleepUntil(ctx, ws) {
			m := startCPU(r.opt.serverPIDs(), r.opt.dbMatch)
			if sleepUntil(ctx, we) {
				cpu = m.stop()
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(we) {
					return
				}
				took, err := op(ctx, w)
				t1 := time.Now()
				if t0.Before(ws) || !t1.Before(we) {
					if err != nil && !errors.Is(err, context.Canceled) {
						time.Sleep(100 * time.Millisecond) // do not spin on a failing server
					}
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(100 * time.Millisecond)
					continue
				}
				ok.Add(1)
				h.Record(took)
			}
		}()
	}
	wg.Wait()
	run := loopRun{PerS: perSecond(ok.Load(), r.opt.window.Seconds()), Latency: h.Summary(), Errors: errs.Load(), CPU: cpu}
	if v, _ := firstErr.Load().(string); v != "" {
		run.FirstErr = v
	}
	return run
}

type authPhase struct {
	PerS        spread    `json:"per_s"`
	P50MS       spread    `json:"p50_ms"`
	P99MS       spread    `json:"p99_ms"`
	ServerCores spread    `json:"server_cores"`
	Errors      uint64    `json:"errors"`
	Runs        []loopRun `json:"runs"`
}

func summarizeLoop(runs []loopRun) authPhase {
	p := authPhase{
		PerS:        spreadBy(runs, func(r loopRun) float64 { return r.PerS }),
		P50MS:       spreadBy(runs, func(r loopRun) float64 { return r.Latency.P50MS }),
		P99MS:       spreadBy(runs, func(r loopRun) float64 { return r.Latency.P99MS }),
		ServerCores: spreadBy(runs, func(r loopRun) float64 { return r.CPU.ServerCores }),
		Runs:        runs,
	}
	for _, r := range runs {
		p.Errors += r.Errors
	}
	return p
}

type authResults struct {
	Argon2  map[string]string `json:"argon2"`
	Users   int               `json:"users"`
	Workers int               `json:"workers"`
	Login   authPhase         `json:"login"`
	Refresh authPhase         `json:"refresh"`
}

// auth measures logins/s (one password hash each) and refreshes/s (token rotation, no hash).
func (r *runner) auth(ctx context.Context, res *result) error {
	o := r.opt
	if err := r.api.checkServer(ctx, "/auth/register", "/auth/login", "/auth/refresh"); err != nil {
		return err
	}
	out := &authResults{Users: o.authUsers, Workers: o.authWorkers, Argon2: map[string]string{"source": "unknown (no -pid)"}}
	if c := res.Server.Config; c != nil {
		out.Argon2 = map[string]string{"memory_kib": c["argon2_memory_kib"], "time": c["argon2_time"],
			"threads": c["argon2_threads"], "source": res.Server.ConfigSource}
	}
	users, err := r.registerUsers(ctx, runPrefix(), o.authUsers)
	if err != nil {
		return err
	}
	var logins []loopRun
	for i := range o.runs {
		lr := r.closedLoop(ctx, o.authWorkers, func(ctx context.Context, w int) error {
			u := users[w%len(users)]
			_, err := r.api.login(ctx, u.username, o.password)
			return err
		})
		r.logf("login run %d/%d: %.1f/s, p50 %.1f ms, p99 %.1f ms, errors %d, server %s cores", i+1, o.runs,
			lr.PerS, lr.Latency.P50MS, lr.Latency.P99MS, lr.Errors, cores(lr.CPU.ServerCores))
		logins = append(logins, lr)
	}
	// Every worker rotates its own session: log in once, then refresh with the newest token.
	tokens := make([]string, o.authWorkers)
	for w := range tokens {
		a, err := r.api.login(ctx, users[w%len(users)].username, o.password)
		if err != nil {
			return fmt.Errorf("login before refresh: %w", err)
		}
		tokens[w] = a.RefreshToken
	}
	var refreshes []loopRun
	for i := range o.runs {
		rr := r.closedLoop(ctx, o.authWorkers, func(ctx context.Context, w int) error {
			a, err := r.api.refresh(ctx, tokens[w])
			if err != nil {
				return err
			}
			tokens[w] = a.RefreshToken // only worker w touches tokens[w]
			return nil
		})
		r.logf("refresh run %d/%d: %.1f/s, p50 %.1f ms, p99 %.1f ms, errors %d, server %s cores", i+1, o.runs,
			rr.PerS, rr.Latency.P50MS, rr.Latency.P99MS, rr.Errors, cores(rr.CPU.ServerCores))
		refreshes = append(refreshes, rr)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	out.Login, out.Refresh = summarizeLoop(logins), summarizeLoop(refreshes)
	res.Results = out
	res.check(out.Login.Errors == 0, "%d login errors (first: %s)", out.Login.Errors, firstErrOf(logins))
	res.check(out.Refresh.Errors == 0, "%d refresh errors (first: %s)", out.Refresh.Errors, firstErrOf(refreshes))
	res.say("argon2id: %s KiB, %s iterations, %s thread(s) (%s)", out.Argon2["memory_kib"], out.Argon2["time"],
		out.Argon2["threads"], out.Argon2["source"])
	res.say("logins:    %8.1f/s  p50 %6.1f ms  p99 %6.1f ms  server %s cores  (%d workers)",
		out.Login.PerS.Median, out.Login.P50MS.Median, out.Login.P99MS.Median, cores(out.Login.ServerCores.Median), o.authWorkers)
	res.say("refreshes: %8.1f/s  p50 %6.1f ms  p99 %6.1f ms  server %s cores",
		out.Refresh.PerS.Median, out.Refresh.P50MS.Median, out.Refresh.P99MS.Median, cores(out.Refresh.ServerCores.Median))
	return nil
}

func firstErrOf(runs []loopRun) string {
	for _, r := range runs {
		if r.FirstErr != "" {
			return r.FirstErr
		}
	}
	return "-"
}
