package location

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/location/geo"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/usertext"
)

// Who is told of a geofence's events.
const (
	NotifyOwner   = "owner"   // the owner alone
	NotifyViewers = "viewers" // the owner and whoever sees the owner's exact location now
)

// MaxGeofences is the most geofences a user may have.
const MaxGeofences = 100

// Geofence is a user's geofence: a circle (center, radius_m) or a polygon.
type Geofence struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Center    *geo.Point   `json:"center,omitempty"`
	RadiusM   float64      `json:"radius_m,omitempty"`
	Polygon   [][2]float64 `json:"polygon,omitempty" doc:"[[lat, lng], ...]"`
	Notify    string       `json:"notify" enum:"owner,viewers"`
	DwellS    int64        `json:"dwell_s" doc:"A dwell event after this many seconds inside; 0 = none"`
	Inside    bool         `json:"inside" doc:"Whether the owner is inside now"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
	shape     geofenceShape
}

// geofenceShape is the stored JSON of a fence's shape.
type geofenceShape struct {
	Center  *geo.Point   `json:"center,omitempty"`
	RadiusM float64      `json:"radius_m,omitempty"`
	Polygon [][2]float64 `json:"polygon,omitempty"`
}

func (sh geofenceShape) fence() (*geo.Fence, error) {
	if sh.Polygon != nil {
		pts := make([]geo.Point, len(sh.Polygon))
		for i, v := range sh.Polygon {
			pts[i] = geo.Point{Lat: v[0], Lng: v[1]}
		}
		return geo.NewPolygon(pts)
	}
	if sh.Center == nil {
		return nil, errors.New("no shape")
	}
	return geo.NewCircle(*sh.Center, sh.RadiusM)
}

// GeofenceInput is POST /geofences: a circle (center and radius_m) or a polygon.
type GeofenceInput struct {
	Name    string       `json:"name" minLength:"1" maxLength:"100"`
	Center  *geo.Point   `json:"center,omitempty" doc:"Center of a circle"`
	RadiusM float64      `json:"radius_m,omitempty" doc:"Radius of a circle: 50 to 50000 meters"`
	Polygon [][2]float64 `json:"polygon,omitempty" maxItems:"101" doc:"Vertices [[lat, lng], ...] of a simple polygon: 3 to 100, edges not crossing, within 50 km of its center"`
	Notify  string       `json:"notify,omitempty" enum:"owner,viewers" doc:"Who is told: the owner (default) or also whoever sees the owner's exact location"`
	DwellS  int64        `json:"dwell_s,omitempty" minimum:"0" maximum:"86400" doc:"Report dwell after this many seconds inside; 0 = never"`
}

// GeofencePatch is PATCH /geofences/{id}: absent fields keep their value. A new shape (center
// and/or radius_m of a circle, or polygon) resets the owner's state in the fence.
type GeofencePatch struct {
	Name    *string      `json:"name,omitempty" minLength:"1" maxLength:"100"`
	Center  *geo.Point   `json:"center,omitempty"`
	RadiusM *float64     `json:"radius_m,omitempty"`
	Polygon [][2]float64 `json:"polygon,omitempty" maxItems:"101"`
	Notify  *string      `json:"notify,omitempty" enum:"owner,viewers"`
	DwellS  *int64       `json:"dwell_s,omitempty" minimum:"0" maximum:"86400"`
}

func checkName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > maxNameChars {
		return apperr.Invalid("body.name", "1 to 100 characters")
	}
	if err := usertext.Name.Check(name); err != nil {
		return apperr.Invalid("body.name", err.Error())
	}
	return nil
}

func checkNotify(n string) error {
	if n != NotifyOwner && n != NotifyViewers {
		return apperr.Invalid("body.notify", "must be owner or viewers")
	}
	return nil
}

func checkDwell(d int64) error {
	if d < 0 || d > int64(MaxGeofenceDwell/time.Second) {
		return apperr.Invalid("body.dwell_s", "must be from 0 to 86400")
	}
	return nil
}

// checkShape validates a shape and returns its fence.
func checkShape(sh geofenceShape) (*geo.Fence, error) {
	switch {
	case sh.Polygon != nil && (sh.Center != nil || sh.RadiusM != 0):
		return nil, apperr.Invalid("body.polygon", "give either center and radius_m, or polygon")
	case sh.Polygon == nil && sh.Center == nil:
		return nil, apperr.Invalid("body.center", "give either center and radius_m, or polygon")
	}
	f, err := sh.fence()
	if err != nil {
		loc := "body.polygon"
		if sh.Polygon == nil {
			loc = "body.radius_m"
			if sh.Center.Validate() != nil {
				loc = "body.center"
			}
		}
		return nil, apperr.Invalid(loc, err.Error())
	}
	return f, nil
}

const fenceCols = `id, name, shape, notify, dwell_s, inside, created_at, updated_at`

func scanFence(r scanner) (Geofence, error) {
	var g Geofence
	var shape string
	var created, updated int64
	if err := r.Scan(&g.ID, &g.Name, &shape, &g.Notify, &g.DwellS, &g.Inside, &created, &updated); err != nil {
		return Geofence{}, err
	}
	if err := json.Unmarshal([]byte(shape), &g.shape); err != nil {
		return Geofence{}, fmt.Errorf("geofence %s: shape: %w", g.ID, err)
	}
	g.Center, g.RadiusM, g.Polygon = g.shape.Center, g.shape.RadiusM, g.shape.Polygon
	g.CreatedAt, g.UpdatedAt = store.Time(created), store.Time(updated)
	return g, nil
}

// writeCells replaces the fence's cells in the index.
func writeCells(ctx context.Context, tx *sql.Tx, userID, id string, f *geo.Fence) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM geofence_cells WHERE fence_id = $1`, id); err != nil {
		return err
	}
	for _, c := range f.Covering() {
		if _, err := tx.ExecContext(ctx, `INSERT INTO geofence_cells (user_id, cell, fence_id) VALUES ($1, $2, $3)`, userID, c, id); err != nil {
			return err
		}
	}
	return nil
}

