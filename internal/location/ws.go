package location

import (
	"context"
	"encoding/json"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/realtime"
)

// CmdLocationUpdate is the WebSocket command of a position report (the data of PUT /location).
const CmdLocationUpdate = "location_update"

// CommandRegistry is where commands are registered: the realtime hub.
type CommandRegistry interface {
	Handle(typ string, fn realtime.CommandFunc)
}

// RegisterCommands registers location_update on the hub.
func (s *Service) RegisterCommands(reg CommandRegistry) {
	reg.Handle(CmdLocationUpdate, s.cmdUpdate)
}

// cmdUpdate answers with {"accepted": bool}, like PUT /location.
func (s *Service) cmdUpdate(ctx context.Context, c realtime.Client, data json.RawMessage) (any, error) {
	var in PositionReport
	var req struct{ Lat, Lng *float64 }
	if json.Unmarshal(data, &in) != nil || json.Unmarshal(data, &req) != nil {
		return nil, apperr.New(apperr.KindBadRequest, "bad_request", "data is not the JSON object this command takes")
	}
	if req.Lat == nil {
		return nil, apperr.Invalid("lat", "required")
	}
	if req.Lng == nil {
		return nil, apperr.Invalid("lng", "required")
	}
	return s.Update(ctx, c.UserID(), in, "")
}
