package geo

import "time"

// Event is a geofence transition.
type Event string

// The transitions.
const (
	Enter Event = "enter"
	Exit  Event = "exit"
	Dwell Event = "dwell"
)

// State is what is remembered of one user in one fence between fixes.
type State struct {
	Inside    bool
	EnteredAt time.Time // when the last enter happened (meaningful while Inside)
	DwellSent bool      // the dwell of the current stay has been reported
}

// Fix is one position report.
type Fix struct {
	Point
	AccuracyM float64 // radius of 68% confidence; 0 = unknown (taken as good)
	At        time.Time
}

// Rules are the hysteresis of transitions.
type Rules struct {
	// MaxAccuracyM: a fix less accurate than this (a larger radius) causes no enter or exit.
	MaxAccuracyM float64
	// ExitMarginM: an exit needs the fix to be this far beyond the boundary, or as far as the
	// fix's own accuracy radius if that is larger. Entering needs the fix inside the boundary.
	ExitMarginM float64
}

// Step applies one fix to a user's state in a fence and returns the new state and the
// transitions, in order (an enter and a dwell cannot come from one fix unless dwell is 0, which
// means no dwell). dwell is the fence's dwell time (0 = no dwell events).
func (r Rules) Step(f *Fence, s State, fix Fix, dwell time.Duration) (State, []Event) {
	var evs []Event
	if fix.AccuracyM <= r.MaxAccuracyM {
		switch {
		case !s.Inside && f.Contains(fix.Point):
			s = State{Inside: true, EnteredAt: fix.At}
			evs = append(evs, Enter)
		case s.Inside && f.Outside(fix.Point) > max(r.ExitMarginM, fix.AccuracyM):
			s = State{}
			evs = append(evs, Exit)
		}
	}
	if s.Inside && dwell > 0 && !s.DwellSent && !fix.At.Before(s.EnteredAt.Add(dwell)) {
		s.DwellSent = true
		evs = append(evs, Dwell)
	}
	return s, evs
}
