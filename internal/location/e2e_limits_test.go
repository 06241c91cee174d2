package location_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
)

// TestE2ELocationWriteRateLimit: location writes over REST (position reports and geofence
// changes here) share one budget per user at the WebSocket's frame rate
// (NERUTALK_WS_FRAMES_PER_SECOND, bursts of twice that): over it 429 rate_limited with
// Retry-After, while another user keeps a budget of their own; with Redis two nodes share it.
// (No timing assertion: the test writes until refused, at most far more than the burst.)
func TestE2ELocationWriteRateLimit(t *testing.T) {
	t.Parallel()
	const burst = 4 // two a second, bursts of twice that
	for _, dep := range servertest.Deployments() {
		t.Run(dep.Name, func(t *testing.T) {
			t.Parallel()
			nodes := dep.Start(t, func(c *config.Config) { c.WSFramesPerSecond = 2 })
			alice, bob := nodes[0].Register(t, "alice"), nodes[0].Register(t, "bob")
			// write i of user u: every other one a report, the rest geofences created.
			write := func(n *servertest.Node, u servertest.User, i int) *http.Response {
				if i%2 == 0 {
					return n.Do(t, http.MethodPut, "/api/v1/location", u.AccessToken, map[string]any{"lat": 52.5, "lng": 13.4 + float64(i)/1000}, nil)
				}
				return n.Do(t, http.MethodPost, "/api/v1/geofences", u.AccessToken, map[string]any{
					"name": fmt.Sprint("f", i), "center": map[string]float64{"lat": 52.5, "lng": 13.4}, "radius_m": 100}, nil)
			}
			// Reports alone or geofences alone would pass twice the burst before a refusal.
			servertest.ExpectRateLimited(t, burst, burst+3, func(i int) *http.Response { return write(nodes[i%len(nodes)], alice, i) })
			if resp := write(nodes[0], bob, 0); resp.StatusCode >= 300 {
				t.Errorf("another user's report: status %d, want 2xx (budgets are per user)", resp.StatusCode)
			}
		})
	}
}
