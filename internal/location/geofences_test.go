package location

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/location/geo"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

type recordingNotifier struct {
	mu  sync.Mutex
	got []GeofenceEvent
}

func (n *recordingNotifier) GeofenceEvent(_ context.Context, ev GeofenceEvent, _ []string) {
	n.mu.Lock()
	n.got = append(n.got, ev)
	n.mu.Unlock()
}

func (n *recordingNotifier) ShareStarted(context.Context, LocationShare, []string) {}

func TestGeofenceValidationAndAccess(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		us := h.users(t, 2)
		owner, stranger := us[0], us[1]
		c := &geo.Point{Lat: 10, Lng: 10}
		bad := []struct {
			in    GeofenceInput
			field string
		}{
			{GeofenceInput{Name: " ", Center: c, RadiusM: 100}, "body.name"},
			{GeofenceInput{Name: "x", Center: c, RadiusM: 49}, "body.radius_m"},
			{GeofenceInput{Name: "x", Center: c, RadiusM: 50_001}, "body.radius_m"},
			{GeofenceInput{Name: "x", Center: &geo.Point{Lat: 95}, RadiusM: 100}, "body.center"},
			{GeofenceInput{Name: "x"}, "body.center"},
			{GeofenceInput{Name: "x", Center: c, RadiusM: 100, Polygon: [][2]float64{{0, 0}, {0, 1}, {1, 1}}}, "body.polygon"},
			{GeofenceInput{Name: "x", Polygon: [][2]float64{{0, 0}, {0, 0.01}}}, "body.polygon"},
			{GeofenceInput{Name: "x", Polygon: [][2]float64{{0, 0}, {0.01, 0.01}, {0, 0.01}, {0.01, 0}}}, "body.polygon"},
			{GeofenceInput{Name: "x", Center: c, RadiusM: 100, Notify: "everyone"}, "body.notify"},
			{GeofenceInput{Name: "x", Center: c, RadiusM: 100, DwellS: 86401}, "body.dwell_s"},
		}
		for _, tt := range bad {
			_, err := h.CreateGeofence(ctx, owner, tt.in)
			e, ok := apperr.As(err)
			if !ok || e.Kind != apperr.KindInvalid || e.Fields[0].Location != tt.field {
				t.Errorf("CreateGeofence(%+v) = %v, want invalid %s", tt.in, err, tt.field)
			}
		}
		// Hostile input never reaches SQL (PostgreSQL refuses NUL in text).
		_, err := h.CreateGeofence(ctx, owner, GeofenceInput{Name: "a\x00b", Center: c, RadiusM: 100})
		wantKind(t, err, apperr.KindInvalid, "NUL in a name")
		_, err = h.CreateGeofence(ctx, owner, GeofenceInput{Name: "a\u202eb", Center: c, RadiusM: 100})
		wantKind(t, err, apperr.KindInvalid, "bidi control in a name")
		_, err = h.Geofence(ctx, owner, "x\x00")
		wantKind(t, err, apperr.KindNotFound, "NUL id")
		wantKind(t, h.DeleteGeofence(ctx, owner, "x\x00"), apperr.KindNotFound, "NUL id delete")
		_, _, err = h.Geofences(ctx, owner, 50, "\x00")
		wantKind(t, err, apperr.KindInvalid, "NUL cursor")
		_, err = h.CreateShare(ctx, owner, LocationShareInput{UserID: "\x00", Precision: PrecisionExact})
		wantKind(t, err, apperr.KindInvalid, "NUL user id")
		_, err = h.CreateShare(ctx, owner, LocationShareInput{ChatID: "x\x00", Precision: PrecisionExact})
		wantKind(t, err, apperr.KindInvalid, "NUL chat id")
		wantKind(t, h.StopShare(ctx, owner, "\x00"), apperr.KindNotFound, "NUL share id")
		g, err := h.CreateGeofence(ctx, owner, GeofenceInput{Name: " home ", Center: c, RadiusM: 100})
		if err != nil || g.Name != "home" || g.Notify != NotifyOwner {
			t.Fatalf("create: %+v %v", g, err)
		}
		p, err := h.CreateGeofence(ctx, owner, GeofenceInput{Name: "park", Polygon: [][2]float64{{0, 0}, {0, 0.01}, {0.01, 0.01}}, Notify: NotifyViewers, DwellS: 60})
		if err != nil {
			t.Fatal(err)
		}
		// Strangers: 404 everywhere.
		_, err = h.Geofence(ctx, stranger, g.ID)
		wantKind(t, err, apperr.KindNotFound, "stranger get")
		name := "mine"
		_, err = h.UpdateGeofence(ctx, stranger, g.ID, GeofencePatch{Name: &name})
		wantKind(t, err, apperr.KindNotFound, "stranger patch")
		wantKind(t, h.DeleteGeofence(ctx, stranger, g.ID), apperr.KindNotFound, "stranger delete")
		_, _, err = h.GeofenceEvents(ctx, stranger, g.ID, 50, "")
		wantKind(t, err, apperr.KindNotFound, "stranger events")
		if l, _, _ := h.Geofences(ctx, stranger, 50, ""); len(l) != 0 {
			t.Fatalf("stranger lists %v", l)
		}
		// List with pages.
		l, next, err := h.Geofences(ctx, owner, 1, "")
		if err != nil || len(l) != 1 || next == "" || l[0].ID != g.ID {
			t.Fatalf("page 1: %v %q %v", l, next, err)
		}
		l, next, _ = h.Geofences(ctx, owner, 1, next)
		if len(l) != 1 || next != "" || l[0].ID != p.ID || len(l[0].Polygon) != 3 {
			t.Fatalf("page 2: %+v %q", l, next)
		}
		// Patch: the polygon becomes a circle; a half-given circle is refused.
		r := 500.0
		_, err = h.UpdateGeofence(ctx, owner, p.ID, GeofencePatch{RadiusM: &r})
		wantKind(t, err, apperr.KindInvalid, "radius without a center for a polygon")
		up, err := h.UpdateGeofence(ctx, owner, p.ID, GeofencePatch{Name: &name, Center: c, RadiusM: &r})
		if err != nil || up.Name != "mine" || up.Polygon != nil || up.RadiusM != 500 || up.DwellS != 60 {
			t.Fatalf("patch: %+v %v", up, err)
		}
		if err := h.DeleteGeofence(ctx, owner, p.ID); err != nil {
			t.Fatal(err)
		}
		_, err = h.Geofence(ctx, owner, p.ID)
		wantKind(t, err, apperr.KindNotFound, "deleted")
		// At most MaxGeofences.
		for range MaxGeofences - 1 {
			if _, err := h.CreateGeofence(ctx, owner, GeofenceInput{Name: "x", Center: c, RadiusM: 100}); err != nil {
				t.Fatal(err)
			}
		}
		_, err = h.CreateGeofence(ctx, owner, GeofenceInput{Name: "x", Center: c, RadiusM: 100})
		wantKind(t, err, apperr.KindConflict, "too many geofences")
	})
}

