package media

import (
	"archive/zip"
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// wantErrCode checks that err is an *apperr.Error of the given kind and code.
func wantErrCode(t *testing.T, err error, kind apperr.Kind, code string) {
	t.Helper()
	ae, ok := apperr.As(err)
	if !ok {
		t.Fatalf("got error %v, want apperr %s", err, code)
	}
	if ae.Kind != kind || ae.Code != code {
		t.Fatalf("got %v (kind %d), want code %s (kind %d)", err, ae.Kind, code, kind)
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeAcceptsAndRefuses(t *testing.T) {
	t.Parallel()
	jpg := encodeJPEG(t, quadrants(64, 32))
	pngb := encodePNG(t, quadrants(64, 32))
	tests := []struct {
		name     string
		in       []byte
		max      int64
		kind     apperr.Kind // 0 = accepted
		code     string
		wantMIME string // the stored type, when accepted
		w, h     int
	}{
		{name: "jpeg", in: jpg, wantMIME: mimeJPEG, w: 64, h: 32},
		{name: "png", in: pngb, wantMIME: mimePNG, w: 64, h: 32},
		{name: "transparent png", in: transparentPNG(t, 10, 10), wantMIME: mimePNG, w: 10, h: 10},
		{name: "animated gif", in: animatedGIF(t, 20, 10, 3), wantMIME: mimeGIF, w: 20, h: 10},
		{name: "lossy webp becomes jpeg", in: readTestdata(t, "blue-purple-pink.lossy.webp"), wantMIME: mimeJPEG, w: 150, h: 100},
		{name: "webp with alpha becomes png", in: readTestdata(t, "gopher-doc.with-alpha.lossless.webp"), wantMIME: mimePNG, w: 75, h: 100},
		{name: "text", in: []byte("just some text"), kind: apperr.KindUnsupportedType, code: "unsupported_media_type"},
		{name: "empty", in: []byte{}, kind: apperr.KindUnsupportedType, code: "unsupported_media_type"},
		{name: "svg", in: []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), kind: apperr.KindUnsupportedType, code: "unsupported_media_type"},
		{name: "html", in: []byte(`<!doctype html><html><body><img src=x onerror=alert(1)></body></html>`), kind: apperr.KindUnsupportedType, code: "unsupported_media_type"},
		{name: "pdf", in: []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"), kind: apperr.KindUnsupportedType, code: "unsupported_media_type"},
		{name: "bmp", in: append([]byte("BM"), make([]byte, 60)...), kind: apperr.KindUnsupportedType, code: "unsupported_media_type"},
		{name: "truncated jpeg", in: jpg[:len(jpg)/2], kind: apperr.KindInvalid, code: "invalid_image"},
		{name: "truncated png", in: pngb[:len(pngb)-30], kind: apperr.KindInvalid, code: "invalid_image"},
		{name: "jpeg header only", in: jpg[:30], kind: apperr.KindInvalid, code: "invalid_image"},
		{name: "corrupt png", in: append(append([]byte{}, pngb[:40]...), bytes.Repeat([]byte{0xAA}, 200)...), kind: apperr.KindInvalid, code: "invalid_image"},
		{name: "png claiming 100000x100000", in: pngHeader(100000, 100000), kind: apperr.KindInvalid, code: "image_too_large"},
		{name: "png claiming 0x0", in: pngHeader(0, 0), kind: apperr.KindInvalid, code: "invalid_image"},
		{name: "just over the limit", in: encodePNG(t, quadrants(101, 100)), max: 10000, kind: apperr.KindInvalid, code: "image_too_large"},
		{name: "at the limit", in: encodePNG(t, quadrants(100, 100)), max: 10000, wantMIME: mimePNG, w: 100, h: 100},
		{name: "gif bomb: small screen, many frames", in: gifBomb(t, 100, 100, 50), max: 40000, kind: apperr.KindInvalid, code: "image_too_large"},
		{name: "gif without trailer", in: func() []byte { g := animatedGIF(t, 4, 4, 2); return g[:len(g)-1] }(), kind: apperr.KindInvalid, code: "invalid_image"},
		{name: "animated webp", in: func() []byte {
			b := append([]byte{}, readTestdata(t, "blue-purple-pink.lossy.webp")...)
			// Rewrite the header as VP8X with the animation flag (the body no longer matters).
			copy(b[12:], "VP8X\x0a\x00\x00\x00\x02\x00\x00\x00")
			return b
		}(), kind: apperr.KindUnsupportedType, code: "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			max := tt.max
			if max == 0 {
				max = 40_000_000
			}
			d, err := newPipeline(max).decode(tt.in, true)
			if tt.kind != 0 {
				wantErrCode(t, err, tt.kind, tt.code)
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			out, err := reencode(d)
			if err != nil {
				t.Fatalf("reencode: %v", err)
			}
			if out.mime != tt.wantMIME || out.width != tt.w || out.height != tt.h {
				t.Fatalf("reencode: got %s %dx%d, want %s %dx%d", out.mime, out.width, out.height, tt.wantMIME, tt.w, tt.h)
			}
			if got := detectType(out.data); got != tt.wantMIME {
				t.Errorf("the stored bytes are %s, want %s", got, tt.wantMIME)
			}
			cfg, _, err := image.DecodeConfig(bytes.NewReader(out.data))
			if err != nil || cfg.Width != tt.w || cfg.Height != tt.h {
				t.Errorf("stored image: %dx%d, %v; want %dx%d", cfg.Width, cfg.Height, err, tt.w, tt.h)
			}
		})
	}
}

// cornerColors returns the colours near the four corners of img (TL, TR, BL, BR).
func cornerColors(img image.Image) [4]color.Color {
	b := img.Bounds()
	dx, dy := max(1, b.Dx()/8), max(1, b.Dy()/8)
	return [4]color.Color{
		img.At(b.Min.X+dx, b.Min.Y+dy), img.At(b.Max.X-1-dx, b.Min.Y+dy),
		img.At(b.Min.X+dx, b.Max.Y-1-dy), img.At(b.Max.X-1-dx, b.Max.Y-1-dy),
	}
}

// TestOrientation stores a 40x20 JPEG (red, green / blue, yellow quadrants) with each EXIF
// orientation and checks what a viewer honouring EXIF would show: the corners and the size, in
// the re-encoded image and in its thumbnail.
func TestOrientation(t *testing.T) {
	t.Parallel()
	r, g, b, y := colTL, colTR, colBL, colBR
	want := map[int][4]color.Color{ // TL, TR, BL, BR as displayed
		1: {r, g, b, y}, 2: {g, r, y, b}, 3: {y, b, g, r}, 4: {b, y, r, g},
		5: {r, b, g, y}, 6: {b, r, y, g}, 7: {y, g, b, r}, 8: {g, y, r, b},
	}
	src := encodeJPEG(t, quadrants(80, 40))
	for o := 1; o <= 8; o++ {
		t.Run(string(rune('0'+o)), func(t *testing.T) {
			t.Parallel()
			d, err := newPipeline(1<<20).decode(withSegment(src, exifSegment(o, false)), true)
			if err != nil {
				t.Fatal(err)
			}
			ww, wh := 80, 40
			if o >= 5 {
				ww, wh = 40, 80
			}
			full, err := reencode(d)
			if err != nil {
				t.Fatal(err)
			}
			thumb, err := thumbnail(d, 20)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name string
				enc  encodedImage
				w, h int
			}{{"full", full, ww, wh}, {"thumbnail", thumb, ww / 4, wh / 4}} {
				img, err := jpeg.Decode(bytes.NewReader(c.enc.data))
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if img.Bounds().Dx() != c.w || img.Bounds().Dy() != c.h || c.enc.width != c.w || c.enc.height != c.h {
					t.Errorf("%s: %v (reported %dx%d), want %dx%d", c.name, img.Bounds(), c.enc.width, c.enc.height, c.w, c.h)
				}
				got := cornerColors(img)
				for i := range got {
					if !near(got[i], want[o][i], 40) {
						t.Errorf("%s, orientation %d, corner %d: got %v, want %v", c.name, o, i, got[i], want[o][i])
					}
				}
				if jpegOrientation(c.enc.data) != 1 {
					t.Errorf("%s: the output still carries an orientation", c.name)
				}
			}
		})
	}
}

func TestMetadataAndPolyglotsDoNotSurvive(t *testing.T) {
	t.Parallel()
	jpg := encodeJPEG(t, quadrants(64, 64))
	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	f, _ := zw.Create("payload.html")
	f.Write([]byte("<script>alert('zip')</script>"))
	zw.Close()

	gifJS := func() []byte {
		g := animatedGIF(t, 8, 8, 1)
		// A comment extension with script, and script after the trailer.
		comment := append([]byte{0x21, 0xFE, 22}, []byte("*/=alert('gif');/*....")...)
		comment = append(comment, 0)
		const at = 13 // after the screen descriptor: the encoder writes local colour tables
		out := append(append(append([]byte{}, g[:at]...), comment...), g[at:]...)
		return append(out, []byte("*/=alert('trailer');")...)
	}()
	pngText := func() []byte {
		p := encodePNG(t, quadrants(16, 16))
		// A tEXt chunk after IHDR, with a valid CRC.
		return insertPNGChunk(p, "tEXt", []byte("Comment\x00<script>alert('png')</script>"))
	}()

	tests := []struct {
		name      string
		in        []byte
		forbidden []string
	}{
		{"jpeg with exif gps", withSegment(jpg, exifSegment(1, true)), []string{"Exif", "GPSSECRET", "MM\x00*"}},
		{"jpeg + zip polyglot", append(append([]byte{}, jpg...), zipBuf.Bytes()...), []string{"PK\x03\x04", "PK\x05\x06", "alert"}},
		{"gif/js polyglot", gifJS, []string{"alert", "*/"}},
		{"png with a text chunk", pngText, []string{"tEXt", "alert"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := newPipeline(1<<20).decode(tt.in, true)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			full, err := reencode(d)
			if err != nil {
				t.Fatal(err)
			}
			thumb, err := thumbnail(d, 8)
			if err != nil {
				t.Fatal(err)
			}
			for _, out := range [][]byte{full.data, thumb.data} {
				for _, s := range tt.forbidden {
					if bytes.Contains(out, []byte(s)) {
						t.Errorf("%q survived re-encoding", s)
					}
				}
				if _, err := zip.NewReader(bytes.NewReader(out), int64(len(out))); err == nil {
					t.Errorf("the output is still a readable ZIP")
				}
			}
		})
	}
}

// insertPNGChunk adds a chunk right after IHDR.
func insertPNGChunk(p []byte, typ string, data []byte) []byte {
	const afterIHDR = 8 + 8 + 13 + 4
	var b bytes.Buffer
	b.Write(p[:afterIHDR])
	writeChunk(&b, typ, data)
	b.Write(p[afterIHDR:])
	return b.Bytes()
}

func TestAnimatedGIFKeepsFramesAndThumbnailIsStill(t *testing.T) {
	t.Parallel()
	d, err := newPipeline(1<<20).decode(animatedGIF(t, 40, 30, 4), true)
	if err != nil {
		t.Fatal(err)
	}
	full, err := reencode(d)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gif.DecodeAll(bytes.NewReader(full.data))
	if err != nil || len(g.Image) != 4 {
		t.Fatalf("re-encoded GIF: %v, %d frames; want 4", err, len(g.Image))
	}
	thumb, err := thumbnail(d, 20)
	if err != nil {
		t.Fatal(err)
	}
	if thumb.mime == mimeGIF || thumb.width != 20 || thumb.height != 15 {
		t.Errorf("thumbnail: %s %dx%d, want a still 20x15", thumb.mime, thumb.width, thumb.height)
	}
}

func TestThumbnailKeepsTransparency(t *testing.T) {
	t.Parallel()
	d, err := newPipeline(1<<20).decode(transparentPNG(t, 400, 200), true)
	if err != nil {
		t.Fatal(err)
	}
	thumb, err := thumbnail(d, 100)
	if err != nil {
		t.Fatal(err)
	}
	if thumb.mime != mimePNG || thumb.width != 100 || thumb.height != 50 {
		t.Fatalf("got %s %dx%d, want image/png 100x50", thumb.mime, thumb.width, thumb.height)
	}
	img, err := png.Decode(bytes.NewReader(thumb.data))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, a := img.At(5, 25).RGBA(); a != 0 {
		t.Errorf("left half: alpha %d, want transparent", a)
	}
}

func TestFit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ w, h, box, ww, wh int }{
		{100, 50, 320, 100, 50}, {640, 480, 320, 320, 240}, {480, 640, 320, 240, 320},
		{10000, 1, 320, 320, 1}, {1, 10000, 320, 1, 320}, {320, 320, 320, 320, 320}, {321, 320, 320, 320, 319},
	} {
		if w, h := fit(tt.w, tt.h, tt.box); w != tt.ww || h != tt.wh {
			t.Errorf("fit(%d, %d, %d) = %d, %d; want %d, %d", tt.w, tt.h, tt.box, w, h, tt.ww, tt.wh)
		}
	}
}

