package geo

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/golang/geo/s2"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Point
		want error
	}{
		{Point{0, 0}, nil},
		{Point{90, 180}, nil},
		{Point{-90, -180}, nil},
		{Point{90.0001, 0}, ErrLatitude},
		{Point{-91, 0}, ErrLatitude},
		{Point{math.NaN(), 0}, ErrLatitude},
		{Point{math.Inf(1), 0}, ErrLatitude},
		{Point{0, 180.5}, ErrLongitude},
		{Point{0, -181}, ErrLongitude},
		{Point{0, math.NaN()}, ErrLongitude},
		{Point{0, math.Inf(-1)}, ErrLongitude},
	}
	for _, tt := range tests {
		if got := tt.p.Validate(); got != tt.want {
			t.Errorf("%v.Validate() = %v, want %v", tt.p, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b Point
		want float64 // meters
		tol  float64
	}{
		{Point{0, 0}, Point{0, 0}, 0, 1e-9},
		{Point{0, 0}, Point{0, 1}, 111_195, 1},                                // one degree on the equator
		{Point{0, 179.5}, Point{0, -179.5}, 111_195, 1},                       // across the antimeridian
		{Point{89.5, 0}, Point{89.5, 180}, 111_195, 1},                        // over the north pole
		{Point{90, 0}, Point{-90, 0}, math.Pi * EarthRadiusM, 1},              // pole to pole
		{Point{51.5007, -0.1246}, Point{40.6892, -74.0445}, 5_574_840, 2_000}, // Big Ben to the Statue of Liberty
	}
	for _, tt := range tests {
		if got := Distance(tt.a, tt.b); math.Abs(got-tt.want) > tt.tol {
			t.Errorf("Distance(%v, %v) = %.1f, want %.1f ± %.0f", tt.a, tt.b, got, tt.want, tt.tol)
		}
		if got, back := Distance(tt.a, tt.b), Distance(tt.b, tt.a); math.Abs(got-back) > 1e-6 {
			t.Errorf("Distance is not symmetric: %f vs %f", got, back)
		}
	}
}

// randomNear returns a point at most d meters from p, uniformly in angle.
func randomNear(r *rand.Rand, p Point, d float64) Point {
	dist := d * math.Sqrt(r.Float64())
	bearing := r.Float64() * 2 * math.Pi
	return destination(p, bearing, dist)
}

// destination is the point dist meters from p along bearing (radians from north).
func destination(p Point, bearing, dist float64) Point {
	const rad = math.Pi / 180
	lat1, lng1 := p.Lat*rad, p.Lng*rad
	ad := dist / EarthRadiusM
	lat2 := math.Asin(math.Sin(lat1)*math.Cos(ad) + math.Cos(lat1)*math.Sin(ad)*math.Cos(bearing))
	lng2 := lng1 + math.Atan2(math.Sin(bearing)*math.Sin(ad)*math.Cos(lat1), math.Cos(ad)-math.Sin(lat1)*math.Sin(lat2))
	lng := math.Mod(lng2/rad+540, 360) - 180
	return Point{Lat: lat2 / rad, Lng: lng}
}

func TestSnapIsAFixedGrid(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for _, true_ := range []Point{{48.8584, 2.2945}, {0, 179.9999}, {0, -180}, {89.99, 45}, {-89.999, -120}, {-33.8568, 151.2153}} {
		snapped := Snap(true_)
		cell := s2.CellIDFromLatLng(true_.latLng()).Parent(ApproxLevel)
		// Many jittered updates: each maps to the center of its own cell, so the set of answers is
		// a handful of fixed points, and averaging them gives nothing finer than the cells.
		seen := map[Point]bool{}
		for range 5000 {
			p := randomNear(r, true_, 30)
			s := Snap(p)
			if Snap(p) != s {
				t.Fatalf("Snap(%v) is not deterministic", p)
			}
			if got := s2.CellIDFromLatLng(s.latLng()).Parent(ApproxLevel); got != s2.CellIDFromLatLng(p.latLng()).Parent(ApproxLevel) {
				t.Fatalf("Snap(%v) = %v is not in the point's own cell", p, s)
			}
			seen[s] = true
		}
		if len(seen) > 4 {
			t.Errorf("%v: 5000 updates within 30 m gave %d distinct approximate points, want a few cells", true_, len(seen))
		}
		// A point inside the same cell, anywhere, gives exactly the same answer.
		if got := Snap(fromS2(cell.Point())); got != snapped {
			t.Errorf("the cell's own center snaps to %v, want %v", got, snapped)
		}
		if d := Distance(true_, snapped); d > 2500 {
			t.Errorf("Snap(%v) is %.0f m away, want within the cell (< 2.5 km)", true_, d)
		}
	}
}

func TestSnapCellSize(t *testing.T) {
	t.Parallel()
	// The cell edges, at a few places: 1 to 3 km everywhere.
	for _, p := range []Point{{0, 0}, {45, 90}, {60, -30}, {89.9, 0}, {-70, 170}, {35, 139}} {
		c := s2.CellFromCellID(s2.CellIDFromLatLng(p.latLng()).Parent(ApproxLevel))
		for k := range 4 {
			e := angleToMeters(c.Vertex(k).Distance(c.Vertex((k + 1) % 4)))
			if e < 1000 || e > 3000 {
				t.Errorf("at %v the approximate grid's cell edge is %.0f m, want 1–3 km", p, e)
			}
		}
	}
}

func TestKeyKeepsOrder(t *testing.T) {
	t.Parallel()
	ids := []s2.CellID{s2.CellIDFromFace(0).ChildBeginAtLevel(30), s2.CellIDFromFace(2).RangeMax(), s2.CellIDFromFace(3).RangeMin(), s2.CellIDFromFace(5).RangeMax()}
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		ids = append(ids, s2.CellIDFromLatLng(Point{r.Float64()*180 - 90, r.Float64()*360 - 180}.latLng()))
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i-1] < ids[i] && Key(ids[i-1]) >= Key(ids[i]) {
			t.Fatalf("Key does not keep the order of %v and %v (faces ≥ 4 are above 2^63)", ids[i-1], ids[i])
		}
	}
}

