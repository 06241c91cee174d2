package media

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"
)

// png16Sample returns a 16-bit image of the given type with noisy content (so that the encoder
// uses every row filter) and an alpha that varies.
func png16Sample(kind string, w, h int, seed uint64) image.Image {
	r := rand.New(rand.NewPCG(seed, 1))
	rect := image.Rect(0, 0, w, h)
	switch kind {
	case "gray":
		img := image.NewGray16(rect)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.SetGray16(x, y, color.Gray16{Y: uint16(x*900 + y*77 + r.IntN(300))})
			}
		}
		return img
	case "rgb":
		img := image.NewRGBA64(rect)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.SetRGBA64(x, y, color.RGBA64{R: uint16(x * 700), G: uint16(y*500 + r.IntN(2000)), B: uint16(r.Uint32()), A: 0xffff})
			}
		}
		return img
	default: // "rgba"
		img := image.NewNRGBA64(rect)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.SetNRGBA64(x, y, color.NRGBA64{R: uint16(x * 700), G: uint16(r.Uint32()), B: uint16(y * 300), A: uint16(x*y*40 + r.IntN(100))})
			}
		}
		return img
	}
}

// to8 converts img to 8-bit NRGBA, 16-bit samples by their high byte (non-premultiplied).
func to8(img image.Image) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			var c color.NRGBA
			switch v := img.At(x, y).(type) {
			case color.NRGBA64: // the high byte of each sample
				c = color.NRGBA{uint8(v.R >> 8), uint8(v.G >> 8), uint8(v.B >> 8), uint8(v.A >> 8)}
			case color.RGBA64: // opaque in these files
				c = color.NRGBA{uint8(v.R >> 8), uint8(v.G >> 8), uint8(v.B >> 8), uint8(v.A >> 8)}
			case color.Gray16:
				c = color.NRGBA{uint8(v.Y >> 8), uint8(v.Y >> 8), uint8(v.Y >> 8), 0xff}
			default:
				c = color.NRGBAModel.Convert(v).(color.NRGBA)
			}
			out.SetNRGBA(x, y, c)
		}
	}
	return out
}

