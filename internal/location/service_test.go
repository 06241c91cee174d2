package location

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/location/geo"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func TestUpdateValidation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		u := h.users(t, 1)[0]
		now := h.clock.Now()
		future := now.Add(6 * time.Minute)
		bad := []struct {
			in    PositionReport
			field string
		}{
			{PositionReport{Lat: 90.5}, "body.lat"},
			{PositionReport{Lat: math.NaN()}, "body.lat"},
			{PositionReport{Lng: -180.01}, "body.lng"},
			{PositionReport{Lng: math.Inf(1)}, "body.lng"},
			{PositionReport{AccuracyM: f64(-1)}, "body.accuracy_m"},
			{PositionReport{AccuracyM: f64(math.NaN())}, "body.accuracy_m"},
			{PositionReport{Heading: f64(361)}, "body.heading"},
			{PositionReport{Speed: f64(-0.1)}, "body.speed"},
			{PositionReport{Speed: f64(1001)}, "body.speed"},
			{PositionReport{RecordedAt: &future}, "body.recorded_at"},
		}
		for _, tt := range bad {
			_, err := h.Update(ctx, u, tt.in, "body.")
			e, ok := apperr.As(err)
			if !ok || e.Kind != apperr.KindInvalid || e.Fields[0].Location != tt.field {
				t.Errorf("Update(%+v) = %v, want invalid %s", tt.in, err, tt.field)
			}
		}
		if me, _ := h.Me(ctx, u); me.Location != nil {
			t.Fatalf("a refused report was stored: %+v", me.Location)
		}
		soon := now.Add(4 * time.Minute)
		if r, err := h.Update(ctx, u, PositionReport{Lat: 1, Lng: 2, Heading: f64(90), Speed: f64(3), AccuracyM: f64(5), RecordedAt: &soon}, ""); err != nil || !r.Accepted {
			t.Fatalf("good report: %v %v", r, err)
		}
		// Older (or the same time): ignored, not an error; the newest stays.
		for _, at := range []time.Time{now, soon} {
			if r, err := h.Update(ctx, u, PositionReport{Lat: 3, Lng: 4, RecordedAt: &at}, ""); err != nil || r.Accepted {
				t.Fatalf("older report: %v %v, want ignored", r, err)
			}
		}
		me, err := h.Me(ctx, u)
		if err != nil || me.Location == nil || me.Location.Lat != 1 || me.Location.Lng != 2 || *me.Location.Heading != 90 ||
			!me.Location.RecordedAt.Equal(soon) || me.HistoryRetentionDays != 7 || me.Discoverable {
			t.Fatalf("MyLocation = %+v %v", me, err)
		}
		// Without recorded_at: the server's time.
		h.clock.Advance(10 * time.Minute)
		if r, err := h.Update(ctx, u, PositionReport{Lat: 5, Lng: 6}, ""); err != nil || !r.Accepted {
			t.Fatalf("report without recorded_at: %v %v", r, err)
		}
	})
}