// CreateGeofence creates a geofence of the caller's.
func (s *Service) CreateGeofence(ctx context.Context, userID string, in GeofenceInput) (Geofence, error) {
	if in.Notify == "" {
		in.Notify = NotifyOwner
	}
	if err := errors.Join(checkName(in.Name), checkNotify(in.Notify), checkDwell(in.DwellS)); err != nil {
		return Geofence{}, firstAppErr(err)
	}
	shape := geofenceShape{Center: in.Center, RadiusM: in.RadiusM, Polygon: in.Polygon}
	f, err := checkShape(shape)
	if err != nil {
		return Geofence{}, err
	}
	now := store.Millis(s.now())
	g := Geofence{ID: newID(), Name: strings.TrimSpace(in.Name), Center: in.Center, RadiusM: in.RadiusM, Polygon: in.Polygon,
		Notify: in.Notify, DwellS: in.DwellS, CreatedAt: store.Time(now), UpdatedAt: store.Time(now)}
	raw, _ := json.Marshal(shape)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM geofences WHERE user_id = $1`, userID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxGeofences {
			return apperr.New(apperr.KindConflict, "too_many_geofences", fmt.Sprintf("a user has at most %d geofences", MaxGeofences))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO geofences (id, user_id, name, shape, notify, dwell_s, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, g.ID, userID, g.Name, string(raw), g.Notify, g.DwellS, now); err != nil {
			return err
		}
		return writeCells(ctx, tx, userID, g.ID, f)
	})
	if err != nil {
		return Geofence{}, s.internal("create geofence", err)
	}
	return g, nil
}

func firstAppErr(err error) error {
	if e, ok := apperr.As(err); ok {
		return e
	}
	return err
}

// Geofence returns one of the caller's geofences.
func (s *Service) Geofence(ctx context.Context, userID, id string) (Geofence, error) {
	if !validID(id) {
		return Geofence{}, apperr.NotFound("geofence")
	}
	g, err := scanFence(s.db.W.QueryRowContext(ctx, `SELECT `+fenceCols+` FROM geofences WHERE id = $1 AND user_id = $2`, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return Geofence{}, apperr.NotFound("geofence")
	}
	if err != nil {
		return Geofence{}, s.internal("read geofence", err)
	}
	return g, nil
}

// Geofences lists the caller's geofences by id.
func (s *Service) Geofences(ctx context.Context, userID string, limit int, cursor string) ([]Geofence, string, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	if cursor != "" && !validID(cursor) {
		return nil, "", errBadCursor
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT `+fenceCols+` FROM geofences WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		userID, cursor, limit+1)
	if err != nil {
		return nil, "", s.internal("list geofences", err)
	}
	defer rows.Close()
	out := []Geofence{}
	for rows.Next() {
		g, err := scanFence(rows)
		if err != nil {
			return nil, "", s.internal("list geofences", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.internal("list geofences", err)
	}
	if len(out) > limit {
		return out[:limit], out[limit-1].ID, nil
	}
	return out, "", nil
}

// UpdateGeofence changes one of the caller's geofences.
func (s *Service) UpdateGeofence(ctx context.Context, userID, id string, in GeofencePatch) (Geofence, error) {
	g, err := s.Geofence(ctx, userID, id)
	if err != nil {
		return Geofence{}, err
	}
	if in.Name != nil {
		if err := checkName(*in.Name); err != nil {
			return Geofence{}, err
		}
		g.Name = strings.TrimSpace(*in.Name)
	}
	if in.Notify != nil {
		if err := checkNotify(*in.Notify); err != nil {
			return Geofence{}, err
		}
		g.Notify = *in.Notify
	}
	if in.DwellS != nil {
		if err := checkDwell(*in.DwellS); err != nil {
			return Geofence{}, err
		}
		g.DwellS = *in.DwellS
	}
	reshaped := in.Polygon != nil || in.Center != nil || in.RadiusM != nil
	var f *geo.Fence
	if reshaped {
		shape := g.shape
		if in.Polygon != nil {
			shape = geofenceShape{Polygon: in.Polygon}
			if in.Center != nil || in.RadiusM != nil {
				return Geofence{}, apperr.Invalid("body.polygon", "give either center and radius_m, or polygon")
			}
		} else {
			if shape.Polygon != nil { // a polygon becomes a circle: both are needed
				shape = geofenceShape{}
			}
			if in.Center != nil {
				shape.Center = in.Center
			}
			if in.RadiusM != nil {
				shape.RadiusM = *in.RadiusM
			}
		}
		if f, err = checkShape(shape); err != nil {
			return Geofence{}, err
		}
		g.shape = shape
		g.Center, g.RadiusM, g.Polygon = shape.Center, shape.RadiusM, shape.Polygon
		g.Inside = false
	}
	now := store.Millis(s.now())
	if now <= store.Millis(g.UpdatedAt) {
		now = store.Millis(g.UpdatedAt) + 1 // updated_at keys the parsed-shape cache
	}
	g.UpdatedAt = store.Time(now)
	raw, _ := json.Marshal(g.shape)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE geofences SET name = $3, shape = $4, notify = $5, dwell_s = $6, updated_at = $7,
			inside = CASE WHEN $8 THEN FALSE ELSE inside END, dwell_sent = CASE WHEN $8 THEN FALSE ELSE dwell_sent END
			WHERE id = $1 AND user_id = $2`, id, userID, g.Name, string(raw), g.Notify, g.DwellS, now, reshaped)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.NotFound("geofence")
		}
		if reshaped {
			return writeCells(ctx, tx, userID, id, f)
		}
		return nil
	})
	if err != nil {
		return Geofence{}, s.internal("update geofence", err)
	}
	return s.Geofence(ctx, userID, id)
}

