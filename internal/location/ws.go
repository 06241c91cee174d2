package location

import (
	"context"
	"encoding/json"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/realtime"
)

// CmdLocationUpdate is the WebSocket command of a position report (the data of PUT /location).
const CmdLocationUpdate = "location_update"

// CommandRegistry is where commands are registered and the protocol described: the realtime hub.
type CommandRegistry interface {
	Handle(typ string, fn realtime.CommandFunc)
	Describe(p realtime.Protocol)
}

// RegisterCommands registers location_update on the hub, and describes it and the location
// events (Protocol).
func (s *Service) RegisterCommands(reg CommandRegistry) {
	reg.Describe(Protocol())
	reg.Handle(CmdLocationUpdate, s.cmdUpdate)
}

// cmdUpdate answers with {"accepted": bool}, like PUT /location.
func (s *Service) cmdUpdate(ctx context.Context, c realtime.Client, data json.RawMessage) (any, error) {
	// One decode: the outer lat/lng (pointers, to tell absent from 0) shadow the report's.
	var req struct {
		PositionReport
		Lat *float64 `json:"lat"`
		Lng *float64 `json:"lng"`
	}
	if json.Unmarshal(data, &req) != nil {
		return nil, apperr.New(apperr.KindBadRequest, "bad_request", "data is not the JSON object this command takes")
	}
	if req.Lat == nil {
		return nil, apperr.Invalid("lat", "required")
	}
	if req.Lng == nil {
		return nil, apperr.Invalid("lng", "required")
	}
	in := req.PositionReport
	in.Lat, in.Lng = *req.Lat, *req.Lng
	return s.Update(ctx, c.UserID(), in, "")
}