func TestHistoryThrottleRetentionAndDeletion(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		us := h.users(t, 2)
		a, b := us[0], us[1]
		start := h.clock.Now()
		// 10 reports 250 ms apart: 3 stored points (0, 1 s, 2 s); every one is the latest.
		for i := range 10 {
			h.at(t, a, 10, float64(i)/1000)
			h.clock.Advance(250 * time.Millisecond)
		}
		h.at(t, b, 50, 50)
		pts, next, err := h.History(ctx, a, HistoryQuery{})
		if err != nil || len(pts) != 3 || next != "" {
			t.Fatalf("history: %d points %q %v, want 3", len(pts), next, err)
		}
		if me, _ := h.Me(ctx, a); me.Location.Lng != 0.009 {
			t.Fatalf("latest = %v, want the last report", me.Location)
		}
		for i, p := range pts {
			if !p.RecordedAt.Equal(start.Add(time.Duration(i) * time.Second)) {
				t.Errorf("point %d at %v", i, p.RecordedAt)
			}
		}
		// Range and pages; only the caller's own points.
		got, next, err := h.History(ctx, a, HistoryQuery{From: start.Add(time.Second), To: start.Add(2 * time.Second), Limit: 1})
		if err != nil || len(got) != 1 || next == "" || !got[0].RecordedAt.Equal(start.Add(time.Second)) {
			t.Fatalf("page 1: %v %q %v", got, next, err)
		}
		got, next, err = h.History(ctx, a, HistoryQuery{From: start.Add(time.Second), To: start.Add(2 * time.Second), Limit: 1, Cursor: next})
		if err != nil || len(got) != 1 || next != "" || !got[0].RecordedAt.Equal(start.Add(2*time.Second)) {
			t.Fatalf("page 2: %v %q %v", got, next, err)
		}
		if _, _, err := h.History(ctx, a, HistoryQuery{From: start.Add(time.Hour), To: start}); apperr.KindOf(err) != apperr.KindInvalid {
			t.Fatalf("from after to: %v", err)
		}
		if _, _, err := h.History(ctx, a, HistoryQuery{Cursor: "x"}); apperr.KindOf(err) != apperr.KindInvalid {
			t.Fatalf("bad cursor: %v", err)
		}
		if bp, _, _ := h.History(ctx, b, HistoryQuery{}); len(bp) != 1 || bp[0].Lat != 50 {
			t.Fatalf("b's history = %v", bp)
		}

		// Retention: 1 day; points older are pruned by the job; others' points stay.
		one := 1
		if _, err := h.SetSettings(ctx, a, LocationSettingsInput{HistoryRetentionDays: &one}); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(25 * time.Hour)
		h.at(t, a, 11, 11)
		n, err := h.Prune(ctx)
		if err != nil || n != 3 {
			t.Fatalf("Prune = %d %v, want the 3 old points of a (b keeps 7 days)", n, err)
		}
		if pts, _, _ := h.History(ctx, a, HistoryQuery{}); len(pts) != 1 || pts[0].Lat != 11 {
			t.Fatalf("after pruning: %v", pts)
		}
		if bp, _, _ := h.History(ctx, b, HistoryQuery{}); len(bp) != 1 {
			t.Fatalf("b's history was pruned: %v", bp)
		}
		// Retention 0 deletes at once and keeps none from now on.
		zero := 0
		if set, err := h.SetSettings(ctx, a, LocationSettingsInput{HistoryRetentionDays: &zero}); err != nil || set.HistoryRetentionDays != 0 {
			t.Fatalf("settings: %v %v", set, err)
		}
		h.clock.Advance(time.Minute)
		h.at(t, a, 12, 12)
		if pts, _, _ := h.History(ctx, a, HistoryQuery{}); len(pts) != 0 {
			t.Fatalf("retention 0 kept %v", pts)
		}
		if me, _ := h.Me(ctx, a); me.Location == nil || me.Location.Lat != 12 {
			t.Fatalf("retention 0 must still keep the latest position: %+v", me)
		}
		// Deleting on request.
		if err := h.DeleteHistory(ctx, b); err != nil {
			t.Fatal(err)
		}
		if bp, _, _ := h.History(ctx, b, HistoryQuery{}); len(bp) != 0 {
			t.Fatalf("after delete: %v", bp)
		}
		big := 366
		_, err = h.SetSettings(ctx, a, LocationSettingsInput{HistoryRetentionDays: &big})
		wantKind(t, err, apperr.KindInvalid, "retention 366")
	})
}

