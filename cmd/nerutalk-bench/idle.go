package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// idleLevel is the server's footprint with Conns connections open and quiet.
type idleLevel struct {
	Requested         int    `json:"requested"`
	Conns             int    `json:"connections"`
	RSSBytes          spread `json:"rss_bytes"`
	HeapInuseBytes    spread `json:"heap_inuse_bytes"`
	Goroutines        spread `json:"goroutines"`
	RSSPerConn        spread `json:"rss_bytes_per_conn"`
	HeapPerConn       spread `json:"heap_inuse_bytes_per_conn"`
	StackPerConn      spread `json:"stack_inuse_bytes_per_conn"`
	GoroutinesPerConn spread `json:"goroutines_per_conn"`
	AliveChecked      int    `json:"alive_checked"`
	Alive             int    `json:"alive"`
	Closed            int    `json:"closed_by_server"`
	// What connecting this level's new connections made the server send, until the frames
	// stopped (presence, mostly): the server's own count (nerutalk_ws_frames_out_total; -1 when
	// it has none), what the clients received by type, and per new connection.
	Partial             string            `json:"partial,omitempty"` // why the level has fewer connections than requested
	NewConns            int               `json:"new_connections"`
	ConnectS            float64           `json:"connect_s"`
	QuietAfterS         float64           `json:"quiet_after_s"` // from the last connection to the frames stopping
	FramesOut           float64           `json:"server_frames_out"`
	FramesOutPerNewConn float64           `json:"server_frames_out_per_new_conn"`
	FramesReceived      map[string]uint64 `json:"frames_received"`
	Samples             []serverSample    `json:"samples"`
}

type idleResults struct {
	Users       int               `json:"users"`
	DirectChats int               `json:"direct_chats"`
	Groups      int               `json:"groups"`
	GroupSize   int               `json:"group_size"`
	OneGroup    bool              `json:"one_group"` // every user in one group of them all, no direct chats
	Baseline    serverSample      `json:"baseline"`
	Levels      []idleLevel       `json:"levels"`
	Frames      map[string]uint64 `json:"frames_received"` // what the quiet connections received (presence)
}

