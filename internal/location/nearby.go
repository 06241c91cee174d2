package location

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/location/geo"
	"github.com/nerutalk/nerutalk/internal/store"
)

// nearbyCellRanges is how many cell ranges cover the search disc; nearbyPerRange bounds the rows
// read per range in a crowded place.
const (
	// snapReachM bounds the distance from a point to the center of its grid cell.
	snapReachM       = 2500
	nearbyCellRanges = 8
	nearbyPerRange   = 1000
)

// Nearby returns the discoverable users within radiusM of the caller, who must be discoverable
// and have a recent position: nearest first, distances rounded up to 100 m, no coordinates.
//
// Distances are measured to each user's approximate position (the center of their grid cell,
// geo.Snap), both for the radius and for the answer: a caller who reports made-up positions and
// asks again and again (trilateration) learns at most the cell, as from an approximate share.
// The candidates come from the cell index (a few key ranges covering the disc widened by the
// cell size), never a scan of all users; the distance is then the haversine.
func (s *Service) Nearby(ctx context.Context, userID string, radiusM, limit int, cursor string) ([]NearbyUser, string, error) {
	if radiusM < MinNearbyRadiusM || radiusM > MaxNearbyRadiusM {
		return nil, "", apperr.Invalid("query.radius_m", fmt.Sprintf("must be from %d to %d", MinNearbyRadiusM, MaxNearbyRadiusM))
	}
	now := s.now()
	me, set, err := s.latest(ctx, s.db.R, userID)
	if err != nil {
		return nil, "", err
	}
	if !set.Discoverable {
		return nil, "", apperr.New(apperr.KindForbidden, "not_discoverable",
			"only discoverable users see who is nearby: turn on discoverable with PUT /location/settings")
	}
	if me == nil || me.RecordedAt.Before(now.Add(-NearbyMaxAge)) {
		return nil, "", apperr.New(apperr.KindConflict, "no_location", "send your position first (PUT /location)")
	}
	center := geo.Point{Lat: me.Lat, Lng: me.Lng}
	ranges := geo.CapRanges(center, float64(radiusM)+snapReachM, nearbyCellRanges)
	args := []any{store.Millis(now.Add(-NearbyMaxAge)), userID}
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		args = append(args, r.Min, r.Max)
		parts[i] = fmt.Sprintf(`SELECT * FROM (SELECT user_id, lat, lng FROM location_users
			WHERE discoverable AND has_position AND cell BETWEEN $%d AND $%d AND recorded_at >= $1 AND user_id <> $2
			LIMIT %d) r%d`, len(args)-1, len(args), nearbyPerRange, i)
	}
	rows, err := s.db.R.QueryContext(ctx, strings.Join(parts, " UNION ALL "), args...)
	if err != nil {
		return nil, "", s.internal("nearby", err)
	}
	defer rows.Close()
	var out []NearbyUser
	for rows.Next() {
		var id string
		var p geo.Point
		if err := rows.Scan(&id, &p.Lat, &p.Lng); err != nil {
			return nil, "", s.internal("nearby", err)
		}
		if d := geo.Distance(center, geo.Snap(p)); d <= float64(radiusM) {
			out = append(out, NearbyUser{UserID: id, DistanceM: roundUp100(d)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.internal("nearby", err)
	}
	if s.opts.Blocks != nil && len(out) > 0 { // never someone with a block either way
		ids := make([]string, len(out))
		for i, n := range out {
			ids[i] = n.UserID
		}
		blocked, err := s.opts.Blocks.BlockedAmong(ctx, userID, ids)
		if err != nil {
			return nil, "", s.internal("nearby", err)
		}
		out = slices.DeleteFunc(out, func(n NearbyUser) bool { return blocked[n.UserID] })
	}
	key := func(n NearbyUser) string { return fmt.Sprintf("%06d:%s", n.DistanceM, n.UserID) }
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return page(out, limit, cursor, key)
}

// roundUp100 rounds a distance up to the next multiple of 100 m (at least 100).
func roundUp100(d float64) int {
	return max(100, int(math.Ceil(d/100))*100)
}
