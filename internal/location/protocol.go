package location

import "github.com/nerutalk/nerutalk/internal/realtime"

// Protocol describes location_update and the location events with the Go types that encode
// them, for the protocol document (/asyncapi.json, /docs/websocket).
func Protocol() realtime.Protocol {
	return realtime.Protocol{
		Commands: []realtime.CommandSpec{{
			Type: CmdLocationUpdate, Summary: "Report the user's position (the body of PUT /location)",
			Description: "accepted is false when the report is older than the stored position (ignored, not an error).",
			Data:        PositionReport{}, Ack: ReportResult{},
			Errors: []string{"validation_failed", "bad_request"},
		}},
		Events: []realtime.EventSpec{{
			Type: EventShareStart, Summary: "A location share with the user started",
			Description: "The share's viewers: its user, or the chat's members other than the owner (a member who joins later gets it then).",
			Data:        LocationShareStart{},
		}, {
			Type: EventSharedUpdate, Summary: "A position shared with the user",
			Description: "The share's viewers of the moment, on every accepted report; approximate shares show the center of a ~2 km grid cell, to the minute.",
			Data:        SharedLocation{},
		}, {
			Type: EventShareStop, Summary: "A location share with the user stopped",
			Description: "The viewers (for left_chat, the one who left).",
			Data:        LocationShareStop{},
		}, {
			Type: EventGeofenceEvent, Summary: "A user entered, left or dwelt in a geofence",
			Description: "The fence's owner; with notify: viewers also whoever sees the owner's exact location then.",
			Data:        GeofenceEvent{},
		}},
	}
}