// TestDecodePNG16MatchesImagePNG decodes 16-bit PNGs of every color type image/png writes (gray,
// truecolor, truecolor+alpha) and one gray+alpha file written by hand, and compares with image/png
// converted to 8 bits.
func TestDecodePNG16MatchesImagePNG(t *testing.T) {
	t.Parallel()
	type tc struct {
		name string
		data []byte
		want string // %T of the result
	}
	var cases []tc
	for _, kind := range []string{"gray", "rgb", "rgba"} {
		for _, size := range [][2]int{{1, 1}, {7, 5}, {64, 33}} {
			var buf bytes.Buffer
			if err := png.Encode(&buf, png16Sample(kind, size[0], size[1], uint64(size[0]))); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"gray": "*image.Gray", "rgb": "*image.RGBA", "rgba": "*image.NRGBA"}[kind]
			cases = append(cases, tc{kind, buf.Bytes(), want})
		}
	}
	cases = append(cases, tc{"graya", grayAlpha16PNG(t, 9, 4), "*image.NRGBA"})
	for _, c := range cases {
		h, ok := png16Probe(c.data)
		if !ok {
			t.Fatalf("%s: probe refused", c.name)
		}
		got, err := decodePNG16(c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if typ := typeName(got); typ != c.want {
			t.Errorf("%s: type %s, want %s", c.name, typ, c.want)
		}
		ref, err := png.Decode(bytes.NewReader(c.data))
		if err != nil {
			t.Fatal(err)
		}
		if got.Bounds() != ref.Bounds() || got.Bounds().Dx() != h.width {
			t.Fatalf("%s: bounds %v, want %v", c.name, got.Bounds(), ref.Bounds())
		}
		a, b := to8(got), to8(ref)
		if !bytes.Equal(a.Pix, b.Pix) {
			t.Errorf("%s %v: pixels differ from image/png", c.name, got.Bounds())
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *image.Gray:
		return "*image.Gray"
	case *image.RGBA:
		return "*image.RGBA"
	case *image.NRGBA:
		return "*image.NRGBA"
	}
	return "other"
}

// grayAlpha16PNG writes a 16-bit gray+alpha PNG (color type 4), which image/png never writes,
// with every row filter in turn.
func grayAlpha16PNG(t testing.TB, w, h int) []byte {
	t.Helper()
	raw := make([]byte, 0, h*(1+4*w))
	prev := make([]byte, 4*w)
	for y := 0; y < h; y++ {
		row := make([]byte, 4*w)
		for x := 0; x < w; x++ {
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = byte(x*20+y), byte(y), byte(255-x*10), byte(x)
		}
		f := byte(y % 5)
		raw = append(raw, f)
		raw = append(raw, filterRow(f, row, prev, 4)...)
		prev = row
	}
	var b bytes.Buffer
	b.WriteString(pngSignature)
	ihdr := make([]byte, 13)
	putBE32(ihdr[0:], uint32(w))
	putBE32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 16, pngGrayAlpha
	writeChunk(&b, "IHDR", ihdr)
	writeChunk(&b, "IDAT", zlibBytes(t, raw))
	writeChunk(&b, "IEND", nil)
	return b.Bytes()
}

// filterRow applies PNG filter f to row (the inverse of unfilter).
func filterRow(f byte, row, prev []byte, bpp int) []byte {
	out := make([]byte, len(row))
	for i := range row {
		var a, b, c byte
		if i >= bpp {
			a, c = row[i-bpp], prev[i-bpp]
		}
		b = prev[i]
		switch f {
		case 0:
			out[i] = row[i]
		case 1:
			out[i] = row[i] - a
		case 2:
			out[i] = row[i] - b
		case 3:
			out[i] = row[i] - byte((int(a)+int(b))/2)
		case 4:
			out[i] = row[i] - paeth(a, b, c)
		}
	}
	return out
}

// TestDecodePNG16Refuses checks that corrupt or truncated files are errors, never a panic, and
// that what the decoder does not take goes to image/png.
func TestDecodePNG16Refuses(t *testing.T) {
	t.Parallel()
	good := grayAlpha16PNG(t, 9, 4)
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-20] ^= 0xff // inside the IDAT chunk
	var eight bytes.Buffer
	if err := png.Encode(&eight, quadrants(4, 4)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		in        []byte
		probeOK   bool
		decodeErr bool
	}{
		{"truncated", good[:len(good)-30], true, true},
		{"bad crc", badCRC, true, true},
		{"8-bit", eight.Bytes(), false, true},
		{"not png", []byte("hello"), false, true},
	} {
		if _, ok := png16Probe(tt.in); ok != tt.probeOK {
			t.Errorf("%s: probe %v, want %v", tt.name, ok, tt.probeOK)
		}
		if _, err := decodePNG16(tt.in); (err != nil) != tt.decodeErr {
			t.Errorf("%s: err %v, want error %v", tt.name, err, tt.decodeErr)
		}
	}
}

// FuzzPNG16 feeds arbitrary bytes to the 16-bit PNG reader: it must never panic, and whenever
// both it and image/png decode a file, the pixels agree at 8 bits.
func FuzzPNG16(f *testing.F) {
	f.Add(grayAlpha16PNG(f, 9, 4))
	for _, kind := range []string{"gray", "rgb", "rgba"} {
		var buf bytes.Buffer
		if err := png.Encode(&buf, png16Sample(kind, 6, 3, 1)); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := png16Probe(b)
		if !ok || int64(h.width)*int64(h.height) > 1<<16 {
			return
		}
		got, err := decodePNG16(b)
		if err != nil {
			return
		}
		ref, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		if got.Bounds() != ref.Bounds() {
			t.Fatalf("bounds %v, image/png %v", got.Bounds(), ref.Bounds())
		}
		if !bytes.Equal(to8(got).Pix, to8(ref).Pix) {
			t.Fatal("pixels differ from image/png")
		}
	})
}

func putBE32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }

func zlibBytes(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