func types(evs []published) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.data.(GeofenceEvent).Type)
	}
	return out
}

func TestGeofenceTransitions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		notes := &recordingNotifier{}
		h.opts.Notifier = notes
		ctx := context.Background()
		us := h.users(t, 4)
		owner, friend, rough, stranger := us[0], us[1], us[2], us[3]
		// A circle across the antimeridian, told to viewers, with a 5-minute dwell.
		center := geo.Point{Lat: 0, Lng: 180}
		circle, err := h.CreateGeofence(ctx, owner, GeofenceInput{Name: "dateline", Center: &center, RadiusM: 200, Notify: NotifyViewers, DwellS: 300})
		if err != nil {
			t.Fatal(err)
		}
		// A polygon around the North Pole, owner only.
		pole, err := h.CreateGeofence(ctx, owner, GeofenceInput{Name: "pole", Polygon: [][2]float64{{89.99, 0}, {89.99, 90}, {89.99, 180}, {89.99, -90}}})
		if err != nil {
			t.Fatal(err)
		}
		// Many far fences of another user do not matter.
		for range 20 {
			if _, err := h.CreateGeofence(ctx, stranger, GeofenceInput{Name: "s", Center: &center, RadiusM: 200}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.CreateShare(ctx, owner, LocationShareInput{UserID: friend, Precision: PrecisionExact}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.CreateShare(ctx, owner, LocationShareInput{UserID: rough, Precision: PrecisionApproximate}); err != nil {
			t.Fatal(err)
		}
		// dist east (positive) or west of the circle's center, in meters (1e-3° of longitude at the
		// equator is 111.2 m).
		fix := func(metersEast float64, acc float64) {
			t.Helper()
			h.clock.Advance(time.Second)
			now := h.clock.Now()
			lng := 180 + metersEast/111_195
			if lng > 180 {
				lng -= 360
			}
			if _, err := h.Update(ctx, owner, PositionReport{Lat: 0, Lng: lng, AccuracyM: &acc, RecordedAt: &now}, ""); err != nil {
				t.Fatal(err)
			}
		}
		steps := []struct {
			east, acc float64
			want      []string
		}{
			{-400, 5, nil},
			{-150, 5, []string{"enter"}}, // west of the line
			{190, 5, nil},                // east of it: still inside
			{215, 5, nil},                // border jitter: within the 25 m margin
			{199, 5, nil},
			{218, 5, nil},
			{3000, 500, nil}, // a wild, inaccurate fix
			{260, 80, nil},   // beyond the margin, not beyond its own accuracy
			{240, 5, []string{"exit"}},
			{205, 5, nil},
			{100, 150, nil}, // inside, but too inaccurate to enter
			{100, 10, []string{"enter"}},
		}
		for i, st := range steps {
			fix(st.east, st.acc)
			got := h.pub.take(EventGeofenceEvent)
			if !slices.Equal(types(got), st.want) {
				t.Fatalf("step %d (%v m, ±%v): events %v, want %v", i, st.east, st.acc, types(got), st.want)
			}
			for _, e := range got {
				// The owner and the exact viewer; never the approximate viewer nor a stranger.
				if !sameSet(e.users, []string{owner, friend}) {
					t.Fatalf("geofence_event went to %v", e.users)
				}
				ev := e.data.(GeofenceEvent)
				if ev.GeofenceID != circle.ID || ev.UserID != owner || !ev.At.Equal(h.clock.Now()) {
					t.Fatalf("event %+v", ev)
				}
			}
		}
		// Dwell: 5 minutes after the enter, once.
		h.clock.Advance(299 * time.Second)
		fix(50, 5)
		if got := h.pub.take(EventGeofenceEvent); !slices.Equal(types(got), []string{"dwell"}) {
			t.Fatalf("dwell: %v", types(got))
		}
		fix(50, 5)
		if got := h.pub.take(EventGeofenceEvent); len(got) != 0 {
			t.Fatalf("second dwell: %v", types(got))
		}
		if g, _ := h.Geofence(ctx, owner, circle.ID); !g.Inside {
			t.Fatal("the fence does not show the owner inside")
		}
		evs, _, err := h.GeofenceEvents(ctx, owner, circle.ID, 50, "")
		if err != nil || len(evs) != 4 || evs[0].Type != "dwell" || evs[3].Type != "enter" {
			t.Fatalf("stored events: %+v %v", evs, err)
		}
		if p1, next, _ := h.GeofenceEvents(ctx, owner, circle.ID, 3, ""); len(p1) != 3 || next == "" {
			t.Fatalf("events page: %v %q", p1, next)
		} else if p2, _, _ := h.GeofenceEvents(ctx, owner, circle.ID, 3, next); len(p2) != 1 || p2[0].Type != "enter" {
			t.Fatalf("events page 2: %+v", p2)
		}
		if len(notes.got) != 4 {
			t.Fatalf("notifier got %d events", len(notes.got))
		}

		// The pole polygon: owner only.
		polefix := func(lat, lng float64) []published {
			h.clock.Advance(time.Second)
			now := h.clock.Now()
			if _, err := h.Update(ctx, owner, PositionReport{Lat: lat, Lng: lng, AccuracyM: f64(5), RecordedAt: &now}, ""); err != nil {
				t.Fatal(err)
			}
			return h.pub.take(EventGeofenceEvent)
		}
		got := polefix(89.995, 137) // leaves the dateline circle too
		if len(got) != 2 {
			t.Fatalf("to the pole: %v", types(got))
		}
		for _, e := range got {
			ev := e.data.(GeofenceEvent)
			switch {
			case ev.GeofenceID == pole.ID && ev.Type == "enter":
				if !slices.Equal(e.users, []string{owner}) {
					t.Fatalf("pole event went to %v", e.users)
				}
			case ev.GeofenceID == circle.ID && ev.Type == "exit":
			default:
				t.Fatalf("unexpected %+v", ev)
			}
		}
		if got := polefix(89.999, -45); len(got) != 0 {
			t.Fatalf("across the pole: %v", types(got))
		}
		if got := polefix(89.97, -45); !slices.Equal(types(got), []string{"exit"}) {
			t.Fatalf("leaving the pole: %v", types(got))
		}
		// Reshaping resets the state.
		r := 300.0
		if g, err := h.UpdateGeofence(ctx, owner, circle.ID, GeofencePatch{RadiusM: &r}); err != nil || g.Inside || g.RadiusM != 300 {
			t.Fatalf("reshape: %+v %v", g, err)
		}
		fix(250, 5)
		if got := h.pub.take(EventGeofenceEvent); !slices.Equal(types(got), []string{"enter"}) {
			t.Fatalf("after reshape: %v", types(got))
		}
		// Nothing ever reached the stranger or the approximate viewer.
		if len(h.pub.to(stranger, EventGeofenceEvent))+len(h.pub.to(rough, EventGeofenceEvent)) != 0 {
			t.Fatal("geofence events leaked")
		}
	})
}