func TestSharePrivacy(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		us := h.users(t, 5)
		owner, friend, stranger, member, leaver := us[0], us[1], us[2], us[3], us[4]
		chatID := h.chat(t, owner, member, leaver)
		h.at(t, owner, 48.8584, 2.2945)

		// Nobody sees anything before a share.
		if got := h.pub.take(EventSharedUpdate); len(got) != 0 {
			t.Fatalf("an update without shares went to %v", got)
		}
		direct, err := h.CreateShare(ctx, owner, LocationShareInput{UserID: friend, DurationS: 3600, Precision: PrecisionExact})
		if err != nil || direct.Status != StatusActive || direct.ExpiresAt == nil || direct.Direction != "outgoing" {
			t.Fatalf("share: %+v %v", direct, err)
		}
		starts := h.pub.take(EventShareStart)
		if len(starts) != 1 || !slices.Equal(starts[0].users, []string{friend}) {
			t.Fatalf("share start = %+v", starts)
		}
		if st := starts[0].data.(LocationShareStart); st.Location == nil || st.Location.Lat != 48.8584 {
			t.Fatalf("start carries %+v", st.Location)
		}
		group, err := h.CreateShare(ctx, owner, LocationShareInput{ChatID: chatID, Precision: PrecisionApproximate})
		if err != nil || group.ExpiresAt != nil {
			t.Fatalf("chat share: %+v %v", group, err)
		}
		starts = h.pub.take(EventShareStart)
		if len(starts) != 1 || !sameSet(starts[0].users, []string{member, leaver}) {
			t.Fatalf("chat share start = %+v", starts)
		}
		if st := starts[0].data.(LocationShareStart); st.Location.Lat == 48.8584 || st.Location.Heading != nil {
			t.Fatalf("approximate start leaks %+v", st.Location)
		}

		// Many jittered updates: the friend sees each exactly, chat members only cell centers, the
		// stranger nothing.
		r := rand.New(rand.NewPCG(1, 1))
		truth := geo.Point{Lat: 48.8584, Lng: 2.2945}
		cells := map[geo.Point]bool{}
		var sumLat, sumLng float64
		const n = 200
		for range n {
			h.clock.Advance(time.Second)
			p := geo.Point{Lat: truth.Lat + (r.Float64()-0.5)*0.0004, Lng: truth.Lng + (r.Float64()-0.5)*0.0004}
			h.at(t, owner, p.Lat, p.Lng)
			for _, d := range h.pub.to(member, EventSharedUpdate) {
				l := sharedOf(t, d)
				q := geo.Point{Lat: l.Lat, Lng: l.Lng}
				if q != geo.Snap(p) || l.Precision != PrecisionApproximate || l.Heading != nil || l.Speed != nil {
					t.Fatalf("member saw %+v for %v, want the cell center %v", l, p, geo.Snap(p))
				}
				cells[q] = true
				sumLat, sumLng = sumLat+q.Lat, sumLng+q.Lng
			}
			fr := h.pub.to(friend, EventSharedUpdate)
			if len(fr) != 1 || sharedOf(t, fr[0]).Lat != p.Lat {
				t.Fatalf("friend saw %+v", fr)
			}
			if got := h.pub.to(stranger, EventSharedUpdate); len(got) != 0 {
				t.Fatalf("stranger saw %v", got)
			}
			if got := h.pub.to(owner, EventSharedUpdate); len(got) != 0 {
				t.Fatalf("owner got their own update: %v", got)
			}
			h.pub.reset()
		}
		// Averaging what the member saw gives a combination of cell centers, not the truth.
		if len(cells) > 2 {
			t.Fatalf("jitter of ±22 m showed %d cells", len(cells))
		}
		avg := geo.Point{Lat: sumLat / n, Lng: sumLng / n}
		if c := geo.Snap(truth); len(cells) == 1 && geo.Distance(avg, c) > 0.001 {
			t.Fatalf("average %v differs from the cell center %v", avg, geo.Snap(truth))
		}

		// GET /location/shared and /location/shares for each.
		if got, _, _ := h.Shared(ctx, friend, 50, ""); len(got) != 1 || got[0].UserID != owner || got[0].Precision != PrecisionExact {
			t.Fatalf("friend's shared = %+v", got)
		}
		if got, _, _ := h.Shared(ctx, member, 50, ""); len(got) != 1 || got[0].Lat != geo.Snap(geo.Point{Lat: got[0].Lat, Lng: got[0].Lng}).Lat {
			t.Fatalf("member's shared = %+v", got)
		}
		if got, _, _ := h.Shared(ctx, stranger, 50, ""); len(got) != 0 {
			t.Fatalf("stranger's shared = %+v", got)
		}
		if got, _, _ := h.ListShares(ctx, owner, 50, ""); len(got) != 2 || got[0].Direction != "outgoing" {
			t.Fatalf("owner's shares = %+v", got)
		}
		if got, _, _ := h.ListShares(ctx, member, 50, ""); len(got) != 1 || got[0].Direction != "incoming" || got[0].ID != group.ID {
			t.Fatalf("member's shares = %+v", got)
		}
		if got, _, _ := h.ListShares(ctx, stranger, 50, ""); len(got) != 0 {
			t.Fatalf("stranger's shares = %+v", got)
		}
		// Page of one.
		if got, next, _ := h.ListShares(ctx, owner, 1, ""); len(got) != 1 || next == "" {
			t.Fatalf("page: %v %q", got, next)
		}

		// A member removed from the chat: told at once, then sees nothing.
		h.chats.set(chatID, owner, member)
		h.MembersChanged(ctx, chatID, []string{owner, member}, nil, []string{leaver})
		stops := h.pub.take(EventShareStop)
		if len(stops) != 1 || !slices.Equal(stops[0].users, []string{leaver}) || stops[0].data.(LocationShareStop).Reason != ReasonLeftChat {
			t.Fatalf("removal stops = %+v", stops)
		}
		h.clock.Advance(time.Second)
		h.at(t, owner, 48.86, 2.29)
		if got := h.pub.to(leaver, EventSharedUpdate); len(got) != 0 {
			t.Fatalf("removed member saw %v", got)
		}
		if got, _, _ := h.Shared(ctx, leaver, 50, ""); len(got) != 0 {
			t.Fatalf("removed member's shared = %+v", got)
		}
		// A member who joins gets the start.
		h.chats.set(chatID, owner, member, stranger)
		h.MembersChanged(ctx, chatID, []string{owner, member, stranger}, []string{stranger}, nil)
		if got := h.pub.take(EventShareStart); len(got) != 1 || !slices.Equal(got[0].users, []string{stranger}) {
			t.Fatalf("joiner's start = %+v", got)
		}
		h.chats.set(chatID, owner, member)
		h.MembersChanged(ctx, chatID, []string{owner, member}, nil, []string{stranger})

		// Stopping: only the owner; idempotent; the viewers are told.
		h.pub.reset()
		wantKind(t, h.StopShare(ctx, friend, direct.ID), apperr.KindNotFound, "viewer stops")
		wantKind(t, h.StopShare(ctx, stranger, direct.ID), apperr.KindNotFound, "stranger stops")
		wantKind(t, h.StopShare(ctx, owner, "nope"), apperr.KindNotFound, "unknown share")
		if err := h.StopShare(ctx, owner, direct.ID); err != nil {
			t.Fatal(err)
		}
		if err := h.StopShare(ctx, owner, direct.ID); err != nil {
			t.Fatalf("second stop: %v", err)
		}
		if stops := h.pub.take(EventShareStop); len(stops) != 1 || stops[0].users[0] != friend || stops[0].data.(LocationShareStop).Reason != ReasonStopped {
			t.Fatalf("stop = %+v", stops)
		}
		h.clock.Advance(time.Second)
		h.at(t, owner, 48.87, 2.29)
		if got := h.pub.to(friend, EventSharedUpdate); len(got) != 0 {
			t.Fatalf("friend saw after the stop: %v", got)
		}
		if got, _, _ := h.Shared(ctx, friend, 50, ""); len(got) != 0 {
			t.Fatalf("friend's shared after stop = %+v", got)
		}

		// The owner leaving the chat ends the chat share.
		h.pub.reset()
		h.chats.set(chatID, member)
		h.MembersChanged(ctx, chatID, []string{member}, nil, []string{owner})
		if stops := h.pub.take(EventShareStop); len(stops) != 1 || !slices.Equal(stops[0].users, []string{member}) ||
			stops[0].data.(LocationShareStop).Reason != ReasonOwnerOut {
			t.Fatalf("owner left: %+v", stops)
		}
		if got, _, _ := h.ListShares(ctx, owner, 50, ""); len(got) != 0 {
			t.Fatalf("shares after all ended: %+v", got)
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestShareExpiry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		// A second node on the same database: each share expires on one of them only.
		other := New(db, h.pub, Options{Clock: h.clock, Chats: h.chats})
		ctx := context.Background()
		us := h.users(t, 2)
		owner, friend := us[0], us[1]
		sh, err := h.CreateShare(ctx, owner, LocationShareInput{UserID: friend, DurationS: 900, Precision: PrecisionExact})
		if err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(900*time.Second - time.Millisecond)
		if n, err := h.ExpireDue(ctx); err != nil || n != 0 {
			t.Fatalf("ExpireDue before the end = %d %v", n, err)
		}
		h.at(t, owner, 1, 1)
		if got := h.pub.to(friend, EventSharedUpdate); len(got) != 1 {
			t.Fatalf("update just before the end: %v", got)
		}
		h.pub.reset()
		h.clock.Advance(time.Millisecond)
		// At the end exactly, before any job ran: over already.
		h.at(t, owner, 2, 2)
		if got := h.pub.to(friend, EventSharedUpdate); len(got) != 0 {
			t.Fatalf("update at the end: %v", got)
		}
		if got, _, _ := h.Shared(ctx, friend, 50, ""); len(got) != 0 {
			t.Fatalf("shared at the end: %v", got)
		}
		done := make(chan int, 2)
		for _, s := range []*Service{h.Service, other} {
			go func() {
				n, err := s.ExpireDue(ctx)
				if err != nil {
					t.Error(err)
				}
				done <- n
			}()
		}
		if total := <-done + <-done; total != 1 {
			t.Fatalf("two nodes expired %d shares, want 1", total)
		}
		stops := h.pub.take(EventShareStop)
		if len(stops) != 1 || stops[0].data.(LocationShareStop).ShareID != sh.ID || stops[0].data.(LocationShareStop).Reason != ReasonExpired {
			t.Fatalf("stops = %+v", stops)
		}
		if got, _, _ := h.ListShares(ctx, friend, 50, ""); len(got) != 0 {
			t.Fatalf("expired share listed: %v", got)
		}
		// Ended shares are pruned after 30 days.
		h.clock.Advance(31 * 24 * time.Hour)
		if _, err := h.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := db.W.QueryRow(`SELECT COUNT(*) FROM location_shares`).Scan(&left); err != nil || left != 0 {
			t.Fatalf("shares left: %d %v", left, err)
		}
	})
}

