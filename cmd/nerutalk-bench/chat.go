package main

import (
	"context"
	"fmt"
)

type chatResults struct {
	Users     int           `json:"users"`
	Groups    int           `json:"groups"`
	GroupSize int           `json:"group_size"`
	Senders   int           `json:"senders"`
	Steps     []stepResult  `json:"steps"`
	Best      *stepResult   `json:"best,omitempty"` // the fastest step that kept up, lost nothing, e2e p99 < 50 ms
	Delivery  deliveryCheck `json:"delivery"`
	Storage   storageCheck  `json:"storage"`
	// SetupFrames is what the users received while coming online (presence, mostly).
	SetupFrames map[string]uint64 `json:"setup_frames"`
	Frames      map[string]uint64 `json:"frames_received"`
}

// chat puts U users online in G groups of S and has M of them post at stepped total rates, with
// history reads running alongside; afterwards it checks every delivery and the stored history.
func (r *runner) chat(ctx context.Context, res *result) error {
	o := r.opt
	if err := r.api.checkServer(ctx, "/auth/register", "/chats", "/chats/{id}", "/chats/{id}/messages"); err != nil {
		return err
	}
	n := o.chatUsers
	if limit := r.connLimit(n); limit < n {
		return fmt.Errorf("%d users need %d connections; the open-file limits allow %d", n, n, limit)
	}
	senders := o.chatSenders
	if senders > o.chatGroups*o.chatGroupSize {
		r.warn("%d senders but only %d group seats: using %d", senders, o.chatGroups*o.chatGroupSize, o.chatGroups*o.chatGroupSize)
		senders = o.chatGroups * o.chatGroupSize
	}
	r.setDialer(n)
	prefix := runPrefix()
	users, err := r.registerUsers(ctx, prefix, n)
	if err != nil {
		return err
	}
	chats, err := r.createGroups(ctx, users, o.chatGroups, o.chatGroupSize, prefix)
	if err != nil {
		return err
	}
	conns := make([]*conn, n)
	defer r.closeAll(conns)
	t := newTraffic(r, users, conns, chats)
	if err := r.connectAll(ctx, users, conns, 0, n, t.handle); err != nil {
		r.hintLimits(err)
		return err
	}
	res.Generator.Connections, res.Generator.SourceIPs = n, len(r.dialer.clients)
	setupFrames, closed := r.settleSetup(conns, nil)
	if closed > 0 {
		return fmt.Errorf("the server closed %d connections while the users came online", closed)
	}
	// Sender k posts into group k mod G as that group's member (k / G) mod S.
	specs := make([]senderSpec, senders)
	for k := range specs {
		ch := chats[k%len(chats)]
		specs[k] = senderSpec{conn: conns[ch.members[(k/len(chats))%len(ch.members)]], chat: ch}
	}
	out := &chatResults{Users: n, Groups: len(chats), GroupSize: o.chatGroupSize, Senders: senders, SetupFrames: setupFrames}
	ro := r.runOpts()
	ro.historyRate = o.historyRate
	r.logf("chat: %d users, %d groups of %d, %d senders, rates %v msg/s", n, len(chats), o.chatGroupSize, senders, o.chatRates)
	out.Steps = t.stepRates(ctx, "chat", specs, o.chatRates, ro, o.runs, o.keepGoing, o.chatGroupSize)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	out.Best = bestStep(out.Steps, e2eTarget)
	t.quiesce(ctx, r.opt.backlog)
	out.Delivery = t.checkDeliveries()
	r.logf("verifying storage of %d groups", len(chats))
	out.Storage = t.verifyStorage(ctx)
	out.Frames = r.frames.snapshot()
	res.Results = out

	res.check(out.Delivery.OK, "delivery: %d acked, %d sends never answered, %d deliveries missing, %d duplicate, %d connections closed %v",
		out.Delivery.Acked, out.Delivery.Unanswered, out.Delivery.Missing, out.Delivery.Duplicates, out.Delivery.Closed, out.Delivery.CloseWhy)
	res.check(out.Storage.OK, "storage: %+v", out.Storage)
	for _, s := range out.Steps {
		hist := 0.0
		if s.HistoryP99MS != nil {
			hist = s.HistoryP99MS.Median
		}
		res.say("%7.0f msg/s target  %8.0f acked/s  %8.0f deliv/s  ack p99 %6.1f  e2e p50 %6.1f p99 %7.1f ms  history p99 %6.1f ms  cpu srv %s gen %s stolen %s%s",
			s.TargetRate, s.AckedPerS.Median, s.DeliveriesPerS.Median, s.AckP99MS.Median, s.E2EP50MS.Median,
			s.E2EP99MS.Median, hist, cores(s.ServerCores.Median), cores(s.GeneratorCores.Median), cores(s.StolenCores.Median), satNote(s.verdict))
	}
	res.say("storage: %d chats, %d acked, %d stored, missing %d, duplicates %d, seq gaps %d, unacked-but-stored %d",
		out.Storage.Chats, out.Storage.Acked, out.Storage.Stored, out.Storage.Missing, out.Storage.Duplicates,
		out.Storage.SeqGaps, out.Storage.Unacked)
	res.say("delivery order: %d of the deliveries reached a connection after a higher seq of their chat", out.Delivery.OutOfOrder)
	var acked, deliv, p99 float64
	if out.Best != nil {
		acked, deliv, p99 = out.Best.AckedPerS.Median, out.Best.DeliveriesPerS.Median, out.Best.E2EP99MS.Median
	}
	res.target(fmt.Sprintf("chat into %d-member groups, e2e p99 < 50 ms", o.chatGroupSize), ">= 5000 acked msgs/s",
		fmt.Sprintf("%.0f acked/s (e2e p99 %.1f ms)", acked, p99), acked >= 5000)
	res.target("chat deliveries at that rate", ">= 45000 deliveries/s", fmt.Sprintf("%.0f deliveries/s", deliv), deliv >= 45000)
	res.target("chat correctness", "zero loss, zero duplicates, gapless seq",
		fmt.Sprintf("missing %d, dup %d, gaps %d", out.Delivery.Missing+uint64(out.Storage.Missing),
			out.Delivery.Duplicates+uint64(out.Storage.Duplicates), out.Storage.SeqGaps),
		out.Delivery.OK && out.Storage.OK)
	return nil
}