func TestReadLimited(t *testing.T) {
	t.Parallel()
	if b, err := readLimited(strings.NewReader("12345"), 5); err != nil || string(b) != "12345" {
		t.Errorf("at the limit: %q, %v", b, err)
	}
	_, err := readLimited(strings.NewReader("123456"), 5)
	wantErrCode(t, err, apperr.KindTooLarge, "too_large")
}

// FuzzDecodeImage feeds arbitrary bytes to the pipeline's entry point: it must never panic
// (the recover in decode would hide a panic, so the test checks for the panic cause), and every
// refusal must be a classified client error.
func FuzzDecodeImage(f *testing.F) {
	f.Add(encodeJPEG(f, quadrants(8, 8)))
	f.Add(withSegment(encodeJPEG(f, quadrants(8, 4)), exifSegment(6, true)))
	f.Add(encodePNG(f, quadrants(8, 8)))
	f.Add(animatedGIF(f, 4, 4, 2))
	f.Add(pngHeader(100000, 100000))
	f.Add(readTestdata(f, "blue-purple-pink.lossy.webp"))
	f.Add([]byte("hello"))
	p := newPipeline(1 << 16)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := p.decode(b, true)
		if err != nil {
			ae, ok := apperr.As(err)
			if !ok || (ae.Kind != apperr.KindInvalid && ae.Kind != apperr.KindUnsupportedType) {
				t.Fatalf("refusal is not a client error: %v", err)
			}
			if ae.Err != nil && strings.Contains(ae.Err.Error(), "decoder panic") {
				t.Fatalf("decoder panicked: %v", ae.Err)
			}
			return
		}
		if w, h := d.size(); int64(w)*int64(h) > 1<<16 {
			t.Fatalf("accepted %dx%d above the pixel limit", w, h)
		}
		if _, err := reencode(d); err != nil {
			t.Fatalf("accepted image fails to re-encode: %v", err)
		}
		if _, err := thumbnail(d, 32); err != nil {
			t.Fatalf("accepted image fails to thumbnail: %v", err)
		}
	})
}

