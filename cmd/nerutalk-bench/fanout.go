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
	Best    *stepResult  `json:"-"`
	// BestDeliveriesPerS is the highest deliveries/s of a step that kept up, lost nothing and
	// kept the end-to-end p99 under 50 ms (0 when no step did).
	BestDeliveriesPerS float64 `json:"best_deliveries_per_s"`
	BestE2EP99MS       float64 `json:"best_e2e_p99_ms"`
}

type fanoutResults struct {
	Users    int           `json:"users"`
	Sizes    []fanoutSize  `json:"sizes"`
	Delivery deliveryCheck `json:"delivery"`
	Storage  storageCheck  `json:"storage"`
}

// e2eTarget is the end-to-end p99 the targets are stated with.
const e2eTarget = 50 * time.Millisecond

// fanout posts into one group of K online members at stepped rates and measures the deliveries.
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
		if maxm := res.Server.Config["max_group_members"]; maxm != "" {
			var m int
			fmt.Sscan(maxm, &m)
			if m > 0 && n > m {
				r.warn("the server allows groups of %d (NERUTALK_MAX_GROUP_MEMBERS): the larger sizes will fail to set up", m)
			}
		}
	}
	r.setDialer(n)
	prefix := runPrefix()
	users, err := r.registerUsers(ctx, prefix, n)
	if err != nil {
		return err
	}
	out := &fanoutResults{Users: n}
	// Members come online first and join the groups afterwards: the other order would make every
	// arrival announce its presence to every member already online, K² frames before the test.
	conns := make([]*conn, n)
	defer r.closeAll(conns)
	var tp atomic.Pointer[traffic]
	handler := func(c *conn, recv time.Time, f *inFrame) {
		if t := tp.Load(); t != nil {
			t.handle(c, recv, f)
		}
	}
	if err := r.connectAll(ctx, users, conns, 0, n, handler); err != nil {
		r.hintLimits(err)
		return err
	}
	res.Generator.Connections, res.Generator.SourceIPs = n, len(r.dialer.clients)
	var chats []*benchChat
	for _, k := range sizes {
		members := make([]int, k)
		for i := range members {
			members[i] = i
		}
		ch, err := r.createGroup(ctx, users, members, fmt.Sprintf("%s fanout %d", prefix, k))
		if err != nil {
			r.warn("group of %d: %v", k, err)
			continue
		}
		chats = append(chats, ch)
		out.Sizes = append(out.Sizes, fanoutSize{Members: k, ChatID: ch.id, Senders: min(o.fanoutSenders, k)})
	}
	if len(chats) == 0 {
		return fmt.Errorf("no group could be created")
	}
	t := newTraffic(r, users, conns, chats)
	tp.Store(t)
	sleepUntil(ctx, time.Now().Add(2*time.Second)) // let the membership events settle

	ro := r.runOpts()
	for i := range out.Sizes {
		fs := &out.Sizes[i]
		ch := chats[i]
		senders := make([]senderSpec, fs.Senders)
		for s := range senders {
			senders[s] = senderSpec{conn: conns[ch.members[s]], chat: ch}
		}
		rates := make([]float64, len(o.fanoutRates))
		for j, d := range o.fanoutRates {
			rates[j] = d / float64(fs.Members)
		}
		r.logf("fanout to %d members: %v deliveries/s", fs.Members, o.fanoutRates)
		fs.Steps = t.stepRates(ctx, fmt.Sprintf("fanout-%d", fs.Members), senders, rates, ro, o.runs, o.keepGoing, fs.Members)
		if b := bestStep(fs.Steps, e2eTarget); b != nil {
			fs.BestDeliveriesPerS, fs.BestE2EP99MS = b.DeliveriesPerS.Median, b.E2EP99MS.Median
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	t.quiesce(ctx, backlogLimit)
	out.Delivery = t.checkDeliveries()
	r.logf("verifying storage")
	out.Storage = t.verifyStorage(ctx)
	res.Results = out
	res.check(out.Delivery.OK, "delivery: %d missing, %d duplicate, %d connections closed %v",
		out.Delivery.Missing, out.Delivery.Duplicates, out.Delivery.Closed, out.Delivery.CloseWhy)
	res.check(out.Storage.OK, "storage: %+v", out.Storage)
	for _, fs := range out.Sizes {
		for _, s := range fs.Steps {
			res.say("%5d members  %7.0f deliv/s target  %8.0f deliv/s  (%6.1f msg/s)  e2e p50 %6.1f p99 %7.1f max %7.1f ms  missing %d  cpu srv %s gen %s%s",
				fs.Members, s.TargetDeliveries, s.DeliveriesPerS.Median, s.AckedPerS.Median, s.E2EP50MS.Median,
				s.E2EP99MS.Median, s.E2EMaxMS.Median, s.Missing, cores(s.ServerCores.Median), cores(s.GeneratorCores.Median), satNote(s.verdict))
		}
		if fs.Members == 1000 {
			res.target("fanout to 1,000 members, e2e p99 < 50 ms", ">= 60000 deliveries/s",
				fmt.Sprintf("%.0f deliveries/s", fs.BestDeliveriesPerS), fs.BestDeliveriesPerS >= 60000)
		}
	}
	res.say("delivery check: %d acked, %d expected deliveries, %d missing, %d duplicate; storage: %d stored, gaps %d, duplicates %d",
		out.Delivery.Acked, out.Delivery.Expected, out.Delivery.Missing, out.Delivery.Duplicates,
		out.Storage.Stored, out.Storage.SeqGaps, out.Storage.Duplicates)
	return nil
}

func (r *runner) runOpts() runOpts {
	o := r.opt
	return runOpts{warmup: o.warmup, window: o.window, maxInflight: int64(o.inflight), size: o.size,
		drain: o.drain, slo: o.slo}
}
