package media

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	xdraw "golang.org/x/image/draw"
)

// Quadrant colours of the test pattern: orientation tests check where each one ends up.
var (
	colTL = color.RGBA{255, 0, 0, 255}   // top left: red
	colTR = color.RGBA{0, 255, 0, 255}   // top right: green
	colBL = color.RGBA{0, 0, 255, 255}   // bottom left: blue
	colBR = color.RGBA{255, 255, 0, 255} // bottom right: yellow
)

// quadrants draws a w x h image with four coloured quadrants.
func quadrants(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := colTL
			switch {
			case x >= w/2 && y < h/2:
				c = colTR
			case x < w/2 && y >= h/2:
				c = colBL
			case x >= w/2 && y >= h/2:
				c = colBR
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// transparentPNG is a w x h PNG whose left half is transparent.
func transparentPNG(t testing.TB, w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := w / 2; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{10, 200, 30, 255})
		}
	}
	return encodePNG(t, img)
}

// animatedGIF has n frames of w x h, each a different colour.
func animatedGIF(t testing.TB, w, h, n int) []byte {
	t.Helper()
	g := &gif.GIF{LoopCount: 0}
	for i := range n {
		f := image.NewPaletted(image.Rect(0, 0, w, h), palette.Plan9)
		for p := range f.Pix {
			f.Pix[p] = uint8(i*40 + 3)
		}
		g.Image = append(g.Image, f)
		g.Delay = append(g.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tiffIFD is one IFD entry for the Exif builder.
type tiffIFD struct {
	tag, typ uint16
	count    uint32
	value    uint32
}

// exifSegment builds an APP1 Exif segment (big-endian TIFF) with an orientation and, when gps
// is set, a GPS IFD with latitude/longitude and a maker note-like string, as phones write them.
func exifSegment(orientation int, gps bool) []byte {
	var t bytes.Buffer
	be := binary.BigEndian
	t.WriteString("MM\x00*")
	binary.Write(&t, be, uint32(8)) // IFD0 right after the header
	ifd0 := []tiffIFD{{0x0112, 3, 1, uint32(orientation) << 16}}
	const ifd0Size = 2 + 2*12 + 4
	if gps {
		ifd0 = append(ifd0, tiffIFD{0x8825, 4, 1, 8 + ifd0Size}) // GPSInfo IFD pointer
	} else {
		ifd0 = append(ifd0, tiffIFD{0x0131, 2, 4, 0x4E543100}) // Software "NT1\0"
	}
	binary.Write(&t, be, uint16(len(ifd0)))
	for _, e := range ifd0 {
		binary.Write(&t, be, e)
	}
	binary.Write(&t, be, uint32(0))
	if gps {
		// GPS IFD: LatitudeRef N, Latitude 48/1 51/1 2982/100, LongitudeRef E, Longitude 2/1 17/1 4020/100.
		gpsStart := uint32(t.Len())
		entries := 4
		dataAt := gpsStart + 2 + uint32(entries)*12 + 4
		binary.Write(&t, be, uint16(entries))
		binary.Write(&t, be, tiffIFD{0x0001, 2, 2, 'N' << 24})
		binary.Write(&t, be, tiffIFD{0x0002, 5, 3, dataAt})
		binary.Write(&t, be, tiffIFD{0x0003, 2, 2, 'E' << 24})
		binary.Write(&t, be, tiffIFD{0x0004, 5, 3, dataAt + 24})
		binary.Write(&t, be, uint32(0))
		for _, v := range []uint32{48, 1, 51, 1, 2982, 100, 2, 1, 17, 1, 4020, 100} {
			binary.Write(&t, be, v)
		}
		t.WriteString("GPSSECRET-48.8583N-2.2945E")
	}
	body := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	be.PutUint16(seg[2:], uint16(len(body)+2))
	return append(seg, body...)
}

// withSegment inserts a segment right after the SOI marker of a JPEG.
func withSegment(jpg, seg []byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// pngHeader is a PNG that claims w x h pixels in a valid IHDR and has no image data.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	writeChunk(&b, "IHDR", ihdr)
	writeChunk(&b, "IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	writeChunk(&b, "IEND", nil)
	return b.Bytes()
}

// writeChunk writes one PNG chunk with its CRC.
func writeChunk(b *bytes.Buffer, typ string, data []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// gifBomb is a GIF whose logical screen is small enough, but that has frames frames of w x h:
// the decoder would allocate frames x w x h bytes.
func gifBomb(t testing.TB, w, h, frames int) []byte {
	t.Helper()
	one := animatedGIF(t, w, h, 1)
	// Split: header and screen (the encoder writes local colour tables) | blocks | trailer, and
	// repeat the blocks.
	if one[10]&0x80 != 0 {
		t.Fatal("unexpected global colour table")
	}
	const start = 13
	body := one[start : len(one)-1]
	out := append([]byte{}, one[:start]...)
	for range frames {
		out = append(out, body...)
	}
	return append(out, 0x3B)
}

// near reports whether two colours are within tol on every channel (JPEG is lossy).
func near(a, b color.Color, tol int) bool {
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	d := func(x, y uint32) bool { return abs(int(x>>8)-int(y>>8)) <= tol }
	return d(r1, r2) && d(g1, g2) && d(b1, b2) && d(a1, a2)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

type imageRGBA = image.RGBA

func newRGBA(w, h int) *image.RGBA { return image.NewRGBA(image.Rect(0, 0, w, h)) }

func xdrawDraw(dst *image.RGBA, src image.Image) {
	xdraw.Draw(dst, dst.Rect, src, src.Bounds().Min, xdraw.Src)
}