func TestCapRangesCoverTheDisc(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []Point{{52.52, 13.405}, {0, 180}, {0, -179.999}, {90, 0}, {-89.99, 10}, {-45, -179.5}} {
		for _, radius := range []float64{100, 5_000, 50_000} {
			ranges := CapRanges(c, radius, 8)
			if len(ranges) == 0 || len(ranges) > 8 {
				t.Fatalf("CapRanges(%v, %v) gave %d ranges", c, radius, len(ranges))
			}
			for i := 1; i < len(ranges); i++ {
				if ranges[i-1].Max >= ranges[i].Min {
					t.Fatalf("ranges not sorted and disjoint: %v", ranges)
				}
			}
			for range 500 {
				p := randomNear(r, c, radius*0.999)
				k := LeafKey(p)
				if !slices.ContainsFunc(ranges, func(rg Range) bool { return rg.Min <= k && k <= rg.Max }) {
					t.Fatalf("%v at %.0f m from %v is in none of the ranges", p, Distance(c, p), c)
				}
			}
		}
	}
}

func TestCircle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c      Point
		radius float64
		in     []Point
		out    []Point
	}{
		{Point{48.8584, 2.2945}, 500, []Point{{48.8584, 2.2945}, {48.8620, 2.2945}}, []Point{{48.8640, 2.2945}, {0, 0}}},
		{Point{0, 179.999}, 1000, []Point{{0, -179.995}}, []Point{{0, -179.98}, {0, 179.98}}}, // antimeridian
		{Point{90, 0}, 2000, []Point{{89.99, 123}, {89.985, -60}}, []Point{{89.98, 0}}},       // north pole: any longitude
		{Point{-89.995, 77}, 1000, []Point{{-90, 0}, {-89.998, -100}}, []Point{{-89.98, 77}}}, // near the south pole
	}
	for _, tt := range tests {
		f, err := NewCircle(tt.c, tt.radius)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range tt.in {
			if !f.Contains(p) || f.Outside(p) != 0 {
				t.Errorf("circle %v r=%v: %v (at %.0f m) should be inside", tt.c, tt.radius, p, Distance(tt.c, p))
			}
		}
		for _, p := range tt.out {
			if f.Contains(p) {
				t.Errorf("circle %v r=%v: %v (at %.0f m) should be outside", tt.c, tt.radius, p, Distance(tt.c, p))
			}
			if got, want := f.Outside(p), Distance(tt.c, p)-tt.radius; math.Abs(got-want) > 1 {
				t.Errorf("Outside(%v) = %.1f, want %.1f", p, got, want)
			}
		}
	}
	for _, r := range []float64{0, 49.9, 50_000.1, math.NaN(), math.Inf(1), -5} {
		if _, err := NewCircle(Point{0, 0}, r); err == nil {
			t.Errorf("NewCircle radius %v: no error", r)
		}
	}
	if _, err := NewCircle(Point{91, 0}, 100); err == nil {
		t.Error("NewCircle with a bad center: no error")
	}
}

