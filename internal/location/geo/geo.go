// Package geo is the pure geometry of the location feature: validation of coordinates, great-circle
// distances, the fixed grid of approximate positions, S2 cell keys for the spatial indexes, and
// geofences (circles and simple polygons). It does no I/O and holds no state: every function is
// safe for concurrent use.
package geo

import (
	"errors"
	"math"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"
)

// EarthRadiusM is the mean radius of the Earth (IUGG), in meters.
const EarthRadiusM = 6371008.8

// Point is a position in degrees (WGS 84).
type Point struct {
	Lat float64 `json:"lat" doc:"Latitude in degrees, -90 to 90"`
	Lng float64 `json:"lng" doc:"Longitude in degrees, -180 to 180"`
}

// Errors of Validate.
var (
	ErrLatitude  = errors.New("latitude must be a finite number from -90 to 90")
	ErrLongitude = errors.New("longitude must be a finite number from -180 to 180")
)

// Validate checks that p is a finite position within the ranges of latitude and longitude.
func (p Point) Validate() error {
	if math.IsNaN(p.Lat) || math.IsInf(p.Lat, 0) || p.Lat < -90 || p.Lat > 90 {
		return ErrLatitude
	}
	if math.IsNaN(p.Lng) || math.IsInf(p.Lng, 0) || p.Lng < -180 || p.Lng > 180 {
		return ErrLongitude
	}
	return nil
}

func (p Point) latLng() s2.LatLng { return s2.LatLngFromDegrees(p.Lat, p.Lng) }

func (p Point) s2() s2.Point { return s2.PointFromLatLng(p.latLng()) }

func fromS2(q s2.Point) Point {
	ll := s2.LatLngFromPoint(q)
	return Point{Lat: ll.Lat.Degrees(), Lng: ll.Lng.Degrees()}
}

// Distance is the great-circle distance between a and b in meters (haversine).
func Distance(a, b Point) float64 {
	const rad = math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLng := (b.Lng - a.Lng) * rad
	s := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * EarthRadiusM * math.Asin(math.Sqrt(math.Min(1, s)))
}

func metersToAngle(m float64) s1.Angle { return s1.Angle(m / EarthRadiusM) }

func angleToMeters(a s1.Angle) float64 { return float64(a) * EarthRadiusM }

// ApproxLevel is the S2 level of the grid of approximate positions. Level-12 cells are
// quadrilaterals of about 1.7 to 2.7 km a side (3.3 to 6.4 km²) everywhere on Earth.
const ApproxLevel = 12

// ApproxAccuracyM is the accuracy reported with an approximate position: about the distance from
// the center of a level-12 cell to its farthest corner.
const ApproxAccuracyM = 2000

// Snap returns the center of the fixed level-12 S2 cell that contains p. Every point of a cell
// gives the same answer, whatever the order or number of calls, so a viewer who collects many
// snapped positions learns the cell and nothing more: there is no noise to average away.
func Snap(p Point) Point {
	return fromS2(s2.CellIDFromLatLng(p.latLng()).Parent(ApproxLevel).Point())
}

// Key converts a cell id to a signed 64-bit integer with the same order (the sign bit flipped),
// so that cell ranges are BIGINT ranges on both SQLite and PostgreSQL.
func Key(id s2.CellID) int64 { return int64(uint64(id) ^ (1 << 63)) }

// LeafKey is the key of the leaf cell (about 1 cm) containing p: the value of the spatial index of
// positions.
func LeafKey(p Point) int64 { return Key(s2.CellIDFromLatLng(p.latLng())) }

// Range is an inclusive range of leaf keys.
type Range struct{ Min, Max int64 }

// CapRanges returns the ranges of leaf keys that cover the disc of radiusM around center: every
// point within radiusM has its LeafKey in one of them (points somewhat farther may too: filter
// by Distance). At most maxCells ranges, sorted and disjoint.
func CapRanges(center Point, radiusM float64, maxCells int) []Range {
	c := s2.CapFromCenterAngle(center.s2(), metersToAngle(radiusM))
	rc := &s2.RegionCoverer{MinLevel: 0, MaxLevel: 30, MaxCells: maxCells}
	cu := rc.Covering(c)
	cu.Normalize()
	out := make([]Range, 0, len(cu))
	for _, id := range cu {
		r := Range{Key(id.RangeMin()), Key(id.RangeMax())}
		if n := len(out); n > 0 && out[n-1].Max+1 >= r.Min {
			out[n-1].Max = max(out[n-1].Max, r.Max)
			continue
		}
		out = append(out, r)
	}
	return out
}
