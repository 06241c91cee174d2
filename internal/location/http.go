package location

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
)

// The route table of location (all authenticated, under /api/v1):
//
//	PUT    /location                 updateLocation
//	GET    /location/me              getMyLocation
//	PUT    /location/settings        updateLocationSettings
//	POST   /location/shares          createLocationShare
//	GET    /location/shares          listLocationShares
//	DELETE /location/shares/{id}     stopLocationShare
//	GET    /location/shared          listSharedLocations
//	GET    /location/nearby          listNearbyUsers
//	GET    /location/history         listLocationHistory
//	DELETE /location/history         deleteLocationHistory
//	POST   /geofences                createGeofence
//	GET    /geofences                listGeofences
//	GET    /geofences/{id}           getGeofence
//	PATCH  /geofences/{id}           updateGeofence
//	DELETE /geofences/{id}           deleteGeofence
//	GET    /geofences/{id}/events    listGeofenceEvents
//
// Mount registers them. Nobody sees anyone's location without a share: everything but shares,
// shared and nearby is the caller's own.
func (s *Service) Mount(api *httpapi.API) {
	tags := []string{"Location"}
	a := api.Authed
	nf := http.StatusNotFound
	errs := func(extra ...int) []int {
		return append([]int{http.StatusBadRequest, http.StatusUnprocessableEntity}, extra...)
	}
	huma.Register(a, huma.Operation{
		OperationID: "updateLocation", Method: http.MethodPut, Path: "/location", Tags: tags,
		Summary: "Report the caller's position",
		Description: "Becomes the latest position unless a position with a later recorded_at is stored (then it is " +
			"ignored: accepted false). The viewers of the caller's active shares receive shared_location_update; at " +
			"most one point per second is stored in the history; geofences are checked. Also the location_update " +
			"WebSocket command. A user makes at most NERUTALK_WS_FRAMES_PER_SECOND location writes a second over REST " +
			"(reports, settings, shares, history deletion and geofence changes together; bursts of twice that), like a " +
			"WebSocket connection's frames: over it, 429 rate_limited with Retry-After.",
		Errors: errs(http.StatusTooManyRequests),
	}, limitWrites(s, s.handleUpdate))
	huma.Register(a, huma.Operation{
		OperationID: "getMyLocation", Method: http.MethodGet, Path: "/location/me", Tags: tags,
		Summary: "The caller's latest position and location settings", Errors: errs(),
	}, s.handleMe)
	huma.Register(a, huma.Operation{
		OperationID: "updateLocationSettings", Method: http.MethodPut, Path: "/location/settings", Tags: tags,
		Summary:     "Change discoverable and history_retention_days",
		Description: "Absent fields keep their value. Lowering the retention deletes the older points at once; 0 keeps none.",
		Errors:      errs(http.StatusTooManyRequests),
	}, limitWrites(s, s.handleSettings))
	huma.Register(a, huma.Operation{
		OperationID: "createLocationShare", Method: http.MethodPost, Path: "/location/shares", Tags: tags,
		Summary: "Share the caller's location with a user or a chat",
		Description: "For duration_s (15 minutes to 24 hours; 0 or absent: until stopped), exact or approximate " +
			"(snapped to a fixed grid of about 2 km: see docs/location.md). The viewers (the user, or the chat's other " +
			"members while they are members) receive location_share_start, then shared_location_update, then " +
			"location_share_stop. An unknown user or a chat the caller is not in: 404. At most 100 active shares " +
			"per user (409 too_many_shares). A user with a block between the two (either way): 403 blocked; a chat " +
			"share never reaches members with a block with the owner.",
		DefaultStatus: http.StatusCreated,
		Errors:        errs(http.StatusForbidden, nf, http.StatusConflict, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleCreateShare))
	huma.Register(a, huma.Operation{
		OperationID: "listLocationShares", Method: http.MethodGet, Path: "/location/shares", Tags: tags,
		Summary: "The caller's active shares, outgoing and incoming", Errors: errs(),
	}, s.handleListShares)
	huma.Register(a, huma.Operation{
		OperationID: "stopLocationShare", Method: http.MethodDelete, Path: "/location/shares/{id}", Tags: tags,
		Summary:       "Stop one of the caller's shares",
		Description:   "Its viewers receive location_share_stop. Someone else's share: 404.",
		DefaultStatus: http.StatusNoContent,
		Errors:        errs(nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleStopShare))
	huma.Register(a, huma.Operation{
		OperationID: "listSharedLocations", Method: http.MethodGet, Path: "/location/shared", Tags: tags,
		Summary:     "The latest positions shared with the caller",
		Description: "One item per user sharing with the caller; approximate shares give the center of the grid cell.",
		Errors:      errs(),
	}, s.handleShared)
	huma.Register(a, huma.Operation{
		OperationID: "listNearbyUsers", Method: http.MethodGet, Path: "/location/nearby", Tags: tags,
		Summary: "Discoverable users near the caller",
		Description: "Only for a discoverable caller (else 403 not_discoverable) with a position of the last hour (else " +
			"409 no_location); lists discoverable users with a position of the last hour, nearest first, no coordinates; " +
			"distances run to each user's approximate position (their ~2 km grid cell's center) and are rounded up to 100 m.",
		Errors: errs(http.StatusForbidden, http.StatusConflict),
	}, s.handleNearby)
	huma.Register(a, huma.Operation{
		OperationID: "listLocationHistory", Method: http.MethodGet, Path: "/location/history", Tags: tags,
		Summary: "The caller's stored points, oldest first", Errors: errs(),
	}, s.handleHistory)
	huma.Register(a, huma.Operation{
		OperationID: "deleteLocationHistory", Method: http.MethodDelete, Path: "/location/history", Tags: tags,
		Summary: "Delete the caller's stored points", DefaultStatus: http.StatusNoContent, Errors: errs(http.StatusTooManyRequests),
	}, limitWrites(s, s.handleDeleteHistory))

	gtags := []string{"Geofences"}
	huma.Register(a, huma.Operation{
		OperationID: "createGeofence", Method: http.MethodPost, Path: "/geofences", Tags: gtags,
		Summary: "Create a geofence",
		Description: "A circle {center, radius_m: 50–50000} or a simple polygon {polygon: [[lat, lng], ...], 3–100 " +
			"vertices}. The caller's position reports are checked against it: enter, exit (with a margin against " +
			"jitter; fixes with accuracy_m above 100 are ignored) and dwell after dwell_s. At most 100 geofences (409).",
		DefaultStatus: http.StatusCreated,
		Errors:        errs(http.StatusConflict, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleCreateGeofence))
	huma.Register(a, huma.Operation{
		OperationID: "listGeofences", Method: http.MethodGet, Path: "/geofences", Tags: gtags,
		Summary: "The caller's geofences", Errors: errs(),
	}, s.handleListGeofences)
	huma.Register(a, huma.Operation{
		OperationID: "getGeofence", Method: http.MethodGet, Path: "/geofences/{id}", Tags: gtags,
		Summary: "One of the caller's geofences", Errors: errs(nf),
	}, s.handleGetGeofence)
	huma.Register(a, huma.Operation{
		OperationID: "updateGeofence", Method: http.MethodPatch, Path: "/geofences/{id}", Tags: gtags,
		Summary: "Change a geofence", Description: "A new shape resets the caller's state in it (outside).",
		Errors: errs(nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleUpdateGeofence))
	huma.Register(a, huma.Operation{
		OperationID: "deleteGeofence", Method: http.MethodDelete, Path: "/geofences/{id}", Tags: gtags,
		Summary: "Delete a geofence and its events", DefaultStatus: http.StatusNoContent, Errors: errs(nf, http.StatusTooManyRequests),
	}, limitWrites(s, s.handleDeleteGeofence))
	huma.Register(a, huma.Operation{
		OperationID: "listGeofenceEvents", Method: http.MethodGet, Path: "/geofences/{id}/events", Tags: gtags,
		Summary: "A geofence's events, newest first", Errors: errs(nf),
	}, s.handleGeofenceEvents)
}

// limitWrites wraps the handler of a location write: each counts against the caller's
// WriteLimiter first (429 rate_limited with Retry-After over it).
func limitWrites[I, O any](s *Service, h func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	return ratelimit.PerUser(s.opts.WriteLimiter, "location-write:", s.log, h)
}

type updateInput struct{ Body PositionReport }

type updateOutput struct{ Body ReportResult }

func (s *Service) handleUpdate(ctx context.Context, in *updateInput) (*updateOutput, error) {
	r, err := s.Update(ctx, identity.UserID(ctx), in.Body, "body.")
	if err != nil {
		return nil, err
	}
	return &updateOutput{Body: r}, nil
}

type meOutput struct{ Body MyLocation }

func (s *Service) handleMe(ctx context.Context, _ *struct{}) (*meOutput, error) {
	me, err := s.Me(ctx, identity.UserID(ctx))
	if err != nil {
		return nil, err
	}
	return &meOutput{Body: me}, nil
}

type settingsInput struct{ Body LocationSettingsInput }

type settingsOutput struct{ Body LocationSettings }

func (s *Service) handleSettings(ctx context.Context, in *settingsInput) (*settingsOutput, error) {
	set, err := s.SetSettings(ctx, identity.UserID(ctx), in.Body)
	if err != nil {
		return nil, err
	}
	return &settingsOutput{Body: set}, nil
}

type shareInput struct{ Body LocationShareInput }

type shareOutput struct{ Body LocationShare }

func (s *Service) handleCreateShare(ctx context.Context, in *shareInput) (*shareOutput, error) {
	sh, err := s.CreateShare(ctx, identity.UserID(ctx), in.Body)
	if err != nil {
		return nil, err
	}
	return &shareOutput{Body: sh}, nil
}

func pageOf[T any](items []T, next string, err error) (*httpapi.PageOutput[T], error) {
	if err != nil {
		return nil, err
	}
	out := &httpapi.PageOutput[T]{}
	out.Body.Items, out.Body.NextCursor = items, next
	return out, nil
}

func (s *Service) handleListShares(ctx context.Context, in *httpapi.PageParams) (*httpapi.PageOutput[LocationShare], error) {
	return pageOf(s.ListShares(ctx, identity.UserID(ctx), in.Limit, in.Cursor))
}

type idPath struct {
	ID string `path:"id" maxLength:"64" format:"uuid"`
}

func (s *Service) handleStopShare(ctx context.Context, in *idPath) (*struct{}, error) {
	return nil, s.StopShare(ctx, identity.UserID(ctx), in.ID)
}

func (s *Service) handleShared(ctx context.Context, in *httpapi.PageParams) (*httpapi.PageOutput[SharedLocation], error) {
	return pageOf(s.Shared(ctx, identity.UserID(ctx), in.Limit, in.Cursor))
}

type nearbyInput struct {
	RadiusM int `query:"radius_m" default:"1000" minimum:"100" maximum:"50000" doc:"Search radius in meters"`
	httpapi.PageParams
}

func (s *Service) handleNearby(ctx context.Context, in *nearbyInput) (*httpapi.PageOutput[NearbyUser], error) {
	return pageOf(s.Nearby(ctx, identity.UserID(ctx), in.RadiusM, in.Limit, in.Cursor))
}

type historyInput struct {
	From time.Time `query:"from" doc:"Earliest recorded_at (RFC 3339)"`
	To   time.Time `query:"to" doc:"Latest recorded_at (RFC 3339)"`
	httpapi.PageParams
}

func (s *Service) handleHistory(ctx context.Context, in *historyInput) (*httpapi.PageOutput[Position], error) {
	return pageOf(s.History(ctx, identity.UserID(ctx), HistoryQuery{From: in.From, To: in.To, Limit: in.Limit, Cursor: in.Cursor}))
}

func (s *Service) handleDeleteHistory(ctx context.Context, _ *struct{}) (*struct{}, error) {
	return nil, s.DeleteHistory(ctx, identity.UserID(ctx))
}

type geofenceInput struct{ Body GeofenceInput }

type geofenceOutput struct{ Body Geofence }

func (s *Service) handleCreateGeofence(ctx context.Context, in *geofenceInput) (*geofenceOutput, error) {
	g, err := s.CreateGeofence(ctx, identity.UserID(ctx), in.Body)
	if err != nil {
		return nil, err
	}
	return &geofenceOutput{Body: g}, nil
}

func (s *Service) handleListGeofences(ctx context.Context, in *httpapi.PageParams) (*httpapi.PageOutput[Geofence], error) {
	return pageOf(s.Geofences(ctx, identity.UserID(ctx), in.Limit, in.Cursor))
}

func (s *Service) handleGetGeofence(ctx context.Context, in *idPath) (*geofenceOutput, error) {
	g, err := s.Geofence(ctx, identity.UserID(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &geofenceOutput{Body: g}, nil
}

type geofencePatchInput struct {
	ID   string `path:"id" maxLength:"64" format:"uuid"`
	Body GeofencePatch
}

func (s *Service) handleUpdateGeofence(ctx context.Context, in *geofencePatchInput) (*geofenceOutput, error) {
	g, err := s.UpdateGeofence(ctx, identity.UserID(ctx), in.ID, in.Body)
	if err != nil {
		return nil, err
	}
	return &geofenceOutput{Body: g}, nil
}

func (s *Service) handleDeleteGeofence(ctx context.Context, in *idPath) (*struct{}, error) {
	return nil, s.DeleteGeofence(ctx, identity.UserID(ctx), in.ID)
}

type eventsInput struct {
	ID string `path:"id" maxLength:"64" format:"uuid"`
	httpapi.PageParams
}

func (s *Service) handleGeofenceEvents(ctx context.Context, in *eventsInput) (*httpapi.PageOutput[GeofenceEvent], error) {
	return pageOf(s.GeofenceEvents(ctx, identity.UserID(ctx), in.ID, in.Limit, in.Cursor))
}
