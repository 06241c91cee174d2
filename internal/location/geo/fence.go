package geo

import (
	"errors"
	"fmt"
	"math"

	"github.com/golang/geo/r3"
	"github.com/golang/geo/s2"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// Limits of geofences.
const (
	MinRadiusM        = 50
	MaxRadiusM        = 50_000
	MinVertices       = 3
	MaxVertices       = 100
	MaxPolygonRadiusM = 50_000 // every vertex within this distance of the polygon's center
)

// The levels of the cells that index geofences: a fence is covered by at most FenceCells cells
// of these levels, and a point looks up its own cell at each of them.
const (
	FenceMinLevel = 6  // about 1,000 km
	FenceMaxLevel = 18 // about 35 m
	FenceCells    = 8
)

// Fence is a validated geofence: a circle or a simple polygon whose edges are geodesics (the
// shortest paths on the sphere), which is what makes it correct across the antimeridian and
// around the poles.
type Fence struct {
	center s2.Point
	radius float64 // circle: its radius; polygon: the farthest vertex from center (meters)
	// Polygon only: the vertices, and the ring in the gnomonic projection centered on center.
	// That projection maps geodesics to straight lines, so a point is inside the spherical polygon
	// exactly when its projection is inside the planar ring.
	verts  []s2.Point
	ring   orb.Ring
	e1, e2 r3.Vector
}

// NewCircle validates and builds a circle of radiusM meters around c.
func NewCircle(c Point, radiusM float64) (*Fence, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if math.IsNaN(radiusM) || radiusM < MinRadiusM || radiusM > MaxRadiusM {
		return nil, fmt.Errorf("radius must be from %d to %d meters", MinRadiusM, MaxRadiusM)
	}
	return &Fence{center: c.s2(), radius: radiusM}, nil
}

// Errors of NewPolygon.
var (
	ErrVertexCount    = fmt.Errorf("a polygon has %d to %d vertices", MinVertices, MaxVertices)
	ErrSelfIntersects = errors.New("the polygon's edges cross each other (it must be simple)")
	ErrDegenerate     = errors.New("the polygon has repeated vertices or no area")
	ErrTooLarge       = fmt.Errorf("every vertex must be within %d meters of the polygon's center", MaxPolygonRadiusM)
)

// NewPolygon validates and builds a simple polygon; a closing vertex equal to the first is dropped.
// Either orientation is accepted: the polygon is the smaller of the two regions the ring bounds.
func NewPolygon(pts []Point) (*Fence, error) {
	if len(pts) > 1 && pts[0] == pts[len(pts)-1] {
		pts = pts[:len(pts)-1]
	}
	if len(pts) < MinVertices || len(pts) > MaxVertices {
		return nil, ErrVertexCount
	}
	f := &Fence{verts: make([]s2.Point, len(pts))}
	var sum r3.Vector
	for i, p := range pts {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("vertex %d: %w", i, err)
		}
		f.verts[i] = p.s2()
		sum = sum.Add(f.verts[i].Vector)
	}
	if sum.Norm() < 1e-9 {
		return nil, ErrDegenerate
	}
	f.center = s2.Point{Vector: sum.Normalize()}
	for _, v := range f.verts {
		f.radius = max(f.radius, angleToMeters(f.center.Distance(v)))
	}
	if f.radius > MaxPolygonRadiusM {
		return nil, ErrTooLarge
	}
	f.e1 = s2.Ortho(f.center).Vector
	f.e2 = f.center.Cross(f.e1).Normalize()
	f.ring = make(orb.Ring, 0, len(pts)+1)
	for _, v := range f.verts {
		q, _ := f.project(v)
		f.ring = append(f.ring, q)
	}
	f.ring = append(f.ring, f.ring[0])
	if err := checkSimple(f.ring); err != nil {
		return nil, err
	}
	return f, nil
}

// project maps p to the gnomonic plane of the fence; ok is false for points on the far side
// (more than 90° from the center), which are never inside.
func (f *Fence) project(p s2.Point) (orb.Point, bool) {
	d := p.Dot(f.center.Vector)
	if d <= 1e-9 {
		return orb.Point{}, false
	}
	return orb.Point{p.Dot(f.e1) / d, p.Dot(f.e2) / d}, true
}

// checkSimple refuses repeated vertices, a ring without area and edges that cross or touch
// (other than consecutive edges at their shared vertex).
func checkSimple(r orb.Ring) error {
	n := len(r) - 1
	for i := range n {
		if r[i] == r[i+1] {
			return ErrDegenerate
		}
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			if j == i+1 || (i == 0 && j == n-1) { // neighbours share a vertex
				if collinearOverlap(r[i], r[i+1], r[j], r[j+1]) {
					return ErrSelfIntersects
				}
				continue
			}
			if segmentsIntersect(r[i], r[i+1], r[j], r[j+1]) {
				return ErrSelfIntersects
			}
		}
	}
	if math.Abs(planar.Area(r)) < 1e-18 {
		return ErrDegenerate
	}
	return nil
}

