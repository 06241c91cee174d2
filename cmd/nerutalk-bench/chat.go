package main

import (
	"context"
	"fmt"
	"math"
	"time"
)

type chatResults struct {
	Users     int          `json:"users"`
	Groups    int          `json:"groups"`
	GroupSize int          `json:"group_size"`
	Senders   int          `json:"senders"`
	Steps     []stepResult `json:"steps"`
	Best      *stepResult  `json:"best,omitempty"` // the fastest step that kept up, lost nothing, e2e p99 < 50 ms
	// BestWithinBound is the fastest step that kept up, lost nothing and kept e2e p99 under
	// -best-p99 (BoundP99MS, 100 ms by default).
	BestWithinBound *stepResult `json:"best_within_bound,omitempty"`
	BoundP99MS      float64     `json:"best_within_bound_p99_ms"`
	// CPU is each step's CPU per acked message next to the machine's floor measured by the
	// loopback scenario of the same invocation (-scenario loopback,chat).
	CPU      []chatCPU     `json:"cpu_per_message"`
	Delivery deliveryCheck `json:"delivery"`
	Storage  *storageCheck `json:"storage,omitempty"` // nil against Centrifugo, which stores nothing
	// SetupFrames is what the users received while coming online (presence, mostly).
	SetupFrames map[string]uint64 `json:"setup_frames"`
	Frames      map[string]uint64 `json:"frames_received"`
}

// chat puts U users online in G groups of S and has M of them post at stepped total rates, with
// history reads running alongside; afterwards it checks every delivery and the stored history.
func (r *runner) chat(ctx context.Context, res *result, floor *loopbackResults) error {
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
	out.BestWithinBound, out.BoundP99MS = bestStep(out.Steps, o.bestP99), float64(o.bestP99)/float64(time.Millisecond)
	out.CPU = chatCPUTable(out.Steps, o.chatGroupSize, floor)
	t.quiesce(ctx, r.opt.backlog)
	out.Delivery = t.checkDeliveries()
	r.logf("verifying storage of %d groups", len(chats))
	storage := t.verifyStorage(ctx)
	out.Storage = &storage
	out.Frames = r.frames.snapshot()
	res.Results = out

	res.check(out.Delivery.OK, "delivery: %d acked, %d sends never answered, %d deliveries missing, %d duplicate, %d connections closed %v",
		out.Delivery.Acked, out.Delivery.Unanswered, out.Delivery.Missing, out.Delivery.Duplicates, out.Delivery.Closed, out.Delivery.CloseWhy)
	res.check(storage.OK, "storage: %+v", storage)
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
	sayChatCPU(res, out)
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

// sayChatCPU adds the lines of out's CPU per acked message and its best step to res's summary.
func sayChatCPU(res *result, out *chatResults) {
	for _, c := range out.CPU {
		line := fmt.Sprintf("cpu per acked message at %7.0f msg/s (acked %.0f/s, e2e p99 %.1f ms): server %s µs", c.TargetRate, c.AckedPerS, c.E2EP99MS, us(c.ServerUSPerAck))
		if c.DBUSPerAck >= 0 {
			line += fmt.Sprintf(", database %s µs", us(c.DBUSPerAck))
		}
		if c.FloorUSPerFrame > 0 {
			line += fmt.Sprintf("; loopback floor %.1f µs/frame × %d frames = %.0f µs/msg (both ends), server ÷ floor %.2f",
				c.FloorUSPerFrame, c.FramesPerMsg, c.FloorUSPerMsg, c.ServerPerFloor)
		}
		res.say("%s", line)
	}
	if b := out.BestWithinBound; b != nil {
		res.say("best within e2e p99 < %.0f ms: %.0f msg/s target, %.0f acked/s, e2e p99 %.1f ms, server %s µs per acked message",
			out.BoundP99MS, b.TargetRate, b.AckedPerS.Median, b.E2EP99MS.Median, us(b.ServerUSPerAck.Median))
	} else {
		res.say("best within e2e p99 < %.0f ms: no step", out.BoundP99MS)
	}
}

// chatCPU is one chat step's CPU per acked message next to the machine's floor.
type chatCPU struct {
	TargetRate     float64 `json:"target_msgs_per_s"`
	AckedPerS      float64 `json:"acked_per_s"`
	E2EP99MS       float64 `json:"e2e_p99_ms"`
	Saturated      bool    `json:"saturated"`
	ServerUSPerAck float64 `json:"server_cpu_us_per_acked_msg"`
	DBUSPerAck     float64 `json:"db_cpu_us_per_acked_msg"` // -1 without -db-cpu-match
	// The loopback scenario's CPU per frame (both ends) at the step closest to this step's
	// frames/s, times the frames of one message (group size out + 1 in): what moving the
	// message's frames alone costs this machine, server and client together. 0 without a
	// loopback result in the same invocation.
	FramesPerMsg    int     `json:"frames_per_msg"`
	FloorUSPerFrame float64 `json:"floor_cpu_us_per_frame,omitempty"`
	FloorUSPerMsg   float64 `json:"floor_cpu_us_per_msg,omitempty"`
	ServerPerFloor  float64 `json:"server_per_floor,omitempty"`
}

func chatCPUTable(steps []stepResult, groupSize int, floor *loopbackResults) []chatCPU {
	out := make([]chatCPU, 0, len(steps))
	frames := groupSize + 1
	for _, s := range steps {
		c := chatCPU{TargetRate: s.TargetRate, AckedPerS: s.AckedPerS.Median, E2EP99MS: s.E2EP99MS.Median, Saturated: s.Saturated,
			ServerUSPerAck: s.ServerUSPerAck.Median, DBUSPerAck: s.DBUSPerAck.Median, FramesPerMsg: frames}
		if floor != nil && len(floor.Steps) > 0 {
			want := s.AckedPerS.Median * float64(frames)
			best := floor.Steps[0]
			for _, l := range floor.Steps[1:] {
				if math.Abs(l.FramesPerS.Median-want) < math.Abs(best.FramesPerS.Median-want) {
					best = l
				}
			}
			c.FloorUSPerFrame = best.CPUUSPerFrame.Median
			c.FloorUSPerMsg = round3(best.CPUUSPerFrame.Median * float64(frames))
			if c.FloorUSPerMsg > 0 && c.ServerUSPerAck >= 0 {
				c.ServerPerFloor = round3(c.ServerUSPerAck / c.FloorUSPerMsg)
			}
		}
		out = append(out, c)
	}
	return out
}

// loopbackOf returns the loopback scenario's results among prior, nil if it did not run.
func loopbackOf(prior []*result) *loopbackResults {
	for i := len(prior) - 1; i >= 0; i-- {
		if l, ok := prior[i].Results.(*loopbackResults); ok {
			return l
		}
	}
	return nil
}
