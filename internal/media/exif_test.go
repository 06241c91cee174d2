package media

import (
	"bytes"
	"encoding/binary"
	"image/gif"
	"testing"
)

// littleEndianExif is an APP1 segment with an Intel-order TIFF holding only the orientation.
func littleEndianExif(orientation uint16) []byte {
	var t bytes.Buffer
	le := binary.LittleEndian
	t.WriteString("II*\x00")
	binary.Write(&t, le, uint32(8))
	binary.Write(&t, le, uint16(1))
	binary.Write(&t, le, []uint16{0x0112, 3})
	binary.Write(&t, le, uint32(1))
	binary.Write(&t, le, []uint16{orientation, 0})
	binary.Write(&t, le, uint32(0))
	body := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(body)+2))
	return append(seg, body...)
}

func TestJPEGOrientation(t *testing.T) {
	t.Parallel()
	plain := encodeJPEG(t, quadrants(8, 8))
	app0 := []byte{0xFF, 0xE0, 0x00, 0x07, 'J', 'F', 'I', 'F', 0}
	tests := []struct {
		name string
		in   []byte
		want int
	}{
		{"no exif", plain, 1},
		{"not a jpeg", []byte("GIF89a......"), 1},
		{"empty", nil, 1},
		{"only SOI", []byte{0xFF, 0xD8}, 1},
		{"big endian 6", withSegment(plain, exifSegment(6, false)), 6},
		{"big endian 3 with gps", withSegment(plain, exifSegment(3, true)), 3},
		{"little endian 8", withSegment(plain, littleEndianExif(8)), 8},
		{"little endian 2", withSegment(plain, littleEndianExif(2)), 2},
		{"after an APP0", withSegment(plain, append(append([]byte{}, app0...), littleEndianExif(5)...)), 5},
		{"value 0 is invalid", withSegment(plain, littleEndianExif(0)), 1},
		{"value 9 is invalid", withSegment(plain, littleEndianExif(9)), 1},
		{"truncated segment", withSegment(plain, littleEndianExif(6))[:20], 1},
		{"length past the end", []byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x', 'i', 'f', 0, 0}, 1},
		{"length below 2", []byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01, 0, 0, 0, 0}, 1},
		{"exif after start of scan is ignored", append([]byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 2}, littleEndianExif(6)...), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := jpegOrientation(tt.in); got != tt.want {
				t.Errorf("jpegOrientation = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestExifOrientationRejectsBadTIFF(t *testing.T) {
	t.Parallel()
	good := littleEndianExif(6)[10:] // the TIFF structure
	tests := map[string][]byte{
		"short":               good[:7],
		"bad byte order":      append([]byte("XX*\x00"), good[4:]...),
		"IFD offset too far":  append(append([]byte{}, good[:4]...), 0xFF, 0xFF, 0xFF, 0x7F),
		"entry count too big": append(append([]byte{}, good[:8]...), 0xFF, 0xFF),
		"wrong type": func() []byte {
			b := append([]byte{}, good...)
			b[12] = 4 // LONG instead of SHORT
			return b
		}(),
		"two values": func() []byte {
			b := append([]byte{}, good...)
			b[14] = 2
			return b
		}(),
	}
	for name, in := range tests {
		if got := exifOrientation(in); got != 0 {
			t.Errorf("%s: exifOrientation = %d, want 0", name, got)
		}
	}
	if got := exifOrientation(good); got != 6 {
		t.Errorf("good: exifOrientation = %d, want 6", got)
	}
}

func FuzzJPEGOrientation(f *testing.F) {
	plain := encodeJPEG(f, quadrants(4, 4))
	f.Add(plain)
	f.Add(withSegment(plain, exifSegment(6, true)))
	f.Add(withSegment(plain, littleEndianExif(8)))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, '*', 0, 0, 0, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := jpegOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d out of 1..8", o)
		}
	})
}

// FuzzGIFFrames checks the GIF block walker against the standard decoder: whenever the decoder
// accepts a file, the walker counts the same frames and their area.
func FuzzGIFFrames(f *testing.F) {
	f.Add(animatedGIF(f, 3, 2, 2))
	f.Add(gifBomb(f, 4, 4, 3))
	f.Add([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, pixels, err := gifFrames(b)
		// Keep the decoder's allocations small: every frame lies within the logical screen.
		if cfg, err := gif.DecodeConfig(bytes.NewReader(b)); err != nil || cfg.Width*cfg.Height > 1<<16 {
			return
		}
		g, derr := gif.DecodeAll(bytes.NewReader(b))
		if derr != nil {
			return
		}
		if err != nil {
			t.Fatalf("decoder accepts %d frames but the walker fails: %v", len(g.Image), err)
		}
		var want int64
		for _, im := range g.Image {
			want += int64(im.Bounds().Dx()) * int64(im.Bounds().Dy())
		}
		if frames != len(g.Image) || pixels != want {
			t.Fatalf("walker: %d frames, %d pixels; decoder: %d frames, %d pixels", frames, pixels, len(g.Image), want)
		}
	})
}