// orient is the sine of the angle at a from b to c: positive counter-clockwise, 0 when the three
// points are collinear to within rounding.
func orient(a, b, c orb.Point) float64 {
	cross := (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
	l := math.Hypot(b[0]-a[0], b[1]-a[1]) * math.Hypot(c[0]-a[0], c[1]-a[1])
	if l == 0 || math.Abs(cross) <= 1e-9*l {
		return 0
	}
	return cross
}

func onSegment(a, b, p orb.Point) bool {
	return math.Min(a[0], b[0]) <= p[0] && p[0] <= math.Max(a[0], b[0]) &&
		math.Min(a[1], b[1]) <= p[1] && p[1] <= math.Max(a[1], b[1])
}

func sign(x float64) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// segmentsIntersect reports whether segments ab and cd share a point.
func segmentsIntersect(a, b, c, d orb.Point) bool {
	o1, o2 := sign(orient(a, b, c)), sign(orient(a, b, d))
	o3, o4 := sign(orient(c, d, a)), sign(orient(c, d, b))
	if o1 != o2 && o3 != o4 {
		return true
	}
	return (o1 == 0 && onSegment(a, b, c)) || (o2 == 0 && onSegment(a, b, d)) ||
		(o3 == 0 && onSegment(c, d, a)) || (o4 == 0 && onSegment(c, d, b))
}

// collinearOverlap reports whether consecutive edges ab and cd (b == c, or d == a for the closing
// pair) fold back onto each other.
func collinearOverlap(a, b, c, d orb.Point) bool {
	var shared, p, q orb.Point
	switch {
	case b == c:
		shared, p, q = b, a, d
	case d == a:
		shared, p, q = a, b, c
	default:
		return segmentsIntersect(a, b, c, d)
	}
	if sign(orient(p, shared, q)) != 0 {
		return false
	}
	// Collinear: they overlap when p and q lie on the same side of the shared vertex.
	return (p[0]-shared[0])*(q[0]-shared[0])+(p[1]-shared[1])*(q[1]-shared[1]) > 0
}

// IsCircle reports whether f is a circle.
func (f *Fence) IsCircle() bool { return f.verts == nil }

// Contains reports whether p is inside the fence (the boundary counts as inside).
func (f *Fence) Contains(p Point) bool {
	q := p.s2()
	if f.IsCircle() {
		return angleToMeters(f.center.Distance(q)) <= f.radius
	}
	if angleToMeters(f.center.Distance(q)) > f.radius {
		return false // outside the bounding cap: cheap early answer
	}
	pp, ok := f.project(q)
	return ok && planar.RingContains(f.ring, pp)
}

// Outside returns how far p is beyond the fence's boundary, in meters; 0 when p is inside.
func (f *Fence) Outside(p Point) float64 {
	if f.Contains(p) {
		return 0
	}
	q := p.s2()
	if f.IsCircle() {
		return angleToMeters(f.center.Distance(q)) - f.radius
	}
	best := math.Inf(1)
	for i, a := range f.verts {
		b := f.verts[(i+1)%len(f.verts)]
		best = math.Min(best, angleToMeters(s2.DistanceFromSegment(q, a, b)))
	}
	return best
}

// Covering returns the keys of at most FenceCells cells, of levels FenceMinLevel to
// FenceMaxLevel, that together cover the fence. A point inside the fence has one of them among
// its CellKeys.
func (f *Fence) Covering() []int64 {
	c := s2.CapFromCenterAngle(f.center, metersToAngle(f.radius*1.0001+1))
	rc := &s2.RegionCoverer{MinLevel: FenceMinLevel, MaxLevel: FenceMaxLevel, MaxCells: FenceCells}
	cu := rc.Covering(c)
	out := make([]int64, len(cu))
	for i, id := range cu {
		out[i] = Key(id)
	}
	return out
}

// CellKeys returns the keys of the cells containing p at every level from FenceMinLevel to
// FenceMaxLevel: the lookup keys of the geofence index.
func CellKeys(p Point) []int64 {
	leaf := s2.CellIDFromLatLng(p.latLng())
	out := make([]int64, 0, FenceMaxLevel-FenceMinLevel+1)
	for l := FenceMinLevel; l <= FenceMaxLevel; l++ {
		out = append(out, Key(leaf.Parent(l)))
	}
	return out
}
