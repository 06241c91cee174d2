package location

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzReport: any data of location_update is refused or accepted cleanly, never a panic, and an
// accepted report has finite coordinates in range.
func FuzzReport(f *testing.F) {
	f.Add([]byte(`{"lat":1,"lng":2}`))
	f.Add([]byte(`{"lat":91,"lng":2,"accuracy_m":-1}`))
	f.Add([]byte(`{"lat":1e308,"lng":-1e308,"heading":360.0001,"speed":1e9,"recorded_at":"9999-12-31T23:59:59Z"}`))
	f.Add([]byte(`{"lat":"x"}`))
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in PositionReport
		if json.Unmarshal(data, &in) != nil {
			return
		}
		if in.validate("", now) != nil {
			return
		}
		if in.Lat < -90 || in.Lat > 90 || in.Lng < -180 || in.Lng > 180 || !finite(in.Lat) || !finite(in.Lng) {
			t.Fatalf("accepted %+v", in)
		}
		if in.RecordedAt != nil && in.RecordedAt.After(now.Add(MaxFutureSkew)) {
			t.Fatalf("accepted a report from the future: %v", in.RecordedAt)
		}
	})
}
