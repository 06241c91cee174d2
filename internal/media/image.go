package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"runtime"
	"strings"

	"github.com/gabriel-vasile/mimetype"
	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/webp"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// The image formats NeruTalk accepts. Everything is decoded and re-encoded, so metadata (EXIF with
// GPS, XMP, comments, ICC profiles) and anything appended to or hidden in the file is dropped.
const (
	mimeJPEG = "image/jpeg"
	mimePNG  = "image/png"
	mimeGIF  = "image/gif"
	mimeWebP = "image/webp"
)

// sniffLen is how many leading bytes type detection looks at.
const sniffLen = 3072

// detectType returns the MIME type of data from its content (never from a name or a declared
// type), without parameters such as charset.
func detectType(head []byte) string {
	t := mimetype.Detect(head).String()
	if i := strings.IndexByte(t, ';'); i >= 0 {
		t = t[:i]
	}
	return t
}

// Errors a client causes with an image.
var (
	errInvalidImage = apperr.New(apperr.KindInvalid, "invalid_image", "the image is truncated or corrupt")
	errNotImage     = apperr.New(apperr.KindUnsupportedType, "unsupported_media_type",
		"not a supported image: send JPEG, PNG, GIF or WebP")
)

func invalidImage(cause error) error {
	e := *errInvalidImage
	e.Err = cause
	return &e
}

func imageTooLarge(maxPixels int64) error {
	return apperr.New(apperr.KindInvalid, "image_too_large",
		fmt.Sprintf("the image has too many pixels (at most %d)", maxPixels))
}

func tooLarge(max int64) error {
	return apperr.New(apperr.KindTooLarge, "too_large", fmt.Sprintf("the file is too large (at most %d bytes)", max))
}

// readLimited reads all of r, refusing (413) more than max bytes without reading further.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("media: read upload: %w", err)
	}
	if n > max {
		return nil, tooLarge(max)
	}
	return buf.Bytes(), nil
}

// pipeline decodes, checks and re-encodes images. A decoded image takes up to 4 bytes per pixel,
// so the number of images being processed at once is limited (one per CPU): memory stays bounded
// by about GOMAXPROCS x maxPixels x 8 bytes whatever the number of concurrent uploads.
type pipeline struct {
	maxPixels int64
	sem       chan struct{}
}