func TestShareValidation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		us := h.users(t, 3)
		owner, other, third := us[0], us[1], us[2]
		notMine := h.chat(t, other, third)
		tests := []struct {
			in   LocationShareInput
			kind apperr.Kind
		}{
			{LocationShareInput{Precision: PrecisionExact}, apperr.KindInvalid},
			{LocationShareInput{UserID: other, ChatID: notMine, Precision: PrecisionExact}, apperr.KindInvalid},
			{LocationShareInput{UserID: owner, Precision: PrecisionExact}, apperr.KindInvalid},
			{LocationShareInput{UserID: other, Precision: "rough"}, apperr.KindInvalid},
			{LocationShareInput{UserID: other, Precision: PrecisionExact, DurationS: 899}, apperr.KindInvalid},
			{LocationShareInput{UserID: other, Precision: PrecisionExact, DurationS: 86401}, apperr.KindInvalid},
			{LocationShareInput{UserID: other, Precision: PrecisionExact, DurationS: -1}, apperr.KindInvalid},
			{LocationShareInput{UserID: newID(), Precision: PrecisionExact}, apperr.KindNotFound},
			{LocationShareInput{ChatID: notMine, Precision: PrecisionExact}, apperr.KindNotFound},
			{LocationShareInput{ChatID: newID(), Precision: PrecisionExact}, apperr.KindNotFound},
		}
		for _, tt := range tests {
			_, err := h.CreateShare(ctx, owner, tt.in)
			wantKind(t, err, tt.kind, "share "+tt.in.UserID+tt.in.ChatID+tt.in.Precision)
		}
		for _, d := range []int64{0, 900, 86400} {
			if _, err := h.CreateShare(ctx, owner, LocationShareInput{UserID: other, Precision: PrecisionApproximate, DurationS: d}); err != nil {
				t.Errorf("duration %d: %v", d, err)
			}
		}
	})
}