// idle opens N quiet, authenticated WebSockets (each user in a direct chat and a group) and
// reports what each costs the server.
func (r *runner) idle(ctx context.Context, res *result) error {
	o := r.opt
	if err := r.api.checkServer(ctx, "/auth/register", "/chats"); err != nil {
		return err
	}
	levels := append([]int(nil), o.idleConns...)
	limit := r.connLimit(levels[len(levels)-1])
	for i, n := range levels {
		if n > limit {
			r.warn("the %d-connection step runs with %d connections: the open-file limits allow no more", n, limit)
			levels[i] = limit
		}
	}
	n := 0
	for _, l := range levels {
		n = max(n, l)
	}
	n += n % 2 // direct chats pair users
	r.setDialer(n)
	prefix := runPrefix()
	users, err := r.registerUsers(ctx, prefix, n)
	if err != nil {
		return err
	}
	out := &idleResults{Users: n, GroupSize: o.groupSize, OneGroup: o.oneGroup}
	if o.oneGroup {
		// One group of every user, made while nobody is online (so setting it up sends nothing);
		// connecting then shows what presence costs in a big group.
		members := make([]int, n)
		for i := range members {
			members[i] = i
		}
		r.logf("creating one group of %d members", n)
		if _, err := r.createGroup(ctx, users, members, prefix+" one group"); err != nil {
			return err
		}
		out.Groups, out.GroupSize = 1, n
	} else {
		// Every user: one direct chat (pairs 2i, 2i+1) and one group (consecutive blocks).
		pairs := n / 2
		if err := parallel(ctx, pairs, o.setupWorkers, func(ctx context.Context, i int) error {
			_, err := r.createDirect(ctx, users, 2*i, 2*i+1)
			return err
		}, func(done int) { r.logf("created %d/%d direct chats", done, pairs) }); err != nil {
			return err
		}
		out.DirectChats = pairs
		groups := (n + o.groupSize - 1) / o.groupSize
		if _, err := r.createGroups(ctx, users, groups, min(o.groupSize, n), prefix); err != nil {
			return err
		}
		out.Groups = groups
	}

	pings := &pingWaiter{waiting: map[string]chan struct{}{}}
	conns := make([]*conn, n)
	defer r.closeAll(conns)

	r.logf("baseline: settling %v", o.settle)
	if !sleepUntil(ctx, time.Now().Add(o.settle)) {
		return ctx.Err()
	}
	base, err := r.sampleMedian(ctx, o.runs)
	if err != nil {
		return err
	}
	out.Baseline = base
	r.logf("baseline: RSS %.1f MiB, heap %.1f MiB, %v goroutines", base.RSSBytes/(1<<20), base.HeapInuseBytes/(1<<20), base.Goroutines)

	opened := 0
	for i, want := range levels {
		lv := idleLevel{Requested: o.idleConns[i], FramesOut: -1, FramesOutPerNewConn: -1}
		if want > opened {
			before, errBefore := r.probe.sample(ctx)
			recvBefore := r.frames.snapshot()
			t0 := time.Now()
			if err := r.connectAll(ctx, users, conns, opened, want, pings.handle); err != nil {
				// Measure what did connect (the dials run in parallel, so the open ones may
				// not be the first ones), then stop.
				got := compactConns(conns[opened:want])
				r.warn("the %d-connection level stopped at %d connections: %v", want, opened+got, err)
				r.hintLimits(err)
				if got == 0 {
					break
				}
				lv.Partial = fmt.Sprintf("stopped at %d of %d connections: %v", opened+got, want, err)
				want = opened + got
			}
			lv.NewConns, lv.ConnectS = want-opened, round3(time.Since(t0).Seconds())
			opened = want
			// Wait for what the arrivals made the server send to stop (2 s without a frame).
			waited, quiet := r.frames.waitQuiet(2*time.Second, o.backlog)
			lv.QuietAfterS = round3(waited.Seconds())
			if !quiet {
				r.warn("%d connections: frames still arriving after %v", opened, waited.Round(time.Second))
			}
			lv.FramesReceived = r.frames.since(recvBefore)
			if after, err := r.probe.sample(ctx); err == nil && errBefore == nil && before.FramesOut >= 0 && after.FramesOut >= 0 {
				lv.FramesOut = after.FramesOut - before.FramesOut
				lv.FramesOutPerNewConn = round3(lv.FramesOut / float64(lv.NewConns))
			}
			r.logf("%d connections: connecting %d took %.1fs, then %.1fs until quiet; server sent %.0f frames (%.1f per new connection); clients received %s",
				opened, lv.NewConns, lv.ConnectS, lv.QuietAfterS, lv.FramesOut, lv.FramesOutPerNewConn, describeCounts(lv.FramesReceived))
		}
		r.logf("%d connections: settling %v", opened, o.settle)
		if !sleepUntil(ctx, time.Now().Add(o.settle)) {
			return ctx.Err()
		}
		lv.Conns = opened
		for k := range o.runs {
			if k > 0 && !sleepUntil(ctx, time.Now().Add(time.Second)) {
				return ctx.Err()
			}
			s, err := r.probe.sample(ctx)
			if err != nil {
				return err
			}
			lv.Samples = append(lv.Samples, s)
		}
		per := func(f func(serverSample) float64) spread {
			return spreadBy(lv.Samples, func(s serverSample) float64 { return (f(s) - f(base)) / float64(opened) })
		}
		lv.RSSBytes = spreadBy(lv.Samples, func(s serverSample) float64 { return s.RSSBytes })
		lv.HeapInuseBytes = spreadBy(lv.Samples, func(s serverSample) float64 { return s.HeapInuseBytes })
		lv.Goroutines = spreadBy(lv.Samples, func(s serverSample) float64 { return s.Goroutines })
		lv.RSSPerConn = per(func(s serverSample) float64 { return s.RSSBytes })
		lv.HeapPerConn = per(func(s serverSample) float64 { return s.HeapInuseBytes })
		lv.StackPerConn = per(func(s serverSample) float64 { return s.StackInuse })
		lv.GoroutinesPerConn = per(func(s serverSample) float64 { return s.Goroutines })
		lv.AliveChecked, lv.Alive = pings.check(ctx, conns[:opened], 50)
		r.prof.heap(ctx, fmt.Sprintf("idle-%d", opened), r.logf)
		for _, c := range conns[:opened] {
			if c.closed() {
				lv.Closed++
			}
		}
		r.logf("%d connections: RSS %.1f KiB/conn, heap %.1f KiB/conn, stacks %.1f KiB/conn, %.2f goroutines/conn, %d/%d answered a ping, %d closed",
			opened, lv.RSSPerConn.Median/1024, lv.HeapPerConn.Median/1024, lv.StackPerConn.Median/1024, lv.GoroutinesPerConn.Median,
			lv.Alive, lv.AliveChecked, lv.Closed)
		out.Levels = append(out.Levels, lv)
		if lv.Partial != "" {
			res.check(false, "%d connections: %s", lv.Requested, lv.Partial)
			break
		}
		res.check(lv.Closed == 0, "%d of %d idle connections were closed by the server", lv.Closed, opened)
		res.check(lv.Alive == lv.AliveChecked, "%d of %d sampled idle connections did not answer a ping", lv.AliveChecked-lv.Alive, lv.AliveChecked)
	}
	out.Frames = r.frames.snapshot()
	res.Results = out
	if len(out.Levels) == 0 {
		res.check(false, "no connection level was reached")
		return nil
	}
	top := out.Levels[len(out.Levels)-1]
	res.Generator.Connections, res.Generator.SourceIPs = top.Conns, len(r.dialer.clients)
	for _, lv := range out.Levels {
		res.say("%6d conns: RSS %7.1f MiB (%5.1f KiB/conn), heap %6.1f MiB (%5.1f KiB/conn), stacks %5.1f KiB/conn, %.2f goroutines/conn",
			lv.Conns, lv.RSSBytes.Median/(1<<20), lv.RSSPerConn.Median/1024, lv.HeapInuseBytes.Median/(1<<20),
			lv.HeapPerConn.Median/1024, lv.StackPerConn.Median/1024, lv.GoroutinesPerConn.Median)
		res.say("%6d conns: connecting %d took %.1f s + %.1f s until quiet; server frames out %.0f (%.1f per new connection); received %s",
			lv.Conns, lv.NewConns, lv.ConnectS, lv.QuietAfterS, lv.FramesOut, lv.FramesOutPerNewConn, describeCounts(lv.FramesReceived))
	}
	res.target(fmt.Sprintf("idle RSS per connection at %d", top.Conns), "<= 25 KiB",
		fmt.Sprintf("%.1f KiB", top.RSSPerConn.Median/1024), top.RSSPerConn.Median <= 25*1024)
	return nil
}