// DeleteGeofence deletes one of the caller's geofences with its events.
func (s *Service) DeleteGeofence(ctx context.Context, userID, id string) error {
	if !validID(id) {
		return apperr.NotFound("geofence")
	}
	res, err := s.db.W.ExecContext(ctx, `DELETE FROM geofences WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return s.internal("delete geofence", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.NotFound("geofence")
	}
	return nil
}

// GeofenceEvents lists the events of one of the caller's geofences, newest first.
func (s *Service) GeofenceEvents(ctx context.Context, userID, id string, limit int, cursor string) ([]GeofenceEvent, string, error) {
	g, err := s.Geofence(ctx, userID, id)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	if cursor != "" && !validID(cursor) {
		return nil, "", errBadCursor
	}
	q := `SELECT id, type, user_id, at FROM geofence_events WHERE geofence_id = $1 ORDER BY id DESC LIMIT $2`
	args := []any{id, limit + 1}
	if cursor != "" {
		q = `SELECT id, type, user_id, at FROM geofence_events WHERE geofence_id = $1 AND id < $3 ORDER BY id DESC LIMIT $2`
		args = append(args, cursor)
	}
	rows, err := s.db.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", s.internal("geofence events", err)
	}
	defer rows.Close()
	out := []GeofenceEvent{}
	for rows.Next() {
		ev := GeofenceEvent{GeofenceID: id, Name: g.Name}
		var at int64
		if err := rows.Scan(&ev.ID, &ev.Type, &ev.UserID, &at); err != nil {
			return nil, "", s.internal("geofence events", err)
		}
		ev.At = store.Time(at)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.internal("geofence events", err)
	}
	if len(out) > limit {
		return out[:limit], out[limit-1].ID, nil
	}
	return out, "", nil
}

// fenceKey identifies a version of a fence's shape.
type fenceKey struct {
	id      string
	updated int64
}

// fenceCache keeps parsed fences, keyed by id and updated_at (a changed fence has a new key, so
// no invalidation is needed across nodes).
type fenceCache struct {
	mu sync.Mutex
	m  map[fenceKey]*geo.Fence
}

const fenceCacheMax = 200_000

func (c *fenceCache) get(k fenceKey, shape string) (*geo.Fence, error) {
	c.mu.Lock()
	f, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return f, nil
	}
	var sh geofenceShape
	if err := json.Unmarshal([]byte(shape), &sh); err != nil {
		return nil, err
	}
	f, err := sh.fence()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= fenceCacheMax {
		clear(c.m)
	}
	c.m[k] = f
	c.mu.Unlock()
	return f, nil
}

type candidate struct {
	id, name, notify string
	dwell            time.Duration
	state            geo.State
	fence            *geo.Fence
}

// checkFences applies one fix to the owner's geofences. The candidates are the fences whose
// cell covering contains the fix's cell at some level (an index lookup by key) and the fences
// the owner is inside (to notice exits and dwells): never every fence. Transitions are
// conditional UPDATEs, so a transition is reported once even if two nodes handle fixes of the
// same user at once.
func (s *Service) checkFences(ctx context.Context, a *audience, fix geo.Fix) error {
	keys := geo.CellKeys(fix.Point)
	args := make([]any, 0, len(keys)+1)
	args = append(args, a.owner)
	for _, k := range keys {
		args = append(args, k)
	}
	// A read connection: the state it reads is only a hint, every transition is a conditional
	// UPDATE on the writer.
	rows, err := s.query(ctx, s.db.R, `SELECT id, name, shape, notify, dwell_s, updated_at, inside, entered_at, dwell_sent
		FROM geofences WHERE user_id = $1 AND (inside OR id IN (
			SELECT fence_id FROM geofence_cells WHERE user_id = $1 AND cell IN (`+placeholders(2, len(keys))+`)))`, args...)
	if err != nil {
		return s.internal("geofences", err)
	}
	var cands []candidate
	for rows.Next() {
		var c candidate
		var shape string
		var dwell, updated, entered int64
		if err := rows.Scan(&c.id, &c.name, &shape, &c.notify, &dwell, &updated, &c.state.Inside, &entered, &c.state.DwellSent); err != nil {
			rows.Close()
			return s.internal("geofences", err)
		}
		c.dwell, c.state.EnteredAt = time.Duration(dwell)*time.Second, store.Time(entered)
		if c.fence, err = s.fences.get(fenceKey{c.id, updated}, shape); err != nil {
			s.log.Error("location: unreadable geofence", "geofence", c.id, "err", err)
			continue
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s.internal("geofences", err)
	}
	type happened struct {
		ev     GeofenceEvent
		notify string
	}
	var out []happened
	for _, c := range cands {
		_, evs := s.rules.Step(c.fence, c.state, fix, c.dwell)
		if len(evs) == 0 {
			continue
		}
		var got []happened
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			got = got[:0]
			old := store.Millis(c.state.EnteredAt)
			for _, e := range evs {
				var res sql.Result
				var err error
				switch e {
				case geo.Enter:
					res, err = tx.ExecContext(ctx, `UPDATE geofences SET inside = TRUE, entered_at = $2, dwell_sent = FALSE
						WHERE id = $1 AND NOT inside`, c.id, store.Millis(fix.At))
					old = store.Millis(fix.At)
				case geo.Exit:
					res, err = tx.ExecContext(ctx, `UPDATE geofences SET inside = FALSE WHERE id = $1 AND inside AND entered_at = $2`, c.id, old)
				case geo.Dwell:
					res, err = tx.ExecContext(ctx, `UPDATE geofences SET dwell_sent = TRUE
						WHERE id = $1 AND inside AND entered_at = $2 AND NOT dwell_sent`, c.id, old)
				}
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
					return nil // another node got there first
				}
				ev := GeofenceEvent{ID: newID(), Type: string(e), UserID: a.owner, GeofenceID: c.id, Name: c.name, At: fix.At}
				if _, err := tx.ExecContext(ctx, `INSERT INTO geofence_events (id, geofence_id, user_id, type, at) VALUES ($1, $2, $3, $4, $5)`,
					ev.ID, ev.GeofenceID, ev.UserID, ev.Type, store.Millis(ev.At)); err != nil {
					return err
				}
				got = append(got, happened{ev, c.notify})
			}
			return nil
		})
		if err != nil {
			return s.internal("geofence transition", err)
		}
		out = append(out, got...)
	}
	for _, h := range out {
		to := []string{a.owner}
		if h.notify == NotifyViewers {
			v, err := a.exactViewers(ctx)
			if err != nil {
				return err
			}
			to = append(to, v...)
		}
		s.pub.PublishUsers(ctx, to, EventGeofenceEvent, h.ev)
		if s.opts.Notifier != nil {
			s.opts.Notifier.GeofenceEvent(ctx, h.ev, to)
		}
	}
	return nil
}