func TestNearby(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		us := h.users(t, 6)
		me, near, hidden, far, stale, shy := us[0], us[1], us[2], us[3], us[4], us[5]
		yes := true
		for _, u := range []string{me, near, far, stale} {
			if _, err := h.SetSettings(ctx, u, LocationSettingsInput{Discoverable: &yes}); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err := h.Nearby(ctx, me, 1000, 50, "")
		wantKind(t, err, apperr.KindConflict, "nearby without a position")
		h.at(t, stale, 0.0001, 179.9999)
		h.clock.Advance(2 * time.Hour)
		h.at(t, me, 0, 179.9995)          // on the antimeridian
		h.at(t, near, 0.001, -179.9995)   // ~130 m away, across it
		h.at(t, hidden, 0.0005, 179.9995) // not discoverable
		h.at(t, far, 0.05, 179.9995)      // 5.6 km
		h.at(t, shy, 0.0002, 179.9995)
		// Distances are to the others' grid-cell centers, rounded up to 100 m.
		mePt := geo.Point{Lat: 0, Lng: 179.9995}
		want := func(p geo.Point) int { return roundUp100(geo.Distance(mePt, geo.Snap(p))) }
		nearD, farD := want(geo.Point{Lat: 0.001, Lng: -179.9995}), want(geo.Point{Lat: 0.05, Lng: 179.9995})
		got, _, err := h.Nearby(ctx, me, 20_000, 50, "")
		if err != nil || len(got) != 2 || got[0] != (NearbyUser{near, min(nearD, farD)}) && got[0] != (NearbyUser{far, min(nearD, farD)}) {
			t.Fatalf("nearby 20 km = %+v %v, want near at %d m and far at %d m", got, err, nearD, farD)
		}
		for _, n := range got {
			if (n.UserID == near && n.DistanceM != nearD) || (n.UserID == far && n.DistanceM != farD) {
				t.Fatalf("nearby = %+v, want near at %d m and far at %d m", got, nearD, farD)
			}
		}
		// The radius applies to the same distances.
		got, _, _ = h.Nearby(ctx, me, min(nearD, farD), 50, "")
		if len(got) != 1 {
			t.Fatalf("nearby within %d m = %+v", min(nearD, farD), got)
		}
		// Moving within the cell changes nothing: the answer reveals the cell, not the point.
		moved := geo.Point{Lat: 0.0011, Lng: -179.9996}
		if geo.Snap(moved) != geo.Snap(geo.Point{Lat: 0.001, Lng: -179.9995}) {
			t.Fatal("test points are in different cells")
		}
		h.clock.Advance(time.Second)
		h.at(t, near, moved.Lat, moved.Lng)
		for _, n := range must(h.Nearby(ctx, me, 20_000, 50, "")) {
			if n.UserID == near && n.DistanceM != nearD {
				t.Fatalf("moving within the cell changed the distance: %d, was %d", n.DistanceM, nearD)
			}
		}
		// Both sides must opt in: shy sees nobody.
		_, _, err = h.Nearby(ctx, shy, 1000, 50, "")
		wantKind(t, err, apperr.KindForbidden, "nearby for a non-discoverable caller")
		// Turning discoverable off leaves the index at once.
		no := false
		if _, err := h.SetSettings(ctx, near, LocationSettingsInput{Discoverable: &no}); err != nil {
			t.Fatal(err)
		}
		for _, n := range must(h.Nearby(ctx, me, 20_000, 50, "")) {
			if n.UserID == near {
				t.Fatalf("nearby after opt-out lists near")
			}
		}
		for _, r := range []int{99, 50_001} {
			_, _, err := h.Nearby(ctx, me, r, 50, "")
			wantKind(t, err, apperr.KindInvalid, "radius")
		}
		// The North Pole: everyone within the radius, whatever their longitude.
		h.clock.Advance(time.Second)
		h.at(t, me, 89.9999, 0)
		h.at(t, far, 89.9995, 150)
		if got, _, _ := h.Nearby(ctx, me, 5000, 50, ""); len(got) != 1 || got[0].UserID != far {
			t.Fatalf("nearby at the pole = %+v", got)
		}
	})
}