// sampleMedian takes n samples a second apart and returns the one with the median RSS.
func (r *runner) sampleMedian(ctx context.Context, n int) (serverSample, error) {
	var ss []serverSample
	for k := range n {
		if k > 0 && !sleepUntil(ctx, time.Now().Add(time.Second)) {
			return serverSample{}, ctx.Err()
		}
		s, err := r.probe.sample(ctx)
		if err != nil {
			return s, err
		}
		ss = append(ss, s)
	}
	med := spreadBy(ss, func(s serverSample) float64 { return s.RSSBytes }).Median
	best := ss[0]
	for _, s := range ss {
		if abs(s.RSSBytes-med) < abs(best.RSSBytes-med) {
			best = s
		}
	}
	return best, nil
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// pingWaiter sends "ping" frames and matches their acks.
type pingWaiter struct {
	mu      sync.Mutex
	seq     int
	waiting map[string]chan struct{}
}

func (p *pingWaiter) handle(_ *conn, _ time.Time, f *inFrame) {
	if (f.Type != "ack" && f.Type != "error") || !strings.HasPrefix(f.ID, "p") {
		return
	}
	p.mu.Lock()
	ch := p.waiting[f.ID]
	delete(p.waiting, f.ID)
	p.mu.Unlock()
	if ch != nil && f.Type == "ack" {
		close(ch)
	}
}

// check pings up to n random connections and counts those that answer within 10 s.
func (p *pingWaiter) check(ctx context.Context, conns []*conn, n int) (checked, alive int) {
	idx := rand.Perm(len(conns))[:min(n, len(conns))]
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := make([]string, 0, len(idx))
	for _, i := range idx {
		c := conns[i]
		p.mu.Lock()
		p.seq++
		id := "p" + strconv.Itoa(p.seq)
		ch := make(chan struct{})
		p.waiting[id] = ch
		p.mu.Unlock()
		ids = append(ids, id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.send(ctx, "ping", id, struct{}{}); err != nil {
				return
			}
			select {
			case <-ch:
				mu.Lock()
				alive++
				mu.Unlock()
			case <-time.After(10 * time.Second):
			case <-ctx.Done():
			}
		}()
	}
	wg.Wait()
	p.mu.Lock()
	for _, id := range ids {
		delete(p.waiting, id) // unanswered ones
	}
	p.mu.Unlock()
	return len(idx), alive
}

// compactConns moves the open connections of conns to its front (the rest nil) and returns how
// many there are.
func compactConns(conns []*conn) int {
	n := 0
	for i, c := range conns {
		if c != nil {
			conns[n], conns[i] = c, conns[n]
			n++
		}
	}
	return n
}