func newPipeline(maxPixels int64) *pipeline {
	return &pipeline{maxPixels: maxPixels, sem: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// acquire waits for a processing slot.
func (p *pipeline) acquire(ctx context.Context) (release func(), err error) {
	select {
	case p.sem <- struct{}{}:
		return func() { <-p.sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("media: waiting to process an image: %w", ctx.Err())
	}
}

// decoded is an image read from an upload.
type decoded struct {
	mime        string      // detected input type
	img         image.Image // the still image, or the first frame composed on the canvas
	anim        *gif.GIF    // every frame, for GIFs
	orientation int         // EXIF orientation to apply (JPEG), 1 = none
}

// size returns the width and height once oriented.
func (d *decoded) size() (int, int) {
	b := d.img.Bounds()
	if d.orientation >= 5 {
		return b.Dy(), b.Dx()
	}
	return b.Dx(), b.Dy()
}

// decode checks data and decodes it. The dimensions are read from the header first and refused
// above maxPixels before anything is allocated (decompression bombs); for GIFs every frame counts.
// allFrames keeps every frame of a GIF (for re-encoding); otherwise only the first is decoded.
func (p *pipeline) decode(data []byte, allFrames bool) (d *decoded, err error) {
	defer func() {
		if r := recover(); r != nil { // a decoder bug must not take the server down
			d, err = nil, invalidImage(fmt.Errorf("decoder panic: %v", r))
		}
	}()
	d = &decoded{mime: detectType(data[:min(len(data), sniffLen)]), orientation: 1}
	var config func(io.Reader) (image.Config, error)
	var decode func(io.Reader) (image.Image, error)
	switch d.mime {
	case mimeJPEG:
		config, decode = jpeg.DecodeConfig, jpeg.Decode
		d.orientation = jpegOrientation(data)
	case mimePNG:
		config, decode = png.DecodeConfig, png.Decode
	case mimeGIF:
		config, decode = gif.DecodeConfig, gif.Decode
	case mimeWebP:
		if webpAnimated(data) {
			return nil, apperr.New(apperr.KindUnsupportedType, "unsupported_media_type", "animated WebP images are not supported")
		}
		config, decode = webp.DecodeConfig, webp.Decode
	default:
		return nil, errNotImage
	}
	cfg, err := config(bytes.NewReader(data))
	if err != nil {
		return nil, invalidImage(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, invalidImage(errors.New("empty image"))
	}
	if int64(cfg.Width)*int64(cfg.Height) > p.maxPixels {
		return nil, imageTooLarge(p.maxPixels)
	}
	if d.mime == mimeGIF && allFrames {
		_, pixels, err := gifFrames(data)
		if err != nil {
			return nil, invalidImage(err)
		}
		if pixels > p.maxPixels {
			return nil, imageTooLarge(p.maxPixels)
		}
		if d.anim, err = gif.DecodeAll(bytes.NewReader(data)); err != nil {
			return nil, invalidImage(err)
		}
		d.img = firstFrame(d.anim)
		return d, nil
	}
	if d.img, err = decode(bytes.NewReader(data)); err != nil {
		return nil, invalidImage(err)
	}
	return d, nil
}

// webpAnimated reports whether a WebP file has the animation flag of its VP8X header.
func webpAnimated(b []byte) bool {
	return len(b) >= 21 && string(b[12:16]) == "VP8X" && b[20]&0x02 != 0
}

// firstFrame draws the first frame of g on a canvas the size of the GIF's logical screen.
func firstFrame(g *gif.GIF) image.Image {
	f := g.Image[0]
	if f.Bounds() == image.Rect(0, 0, g.Config.Width, g.Config.Height) {
		return f
	}
	canvas := image.NewNRGBA(image.Rect(0, 0, g.Config.Width, g.Config.Height))
	xdraw.Draw(canvas, f.Bounds(), f, f.Bounds().Min, xdraw.Over)
	return canvas
}

// encodedImage is one re-encoded image.
type encodedImage struct {
	mime          string
	data          []byte
	width, height int
}

// Qualities of the JPEGs NeruTalk writes.
const (
	jpegQualityFull  = 90
	jpegQualityThumb = 82
)

// reencode writes the upright image again in a format a browser shows: JPEG stays JPEG, PNG stays
// PNG, GIF stays GIF (every frame), WebP becomes JPEG (opaque) or PNG (with transparency), since
// Go has no WebP encoder.
func reencode(d *decoded) (encodedImage, error) {
	var buf bytes.Buffer
	out := encodedImage{}
	out.width, out.height = d.size()
	if d.anim != nil {
		if err := gif.EncodeAll(&buf, d.anim); err != nil {
			return out, fmt.Errorf("media: encode gif: %w", err)
		}
		out.mime, out.data = mimeGIF, buf.Bytes()
		return out, nil
	}
	img := orient(d.img, d.orientation)
	var err error
	switch {
	case d.mime == mimeJPEG || (d.mime == mimeWebP && opaque(img)):
		out.mime = mimeJPEG
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: jpegQualityFull})
	case d.mime == mimeGIF:
		out.mime = mimeGIF
		err = gif.Encode(&buf, img, nil)
	default:
		out.mime = mimePNG
		err = (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(&buf, img)
	}
	if err != nil {
		return out, fmt.Errorf("media: encode %s: %w", out.mime, err)
	}
	out.data = buf.Bytes()
	return out, nil
}

// thumbnail scales the upright image to fit in a box x box square (never enlarging it) with
// Catmull-Rom, and encodes it as JPEG, or PNG when it has transparency. An animated GIF gives a
// still of its first frame.
func thumbnail(d *decoded, box int) (encodedImage, error) {
	w, h := d.size()
	tw, th := fit(w, h, box)
	small := scale(d.img, d.orientation, d.img.Bounds(), tw, th)
	return encodeStill(small, jpegQualityThumb)
}

// encodeStill writes img as JPEG when it is opaque, PNG otherwise.
func encodeStill(img *image.RGBA, quality int) (encodedImage, error) {
	var buf bytes.Buffer
	out := encodedImage{width: img.Bounds().Dx(), height: img.Bounds().Dy()}
	var err error
	if img.Opaque() {
		out.mime = mimeJPEG
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality})
	} else {
		out.mime = mimePNG
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	}
	if err != nil {
		return out, fmt.Errorf("media: encode %s: %w", out.mime, err)
	}
	out.data = buf.Bytes()
	return out, nil
}

// fit returns the size of a w x h image scaled down to fit in box x box (at least 1 x 1).
func fit(w, h, box int) (int, int) {
	if w <= box && h <= box {
		return w, h
	}
	if w >= h {
		return box, max(1, (h*box+w/2)/w)
	}
	return max(1, (w*box+h/2)/h), box
}

// scale resamples the src rectangle of img to an upright tw x th image: it scales in the stored
// orientation (swapping the target's sides for rotations) and then orients the small result,
// which is much cheaper than orienting the full image first.
func scale(img image.Image, orientation int, src image.Rectangle, tw, th int) *image.RGBA {
	if orientation >= 5 {
		tw, th = th, tw
	}
	if k := min(src.Dx()/tw, src.Dy()/th) / 2; k >= 2 {
		img = shrink(img, src, k)
		src = img.Bounds()
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, src, xdraw.Src, nil)
	return orient(dst, orientation)
}

// opaque reports whether img has no transparent pixel.
func opaque(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return o.Opaque()
	}
	return false
}

// orient applies an EXIF orientation (1..8) and returns the upright image; 1 returns img as is.
func orient(img image.Image, orientation int) *image.RGBA {
	src, ok := img.(*image.RGBA)
	if !ok || src.Rect.Min != (image.Point{}) {
		b := img.Bounds()
		src = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		xdraw.Draw(src, src.Rect, img, b.Min, xdraw.Src)
	}
	if orientation <= 1 || orientation > 8 {
		return src
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := w, h
	if orientation >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < h; y++ {
		row := src.Pix[y*src.Stride:]
		for x := 0; x < w; x++ {
			var dx, dy int
			switch orientation {
			case 2: // mirrored
				dx, dy = w-1-x, y
			case 3: // rotated 180
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotated 90 clockwise to be upright
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // rotated 90 counter-clockwise to be upright
				dx, dy = y, w-1-x
			}
			copy(dst.Pix[dy*dst.Stride+dx*4:dy*dst.Stride+dx*4+4], row[x*4:x*4+4])
		}
	}
	return dst
}
