package realtime

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/config"
)

// TestFrameFloodCloses: frames that carry no message (pings, pongs, empty continuations of a
// message that never ends) count against the connection's wire-frame budget too; a flood of
// them is closed with 4029.
func TestFrameFloodCloses(t *testing.T) {
	t.Parallel()
	frame := func(fin bool, op byte, payload []byte) []byte {
		b0 := op
		if fin {
			b0 |= 0x80
		}
		f := []byte{b0, 0x80 | byte(len(payload)), 1, 2, 3, 4}
		for i, b := range payload {
			f = append(f, b^[]byte{1, 2, 3, 4}[i&3])
		}
		return f
	}
	const n = 2000 // far over the budget of 20 frames/s (bursts of 40) that 1 frame/s gives
	pings := bytes.Repeat(frame(true, 0x9, []byte("x")), n)
	tests := map[string]struct {
		flood    []byte
		fps      int // NERUTALK_WS_FRAMES_PER_SECOND
		maxPongs int // pongs the server may answer before closing
	}{
		"pings":               {pings, 1, 40},
		"pongs":               {bytes.Repeat(frame(true, 0xA, nil), n), 1, 0},
		"empty continuations": {append(frame(false, 0x1, []byte("{")), bytes.Repeat(frame(false, 0x0, nil), n)...), 1, 0},
		// The wire-frame budget at the default rate is 1000/s (bursts of 2000), but each ping
		// costs a pong write: pings have their own budget of pingsPerSecond (bursts of pingBurst).
		"pings at the default frame rate": {pings, 50, pingBurst + 2},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *config.Config) { c.WSFramesPerSecond = tt.fps }, nil)
			nc, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			req := "GET " + Path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
				"Authorization: Bearer " + e.token("mallory", time.Time{}) + "\r\n\r\n"
			if _, err := nc.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(nc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %v %v", resp, err)
			}
			go func() { _, _ = nc.Write(tt.flood) }() // fails once the server has closed: fine
			pongs := 0
			for {
				var h [2]byte
				if _, err := io.ReadFull(br, h[:]); err != nil {
					t.Fatalf("no close frame after %d pongs: %v", pongs, err)
				}
				payload := make([]byte, h[1]&0x7F)
				if _, err := io.ReadFull(br, payload); err != nil {
					t.Fatal(err)
				}
				if h[0]&0x0F == 0xA {
					pongs++
					continue
				}
				if h[0]&0x0F != 0x8 {
					t.Fatalf("unexpected frame % x", h)
				}
				if len(payload) < 2 || binary.BigEndian.Uint16(payload) != uint16(CloseRateLimited) {
					t.Fatalf("close payload % x, want code %d", payload, CloseRateLimited)
				}
				break
			}
			if pongs > tt.maxPongs {
				t.Errorf("answered %d pings before closing, want at most %d", pongs, tt.maxPongs)
			}
			waitFor(t, "the close to be counted", func() bool {
				return metricValue(e.hub.metrics.closes.WithLabelValues(causeFrameFlood.label)) == 1
			})
		})
	}
}
