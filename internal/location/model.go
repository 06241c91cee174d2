package location

import (
	"math"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/location/geo"
)

// Precision of a share.
const (
	PrecisionExact       = "exact"
	PrecisionApproximate = "approximate"
)

// Status of a share.
const (
	StatusActive  = "active"
	StatusStopped = "stopped"
	StatusExpired = "expired"
)

// Limits of the API.
const (
	MinShareDuration     = 15 * time.Minute
	MaxShareDuration     = 24 * time.Hour
	MaxRetentionDays     = 365
	DefaultRetentionDays = 7
	MinNearbyRadiusM     = 100
	MaxNearbyRadiusM     = 50_000
	// NearbyMaxAge: positions older than this are not nearby any more.
	NearbyMaxAge = time.Hour
	// MaxFutureSkew: a recorded_at later than now by more than this is refused.
	MaxFutureSkew = 5 * time.Minute
	// MaxGeofenceDwell is the longest dwell time of a geofence.
	MaxGeofenceDwell = 24 * time.Hour
	// MaxActiveShares is the most active shares a user may have (more: 409 too_many_shares).
	MaxActiveShares = 100
	maxNameChars    = 100
)

// PositionReport is one position report (PUT /location, the location_update command).
type PositionReport struct {
	Lat        float64    `json:"lat" minimum:"-90" maximum:"90" doc:"Latitude in degrees" example:"38.7223"`
	Lng        float64    `json:"lng" minimum:"-180" maximum:"180" doc:"Longitude in degrees" example:"-9.1393"`
	AccuracyM  *float64   `json:"accuracy_m,omitempty" minimum:"0" maximum:"100000" doc:"Radius of 68% confidence, meters" example:"12.5"`
	Heading    *float64   `json:"heading,omitempty" minimum:"0" maximum:"360" doc:"Degrees clockwise from true north"`
	Speed      *float64   `json:"speed,omitempty" minimum:"0" maximum:"1000" doc:"Meters per second"`
	RecordedAt *time.Time `json:"recorded_at,omitempty" doc:"When the device took the fix (default: when the server receives it). Older than the stored position: ignored; more than 5 minutes in the future: refused"`
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func optRange(v *float64, lo, hi float64) bool {
	return v == nil || (finite(*v) && *v >= lo && *v <= hi)
}

// validate checks every field; prefix is "body." for REST and "" for the WebSocket.
func (in *PositionReport) validate(prefix string, now time.Time) error {
	p := geo.Point{Lat: in.Lat, Lng: in.Lng}
	var fields []apperr.FieldError
	if err := p.Validate(); err == geo.ErrLatitude {
		fields = append(fields, apperr.FieldError{Location: prefix + "lat", Message: err.Error()})
	}
	if err := (geo.Point{Lng: in.Lng}).Validate(); err != nil {
		fields = append(fields, apperr.FieldError{Location: prefix + "lng", Message: err.Error()})
	}
	if !optRange(in.AccuracyM, 0, 100_000) {
		fields = append(fields, apperr.FieldError{Location: prefix + "accuracy_m", Message: "must be from 0 to 100000 meters"})
	}
	if !optRange(in.Heading, 0, 360) {
		fields = append(fields, apperr.FieldError{Location: prefix + "heading", Message: "must be from 0 to 360 degrees"})
	}
	if !optRange(in.Speed, 0, 1000) {
		fields = append(fields, apperr.FieldError{Location: prefix + "speed", Message: "must be from 0 to 1000 m/s"})
	}
	if in.RecordedAt != nil && in.RecordedAt.After(now.Add(MaxFutureSkew)) {
		fields = append(fields, apperr.FieldError{Location: prefix + "recorded_at", Message: "is in the future"})
	}
	if len(fields) == 0 {
		return nil
	}
	e := apperr.Invalid(fields[0].Location, fields[0].Message)
	e.Fields = fields
	return e
}

// Position is a stored position.
type Position struct {
	Lat        float64   `json:"lat"`
	Lng        float64   `json:"lng"`
	AccuracyM  *float64  `json:"accuracy_m,omitempty" doc:"Meters; for an approximate position, the size of its grid cell"`
	Heading    *float64  `json:"heading,omitempty"`
	Speed      *float64  `json:"speed,omitempty"`
	RecordedAt time.Time `json:"recorded_at"`
}

// approximate is p as an approximate share shows it: the center of its grid cell, no heading nor
// speed (they would narrow the position down within the cell), the time to the minute.
func (p Position) approximate() Position {
	s := geo.Snap(geo.Point{Lat: p.Lat, Lng: p.Lng})
	acc := float64(geo.ApproxAccuracyM)
	return Position{Lat: s.Lat, Lng: s.Lng, AccuracyM: &acc, RecordedAt: p.RecordedAt.Truncate(time.Minute)}
}

// view is p as a share of the precision shows it.
func (p Position) view(precision string) Position {
	if precision == PrecisionApproximate {
		return p.approximate()
	}
	return p
}

// ReportResult answers a position report.
type ReportResult struct {
	Accepted bool `json:"accepted" doc:"false when the report was older than the stored position (ignored)"`
}

// LocationSettings are a user's location settings.
type LocationSettings struct {
	Discoverable         bool `json:"discoverable" doc:"Appear in other discoverable users' nearby lists (and see them)"`
	HistoryRetentionDays int  `json:"history_retention_days" doc:"Days stored points are kept; 0 stores none"`
}

// MyLocation is GET /location/me.
type MyLocation struct {
	Location *Position `json:"location" doc:"The latest position; null before the first"`
	LocationSettings
}

// LocationSettingsInput is PUT /location/settings; an absent field keeps its value.
type LocationSettingsInput struct {
	Discoverable         *bool `json:"discoverable,omitempty"`
	HistoryRetentionDays *int  `json:"history_retention_days,omitempty" minimum:"0" maximum:"365"`
}

// LocationShareInput is POST /location/shares.
type LocationShareInput struct {
	UserID    string `json:"user_id,omitempty" maxLength:"64" format:"uuid" doc:"Share with this user (or chat_id)"`
	ChatID    string `json:"chat_id,omitempty" maxLength:"64" format:"uuid" doc:"Share with this chat's members (or user_id)" example:"01938f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f"`
	DurationS int64  `json:"duration_s,omitempty" minimum:"0" maximum:"86400" example:"3600" doc:"900 (15 minutes) to 86400 (24 hours); 0 or absent: until stopped"`
	Precision string `json:"precision" enum:"exact,approximate"`
}

// Share is a share of a user's location.
type LocationShare struct {
	ID        string     `json:"id"`
	OwnerID   string     `json:"owner_id" doc:"Whose location"`
	UserID    string     `json:"user_id,omitempty" doc:"The user it is shared with"`
	ChatID    string     `json:"chat_id,omitempty" doc:"The chat whose members it is shared with"`
	Precision string     `json:"precision" enum:"exact,approximate"`
	Status    string     `json:"status" enum:"active,stopped,expired"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at" doc:"null: until stopped"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	Direction string     `json:"direction,omitempty" enum:"outgoing,incoming" doc:"In GET /location/shares"`
}

// SharedLocation is the latest position of a user who shares it with the caller (GET
// /location/shared, and the data of shared_location_update).
type SharedLocation struct {
	ShareID   string `json:"share_id"`
	UserID    string `json:"user_id" doc:"Whose location"`
	Precision string `json:"precision" enum:"exact,approximate"`
	Position
}

// LocationShareStart is the data of location_share_start.
type LocationShareStart struct {
	LocationShare
	Location *SharedLocation `json:"location" doc:"The latest position as the share shows it; null if none yet"`
}

// Reasons of location_share_stop.
const (
	ReasonStopped  = "stopped"   // the owner stopped it
	ReasonExpired  = "expired"   // its duration ran out
	ReasonLeftChat = "left_chat" // the viewer left the chat (or was removed)
	ReasonOwnerOut = "owner_left_chat"
)

// LocationShareStop is the data of location_share_stop.
type LocationShareStop struct {
	ShareID string `json:"share_id"`
	UserID  string `json:"user_id" doc:"Whose location"`
	Reason  string `json:"reason" enum:"stopped,expired,left_chat,owner_left_chat"`
}

// NearbyUser is one entry of GET /location/nearby: no coordinates, the distance rounded up to 100 m.
type NearbyUser struct {
	UserID    string `json:"user_id"`
	DistanceM int    `json:"distance_m" doc:"Rounded up to a multiple of 100 m"`
}

// GeofenceEvent is one transition (GET /geofences/{id}/events, the geofence_event event).
type GeofenceEvent struct {
	ID         string    `json:"id"`
	Type       string    `json:"type" enum:"enter,exit,dwell"`
	UserID     string    `json:"user_id"`
	GeofenceID string    `json:"geofence_id"`
	Name       string    `json:"name" doc:"The geofence's name"`
	At         time.Time `json:"at"`
}