// TestShrinkYCbCrMatchesRGBA checks the Y'CbCr fast path of shrink against the RGBA path on the
// same picture, for every chroma subsampling, an image whose bounds do not start at the origin
// and a source rectangle inside it.
func TestShrinkYCbCrMatchesRGBA(t *testing.T) {
	t.Parallel()
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		yc := image.NewYCbCr(image.Rect(3, 5, 203, 125), ratio)
		for y := yc.Rect.Min.Y; y < yc.Rect.Max.Y; y++ {
			for x := yc.Rect.Min.X; x < yc.Rect.Max.X; x++ {
				// Values whose RGB needs no clamping: averaging then converting is then the same
				// as converting then averaging.
				yc.Y[yc.YOffset(x, y)] = uint8(40 + (x+y)/3)
				ci := yc.COffset(x, y)
				yc.Cb[ci], yc.Cr[ci] = uint8(110+x/10), uint8(140-y/10)
			}
		}
		rgba := image.NewRGBA(yc.Rect)
		xdrawDraw(rgba, yc)
		src := image.Rect(10, 9, 190, 120)
		a, b := shrink(yc, src, 3), shrink(rgba, src, 3)
		if a.Rect != b.Rect || a.Rect.Dx() != 60 || a.Rect.Dy() != 37 {
			t.Fatalf("%v: sizes %v and %v", ratio, a.Rect, b.Rect)
		}
		for i := range a.Pix {
			if abs(int(a.Pix[i])-int(b.Pix[i])) > 6 {
				t.Fatalf("%v: byte %d: %d vs %d", ratio, i, a.Pix[i], b.Pix[i])
			}
		}
	}
}
