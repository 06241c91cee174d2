package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

func TestBigPNGIsA16BitImageOfTheSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ pixels, side int }{{10_000, 100}, {10_200, 100}, {1, 1}} {
		b := bigPNG(tt.pixels)
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("bigPNG(%d): %v", tt.pixels, err)
		}
		if got := img.Bounds(); got != image.Rect(0, 0, tt.side, tt.side) {
			t.Errorf("bigPNG(%d): bounds %v, want %dx%d", tt.pixels, got, tt.side, tt.side)
		}
		if img.ColorModel() != color.NRGBA64Model {
			t.Errorf("bigPNG(%d): colour model %v, want 16-bit NRGBA", tt.pixels, img.ColorModel())
		}
	}
}

func TestAbuseCountsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses []string
		closes   []string
		want     uint64
	}{
		{"nothing", nil, nil, 0},
		{"accepted", []string{"2xx", "101", "unfinished", "error"}, nil, 0},
		{"client errors", []string{"422", "429", "429", "2xx"}, nil, 3},
		{"close codes", nil, []string{"4029", "1009", "1008", "1000", "eof"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var a abuseCounts
			for _, s := range tt.statuses {
				a.status(s)
			}
			for _, c := range tt.closes {
				a.closed(c)
			}
			if got := a.refused(); got != tt.want {
				t.Errorf("refused = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRawFramesAreMaskedFragments(t *testing.T) {
	t.Parallel()
	var c rawConn
	var w bytes.Buffer
	c.fragments(&w, []byte("abc"))
	// three frames: text (not fin), continuation (not fin), continuation (fin); each 2+4+1 bytes
	if w.Len() != 21 {
		t.Fatalf("%d bytes, want 21", w.Len())
	}
	b := w.Bytes()
	for i, want := range []byte{0x01, 0x00, 0x80} {
		f := b[i*7 : i*7+7]
		if f[0] != want || f[1] != 0x81 {
			t.Errorf("frame %d header % x, want %02x 81", i, f[:2], want)
		}
		if got := f[6] ^ f[2]; got != "abc"[i] {
			t.Errorf("frame %d payload %q, want %q", i, got, "abc"[i])
		}
	}
}

// TestQuietestIsTheLowerQuietP99: the target's reference is the lower p99 of quiet and
// quiet_end, whichever came out lower, never an abuse phase's.
func TestQuietestIsTheLowerQuietP99(t *testing.T) {
	t.Parallel()
	ph := func(name string, p99 float64) bystanderPhase {
		return bystanderPhase{Name: name, Ack: latencySummary{P99MS: p99}}
	}
	ack := func(p *bystanderPhase) float64 { return p.Ack.P99MS }
	tests := []struct {
		phases []bystanderPhase
		want   float64
	}{
		{[]bystanderPhase{ph("quiet", 6), ph("image_uploads", 1), ph("quiet_end", 4)}, 4},
		{[]bystanderPhase{ph("quiet", 3), ph("ping_flood", 9), ph("quiet_end", 5)}, 3},
		{[]bystanderPhase{ph("quiet", 0), ph("quiet_end", 5)}, 5},
		{[]bystanderPhase{ph("nul_bytes", 2)}, 0},
	}
	for i, tc := range tests {
		if got := quietest(tc.phases, ack); got != tc.want {
			t.Errorf("case %d: %v, want %v", i, got, tc.want)
		}
	}
}