func TestPolygon(t *testing.T) {
	t.Parallel()
	square := func(c Point, d float64) []Point {
		return []Point{{c.Lat - d, c.Lng - d}, {c.Lat - d, c.Lng + d}, {c.Lat + d, c.Lng + d}, {c.Lat + d, c.Lng - d}}
	}
	tests := []struct {
		name    string
		pts     []Point
		in, out []Point
	}{
		{"square", square(Point{10, 20}, 0.01), []Point{{10, 20}, {10.009, 20.009}}, []Point{{10.011, 20}, {10, 19.98}, {-10, -20}}},
		{"clockwise", []Point{{10.01, 19.99}, {10.01, 20.01}, {9.99, 20.01}, {9.99, 19.99}}, []Point{{10, 20}}, []Point{{10.02, 20}}},
		{"closed ring", append(square(Point{10, 20}, 0.01), Point{9.99, 19.99}), []Point{{10, 20}}, []Point{{10.02, 20}}},
		{"antimeridian", []Point{{-0.01, 179.99}, {-0.01, -179.99}, {0.01, -179.99}, {0.01, 179.99}},
			[]Point{{0, 180}, {0, -180}, {0, 179.995}, {0.005, -179.995}}, []Point{{0, 179.98}, {0, -179.98}, {0, 0}}},
		{"north pole", []Point{{89.9, 0}, {89.9, 90}, {89.9, 180}, {89.9, -90}},
			[]Point{{90, 0}, {89.95, 45}, {89.95, -135}}, []Point{{89.8, 0}, {89.8, 180}}},
		{"south pole triangle", []Point{{-89.9, 0}, {-89.9, 120}, {-89.9, -120}},
			[]Point{{-90, 0}, {-89.96, 60}}, []Point{{-89.85, 60}}},
		{"concave L", []Point{{0, 0}, {0, 0.02}, {0.01, 0.02}, {0.01, 0.01}, {0.02, 0.01}, {0.02, 0}},
			[]Point{{0.005, 0.005}, {0.015, 0.005}, {0.005, 0.015}}, []Point{{0.015, 0.015}}},
	}
	for _, tt := range tests {
		f, err := NewPolygon(tt.pts)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for _, p := range tt.in {
			if !f.Contains(p) {
				t.Errorf("%s: %v should be inside", tt.name, p)
			}
		}
		for _, p := range tt.out {
			if f.Contains(p) {
				t.Errorf("%s: %v should be outside", tt.name, p)
			}
			if f.Outside(p) <= 0 {
				t.Errorf("%s: Outside(%v) = %v, want > 0", tt.name, p, f.Outside(p))
			}
		}
	}
	// Distance beyond an edge: 0.001° of latitude north of the square's top edge ≈ 111 m.
	f, _ := NewPolygon(square(Point{0, 0}, 0.01))
	if got := f.Outside(Point{0.011, 0}); math.Abs(got-111.2) > 1 {
		t.Errorf("Outside = %.1f m, want about 111 m", got)
	}

	bad := []struct {
		name string
		pts  []Point
		want error
	}{
		{"two vertices", []Point{{0, 0}, {0, 1}}, ErrVertexCount},
		{"101 vertices", ngon(101), ErrVertexCount},
		{"bowtie", []Point{{0, 0}, {0.01, 0.01}, {0, 0.01}, {0.01, 0}}, ErrSelfIntersects},
		{"repeated vertex", []Point{{0, 0}, {0, 0}, {0.01, 0.01}, {0, 0.01}}, ErrDegenerate},
		{"collinear", []Point{{0, 0}, {0, 0.01}, {0, 0.02}}, ErrSelfIntersects},
		{"spike back", []Point{{0, 0}, {0, 0.02}, {0, 0.01}, {0.01, 0.01}}, ErrSelfIntersects},
		{"touching", []Point{{0, 0}, {0, 0.02}, {0.01, 0.02}, {0, 0.01}, {0.01, 0}}, ErrSelfIntersects},
		{"too large", square(Point{0, 0}, 1), ErrTooLarge},
	}
	for _, tt := range bad {
		if _, err := NewPolygon(tt.pts); err != tt.want {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := NewPolygon(ngon(100)); err != nil {
		t.Errorf("100 vertices: %v", err)
	}
	if _, err := NewPolygon([]Point{{0, 0}, {0, math.NaN()}, {1, 1}}); err == nil {
		t.Error("NaN vertex: no error")
	}
}

func ngon(n int) []Point {
	pts := make([]Point, n)
	for i := range pts {
		a := 2 * math.Pi * float64(i) / float64(n)
		pts[i] = Point{0.01 * math.Sin(a), 0.01 * math.Cos(a)}
	}
	return pts
}

func TestCoveringFindsEveryInsidePoint(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	fences := []struct {
		f *Fence
		c Point
		r float64
	}{}
	for _, c := range []Point{{40, -74}, {0, 180}, {89.999, 0}, {-90, 0}, {12, -179.99}} {
		for _, radius := range []float64{50, 800, 50_000} {
			f, err := NewCircle(c, radius)
			if err != nil {
				t.Fatal(err)
			}
			fences = append(fences, struct {
				f *Fence
				c Point
				r float64
			}{f, c, radius})
		}
	}
	pf, err := NewPolygon([]Point{{-0.01, 179.99}, {-0.01, -179.99}, {0.01, -179.99}, {0.01, 179.99}})
	if err != nil {
		t.Fatal(err)
	}
	fences = append(fences, struct {
		f *Fence
		c Point
		r float64
	}{pf, Point{0, 180}, 1600})
	for _, fc := range fences {
		cover := fc.f.Covering()
		if len(cover) == 0 || len(cover) > FenceCells {
			t.Fatalf("covering of %d cells", len(cover))
		}
		for range 300 {
			p := randomNear(r, fc.c, fc.r)
			if !fc.f.Contains(p) {
				continue
			}
			keys := CellKeys(p)
			if !slices.ContainsFunc(keys, func(k int64) bool { return slices.Contains(cover, k) }) {
				t.Fatalf("%v is inside the fence at %v but none of its cells is in the covering", p, fc.c)
			}
		}
	}
}

func TestStepHysteresis(t *testing.T) {
	t.Parallel()
	rules := Rules{MaxAccuracyM: 100, ExitMarginM: 30}
	center := Point{0, 179.999} // on the antimeridian, for good measure
	f, _ := NewCircle(center, 200)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(dist float64, acc float64, sec int) Fix {
		return Fix{Point: destination(center, math.Pi/2, dist), AccuracyM: acc, At: t0.Add(time.Duration(sec) * time.Second)}
	}
	type step struct {
		fix  Fix
		want []Event
	}
	steps := []step{
		{at(300, 10, 0), nil},
		{at(150, 10, 1), []Event{Enter}},
		// Jitter around the border: in, just out (within the margin), in, out: no flapping.
		{at(210, 10, 2), nil},
		{at(195, 10, 3), nil},
		{at(225, 10, 4), nil},
		// A wild fix far out but inaccurate: nothing.
		{at(5000, 500, 5), nil},
		// Beyond the margin but less than the fix's own accuracy radius: still nothing.
		{at(250, 80, 6), nil},
		{at(240, 5, 7), []Event{Exit}},
		{at(220, 5, 8), nil},
		// Back in with a bad fix: nothing; with a good one: enter.
		{at(10, 150, 9), nil},
		{at(10, 20, 10), []Event{Enter}},
	}
	var s State
	for i, st := range steps {
		var got []Event
		s, got = rules.Step(f, s, st.fix, 0)
		if !slices.Equal(got, st.want) {
			t.Errorf("step %d (%.0f m, ±%.0f): got %v, want %v", i, Distance(center, st.fix.Point), st.fix.AccuracyM, got, st.want)
		}
	}
	// Dwell: once, after the dwell time, while inside; not again in the same stay.
	var evs []Event
	s = State{}
	s, evs = rules.Step(f, s, at(0, 5, 0), 5*time.Minute)
	if !slices.Equal(evs, []Event{Enter}) {
		t.Fatalf("enter: %v", evs)
	}
	if _, evs = rules.Step(f, s, at(0, 5, 299), 5*time.Minute); len(evs) != 0 {
		t.Fatalf("dwell too early: %v", evs)
	}
	s, evs = rules.Step(f, s, at(0, 500, 300), 5*time.Minute) // even from an inaccurate fix
	if !slices.Equal(evs, []Event{Dwell}) {
		t.Fatalf("dwell: %v", evs)
	}
	if _, evs = rules.Step(f, s, at(0, 5, 900), 5*time.Minute); len(evs) != 0 {
		t.Fatalf("second dwell: %v", evs)
	}
}

func FuzzPolygon(f *testing.F) {
	f.Add(0.0, 0.0, 0.0, 0.01, 0.01, 0.01, 0.01, 0.0, 0.005, 0.005)
	f.Add(-0.01, 179.99, -0.01, -179.99, 0.01, -179.99, 0.01, 179.99, 0.0, 180.0)
	f.Add(89.9, 0.0, 89.9, 120.0, 89.9, -120.0, 89.9, 60.0, 90.0, 0.0)
	f.Fuzz(func(t *testing.T, a1, o1, a2, o2, a3, o3, a4, o4, pa, po float64) {
		pts := []Point{{a1, o1}, {a2, o2}, {a3, o3}, {a4, o4}}
		fence, err := NewPolygon(pts)
		p := Point{pa, po}
		if err != nil || p.Validate() != nil {
			return
		}
		in := fence.Contains(p)
		out := fence.Outside(p)
		if math.IsNaN(out) || out < 0 || (in && out != 0) {
			t.Fatalf("Contains=%v Outside=%v", in, out)
		}
		if in {
			keys := CellKeys(p)
			cover := fence.Covering()
			if !slices.ContainsFunc(keys, func(k int64) bool { return slices.Contains(cover, k) }) {
				t.Fatalf("inside point %v not found through the covering", p)
			}
		}
		_ = Snap(p)
	})
}

func FuzzValidate(f *testing.F) {
	f.Add(0.0, 0.0)
	f.Add(90.0, -180.0)
	f.Fuzz(func(t *testing.T, lat, lng float64) {
		p := Point{lat, lng}
		if p.Validate() != nil {
			return
		}
		s := Snap(p)
		if s.Validate() != nil {
			t.Fatalf("Snap(%v) = %v is invalid", p, s)
		}
		if d := Distance(p, s); d > 2500 || math.IsNaN(d) {
			t.Fatalf("Snap(%v) = %v, %.0f m away", p, s, d)
		}
		if Snap(s) != s {
			t.Fatalf("Snap is not idempotent at %v", p)
		}
	})
}