func must[T any](v T, _ string, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestRoundUp100(t *testing.T) {
	t.Parallel()
	for d, want := range map[float64]int{0: 100, 1: 100, 100: 100, 100.1: 200, 949: 1000, 1000: 1000} {
		if got := roundUp100(d); got != want {
			t.Errorf("roundUp100(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestShareCap(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		us := h.users(t, 2)
		owner, friend := us[0], us[1]
		var last LocationShare
		for range MaxActiveShares {
			sh, err := h.CreateShare(ctx, owner, LocationShareInput{UserID: friend, DurationS: 3600, Precision: PrecisionExact})
			if err != nil {
				t.Fatal(err)
			}
			last = sh
		}
		_, err := h.CreateShare(ctx, owner, LocationShareInput{UserID: friend, Precision: PrecisionExact})
		wantKind(t, err, apperr.KindConflict, "too many shares")
		if e, ok := apperr.As(err); !ok || e.Code != "too_many_shares" {
			t.Fatalf("code: %v", err)
		}
		// The friend's own shares are not capped by the owner's.
		if _, err := h.CreateShare(ctx, friend, LocationShareInput{UserID: owner, Precision: PrecisionExact}); err != nil {
			t.Fatal(err)
		}
		// A stopped share frees a place.
		if err := h.StopShare(ctx, owner, last.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.CreateShare(ctx, owner, LocationShareInput{UserID: friend, Precision: PrecisionExact}); err != nil {
			t.Fatal(err)
		}
	})
}

type wsClient struct{ user string }

func (c wsClient) UserID() string    { return c.user }
func (c wsClient) ConnID() string    { return "conn" }
func (c wsClient) SessionID() string { return "session" }
func (c wsClient) Join(string)       {}
func (c wsClient) Leave(string)      {}

func TestCmdUpdate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		user := h.users(t, 1)[0]
		c := wsClient{user}
		_, err := h.cmdUpdate(ctx, c, json.RawMessage(`{"lng": 2}`))
		wantKind(t, err, apperr.KindInvalid, "no lat")
		_, err = h.cmdUpdate(ctx, c, json.RawMessage(`{"lat": 0}`))
		wantKind(t, err, apperr.KindInvalid, "no lng")
		_, err = h.cmdUpdate(ctx, c, json.RawMessage(`[1]`))
		wantKind(t, err, apperr.KindBadRequest, "not an object")
		_, err = h.cmdUpdate(ctx, c, json.RawMessage(`{"lat": 0, "lng": 0, "speed": -1}`))
		wantKind(t, err, apperr.KindInvalid, "bad speed")
		res, err := h.cmdUpdate(ctx, c, json.RawMessage(`{"lat": 0, "lng": 0, "accuracy_m": 7, "heading": 90}`))
		if err != nil || !res.(ReportResult).Accepted {
			t.Fatalf("update: %+v %v", res, err)
		}
		me, err := h.Me(ctx, user)
		if err != nil || me.Location == nil || me.Location.Lat != 0 || *me.Location.AccuracyM != 7 || *me.Location.Heading != 90 {
			t.Fatalf("stored: %+v %v", me.Location, err)
		}
	})
}
