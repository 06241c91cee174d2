package main

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

type fanoutSize struct {
	Members int          `json:"members"`
	ChatID  string       `json:"chat_id"`
	Senders int          `json:"senders"`
	Steps   []stepResult `json:"steps"`
	// BestDeliveriesPerS is the highest deliveries/s of a step that kept up, lost nothing and
	// kept the end-to-end p99 under 50 ms (0 when no step did).
	BestDeliveriesPerS float64           `json:"best_deliveries_per_s"`
	BestE2EP99MS       float64           `json:"best_e2e_p99_ms"`
	SetupFrames        map[string]uint64 `json:"setup_frames"` // what members received while the group was set up
	SetupSeconds       float64           `json:"setup_s"`
	Skipped            string            `json:"skipped,omitempty"` // why the size was not measured
	Delivery           deliveryCheck     `json:"delivery"`
	Storage            storageCheck      `json:"storage"`
}

type fanoutResults struct {
	Users  int               `json:"users"`
	Sizes  []fanoutSize      `json:"sizes"`
	Frames map[string]uint64 `json:"frames_received"`
}

// e2eTarget is the end-to-end p99 the targets are stated with.
const e2eTarget = 50 * time.Millisecond

// fanout measures, for each group size K in turn, one group of K online members into which a
// member posts at stepped rates: deliveries/s, latency and loss.
//
// For each size the members that are not online yet connect first and the group is created
// afterwards: the other order makes every arrival announce its presence to every member already
// online (K² frames). What setting up made the server send is reported, and measuring starts
// once it has stopped.
func (r *runner) fanout(ctx context.Context, res *result) error {
	o := r.opt
	if err := r.api.checkServer(ctx, "/auth/register", "/chats", "/chats/{id}/members", "/chats/{id}/messages"); err != nil {
		return err
	}
	sizes := slices.Clone(o.fanoutSizes)
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	n := sizes[len(sizes)-1]
	if limit := r.connLimit(n); limit < n {
		n = limit
		var kept []int
		for _, k := range sizes {
			if k <= n {
				kept = append(kept, k)
			}
		}
		if len(kept) == 0 || kept[len(kept)-1] < n {
			kept = append(kept, n)
		}
		sizes = kept
	}
	if res.Server.Config != nil {
		var m int
		fmt.Sscan(res.Server.Config["max_group_members"], &m)
		if m > 0 && n > m {
			r.warn("the server allows groups of %d (NERUTALK_MAX_GROUP_MEMBERS): larger sizes will fail to set up", m)
		}
	}
	r.setDialer(n)
	prefix := runPrefix()
	users, err := r.registerUsers(ctx, prefix, n)
	if err != nil {
		return err
	}
	out := &fanoutResults{Users: n}
	conns := make([]*conn, n)
	defer r.closeAll(conns)
	var current atomic.Pointer[traffic]
	handler := func(c *conn, recv time.Time, f *inFrame) {
		if t := current.Load(); t != nil {
			t.handle(c, recv, f)
		}
	}
	ro := r.runOpts()
	opened := 0
	for _, k := range sizes {
		fs := fanoutSize{Members: k, Senders: min(o.fanoutSenders, k)}
		setupStart, before := time.Now(), r.frames.snapshot()
		if k > opened {
			if err := r.connectAll(ctx, users, conns, opened, k, handler); err != nil {
				r.hintLimits(err)
				return err
			}
			opened = k
			res.Generator.Connections, res.Generator.SourceIPs = opened, len(r.dialer.clients)
		}
		members := make([]int, k)
		for i := range members {
			members[i] = i
		}
		ch, err := r.createGroup(ctx, users, members, fmt.Sprintf("%s fanout %d", prefix, k))
		if err != nil {
			r.warn("group of %d: %v", k, err)
			fs.Skipped = err.Error()
			out.Sizes = append(out.Sizes, fs)
			continue
		}
		fs.ChatID = ch.id
		var closed int
		fs.SetupFrames, closed = r.settleSetup(conns[:opened], before)
		fs.SetupSeconds = round3(time.Since(setupStart).Seconds())
		if closed > 0 {
			fs.Skipped = fmt.Sprintf("the server closed %d connections while the group was set up", closed)
			res.check(false, "fanout to %d members: %s", k, fs.Skipped)
			out.Sizes = append(out.Sizes, fs)
			break // the connections are gone: larger sizes cannot run either
		}
		t := newTraffic(r, users, conns, []*benchChat{ch})
		current.Store(t)
		senders := make([]senderSpec, fs.Senders)
		for s := range senders {
			senders[s] = senderSpec{conn: conns[ch.members[s]], chat: ch}
		}
		rates := make([]float64, len(o.fanoutRates))
		for j, d := range o.fanoutRates {
			rates[j] = d / float64(k)
		}
		r.logf("fanout to %d members: %v deliveries/s", k, o.fanoutRates)
		fs.Steps = t.stepRates(ctx, fmt.Sprintf("fanout-%d", k), senders, rates, ro, o.runs, o.keepGoing, k)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if b := bestStep(fs.Steps, e2eTarget); b != nil {
			fs.BestDeliveriesPerS, fs.BestE2EP99MS = b.DeliveriesPerS.Median, b.E2EP99MS.Median
		}
		t.quiesce(ctx, r.opt.backlog)
		fs.Delivery = t.checkDeliveries()
		fs.Storage = t.verifyStorage(ctx)
		res.check(fs.Delivery.OK, "fanout to %d members: delivery: %d acked, %d sends never answered, %d deliveries missing, %d duplicate, %d connections closed %v",
			k, fs.Delivery.Acked, fs.Delivery.Unanswered, fs.Delivery.Missing, fs.Delivery.Duplicates, fs.Delivery.Closed, fs.Delivery.CloseWhy)
		res.check(fs.Storage.OK, "fanout to %d members: storage: %+v", k, fs.Storage)
		out.Sizes = append(out.Sizes, fs)
		current.Store(nil)
	}
	out.Frames = r.frames.snapshot()
	res.Results = out
	for _, fs := range out.Sizes {
		res.say("%5d members: set up in %.0fs, members received %s", fs.Members, fs.SetupSeconds, describeCounts(fs.SetupFrames))
		if fs.Skipped != "" {
			res.say("%5d members: NOT MEASURED: %s", fs.Members, fs.Skipped)
		}
		for _, s := range fs.Steps {
			res.say("%5d members  %7.0f deliv/s target  %8.0f deliv/s  (%6.1f msg/s)  e2e p50 %6.1f p99 %7.1f max %7.1f ms  missing %d  cpu srv %s gen %s stolen %s%s",
				fs.Members, s.TargetDeliveries, s.DeliveriesPerS.Median, s.AckedPerS.Median, s.E2EP50MS.Median,
				s.E2EP99MS.Median, s.E2EMaxMS.Median, s.Missing, cores(s.ServerCores.Median), cores(s.GeneratorCores.Median), cores(s.StolenCores.Median), satNote(s.verdict))
		}
		if len(fs.Steps) > 0 {
			res.say("%5d members: delivery check: %d acked, %d deliveries expected, %d missing, %d duplicate; storage: %d stored, gaps %d, duplicates %d",
				fs.Members, fs.Delivery.Acked, fs.Delivery.Expected, fs.Delivery.Missing, fs.Delivery.Duplicates,
				fs.Storage.Stored, fs.Storage.SeqGaps, fs.Storage.Duplicates)
		}
		if fs.Members == 1000 {
			res.target("fanout to 1,000 members, e2e p99 < 50 ms", ">= 60000 deliveries/s",
				fmt.Sprintf("%.0f deliveries/s", fs.BestDeliveriesPerS), fs.BestDeliveriesPerS >= 60000)
		}
	}
	return nil
}

func (r *runner) runOpts() runOpts {
	o := r.opt
	return runOpts{warmup: o.warmup, window: o.window, maxInflight: int64(o.inflight), size: o.size, timeOrdered: o.clientIDs == "v7",
		drain: o.drain, slo: o.slo}
}
