package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"runtime"
	"strings"

	"github.com/gabriel-vasile/mimetype"
	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/webp"
	"golang.org/x/sync/semaphore"

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
	return readLimitedInto(new(bytes.Buffer), r, max)
}

// readLimitedInto is readLimited reading into buf (reset first), whose memory it reuses.
func readLimitedInto(buf *bytes.Buffer, r io.Reader, max int64) ([]byte, error) {
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("media: read upload: %w", err)
	}
	if n > max {
		return nil, tooLarge(max)
	}
	return buf.Bytes(), nil
}

// pipeline decodes, checks and re-encodes images. Its memory is bounded by a budget in bytes
// (NERUTALK_IMAGE_MEMORY_BYTES) rather than a number of images: before decoding, the header gives
// the dimensions and the pixel format, from which imageCost computes what the decode and the rest
// of the pipeline allocate (the decoded image at its real bytes per pixel, the thumbnail's
// intermediate, the encoded output, an upright copy when an EXIF rotation needs one), and the
// upload waits until that much of the budget is free. Small images (a cost of at most
// fastLaneCost) have a budget of their own, so an avatar or a 4 x 4 sticker never waits behind a
// 40-megapixel photo. An image costing more than the whole budget runs alone. Memory taken by
// images being processed therefore stays under memoryBytes + fastLaneBytes whatever the number of
// concurrent uploads. The CPU is bounded too: at most heavySlots() large images (outside the fast
// lane) are processed at once per node, so that with few cores concurrent large decodes leave
// part of the CPU to everything else (messages, small images).
type pipeline struct {
	maxPixels   int64
	memoryBytes int64
	budget      *semaphore.Weighted
	fast        *semaphore.Weighted
	heavy       *semaphore.Weighted
	workers     *workerPool // nil: inline mode, everything is processed in this process
}

// heavySlots is how many large images a node processes at once: half the cores, at least one.
func heavySlots() int64 { return int64(max(1, runtime.GOMAXPROCS(0)/2)) }

// DefaultImageMemoryBytes is the default image memory budget (NERUTALK_IMAGE_MEMORY_BYTES).
const DefaultImageMemoryBytes = 256 << 20

// The fast lane: images whose cost is at most fastLaneCost share fastLaneBytes of their own.
const (
	fastLaneCost  = 8 << 20
	fastLaneBytes = 4 * fastLaneCost
)

func newPipeline(maxPixels int64) *pipeline {
	return newPipelineBudget(maxPixels, DefaultImageMemoryBytes)
}

func newPipelineBudget(maxPixels, memoryBytes int64) *pipeline {
	return newPipelineWorkers(maxPixels, memoryBytes, inlineWorkers)
}

// newPipelineWorkers returns a pipeline that sends large images to workers (nil: inline).
func newPipelineWorkers(maxPixels, memoryBytes int64, workers *workerPool) *pipeline {
	if memoryBytes <= 0 {
		memoryBytes = DefaultImageMemoryBytes
	}
	return &pipeline{maxPixels: maxPixels, memoryBytes: memoryBytes,
		budget: semaphore.NewWeighted(memoryBytes), fast: semaphore.NewWeighted(fastLaneBytes),
		heavy: semaphore.NewWeighted(heavySlots()), workers: workers}
}

// process checks data, waits for its cost in the memory budget and makes the outputs of job op
// (opFile: the re-encoded image and its thumbnail; opAvatar: both avatar sizes). A large image
// (one outside the fast lane) goes to a worker process when the pipeline has workers; a small
// one, or any in inline mode, is processed here.
func (p *pipeline) process(ctx context.Context, op byte, data []byte) ([]encodedImage, error) {
	in, err := p.inspect(data, op == opFile)
	if err != nil {
		return nil, err
	}
	release, err := p.acquire(ctx, in.cost)
	if err != nil {
		return nil, err
	}
	defer release()
	if p.workers != nil && in.cost > fastLaneCost {
		return p.workers.run(ctx, op, p.maxPixels, data, in.cost)
	}
	d, err := p.decodeInspected(data, in)
	if err != nil {
		return nil, err
	}
	return jobOutputs(op, d)
}

// acquire waits until cost bytes of the budget are free (the fast lane's for a small cost); a
// large image also waits for one of the heavy slots.
func (p *pipeline) acquire(ctx context.Context, cost int64) (release func(), err error) {
	if cost <= fastLaneCost {
		n := max(cost, 1)
		if err := p.fast.Acquire(ctx, n); err != nil {
			return nil, fmt.Errorf("media: waiting to process an image: %w", err)
		}
		return func() { p.fast.Release(n) }, nil
	}
	if err := p.heavy.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("media: waiting for a large image slot: %w", err)
	}
	n := min(cost, p.memoryBytes)
	if err := p.budget.Acquire(ctx, n); err != nil {
		p.heavy.Release(1)
		return nil, fmt.Errorf("media: waiting to process an image: %w", err)
	}
	return func() { p.budget.Release(n); p.heavy.Release(1) }, nil
}

// decodeBudgeted checks data, waits for its cost in the memory budget and decodes it. The caller
// calls release once it is done with d and everything made from it (encoded or not).
func (p *pipeline) decodeBudgeted(ctx context.Context, data []byte, allFrames bool) (d *decoded, release func(), err error) {
	in, err := p.inspect(data, allFrames)
	if err != nil {
		return nil, nil, err
	}
	if release, err = p.acquire(ctx, in.cost); err != nil {
		return nil, nil, err
	}
	if d, err = p.decodeInspected(data, in); err != nil {
		release()
		return nil, nil, err
	}
	return d, release, nil
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

// inspected is what the header of an image says, before anything is decoded.
type inspected struct {
	mime        string
	cfg         image.Config
	orientation int
	png16       bool  // decodePNG16 reads it
	allFrames   bool  // every GIF frame is decoded
	cost        int64 // bytes the pipeline allocates for it (imageCost)
}

// inspect checks data's type and header. The dimensions are read from the header and refused
// above maxPixels before anything is allocated (decompression bombs); for GIFs every frame counts.
func (p *pipeline) inspect(data []byte, allFrames bool) (in *inspected, err error) {
	defer func() {
		if r := recover(); r != nil { // a decoder bug must not take the server down
			in, err = nil, invalidImage(fmt.Errorf("decoder panic: %v", r))
		}
	}()
	in = &inspected{mime: detectType(data[:min(len(data), sniffLen)]), orientation: 1}
	var config func(io.Reader) (image.Config, error)
	switch in.mime {
	case mimeJPEG:
		config = jpeg.DecodeConfig
		in.orientation = jpegOrientation(data)
	case mimePNG:
		config = png.DecodeConfig
	case mimeGIF:
		config = gif.DecodeConfig
	case mimeWebP:
		if webpAnimated(data) {
			return nil, apperr.New(apperr.KindUnsupportedType, "unsupported_media_type", "animated WebP images are not supported")
		}
		config = webp.DecodeConfig
	default:
		return nil, errNotImage
	}
	if in.cfg, err = config(bytes.NewReader(data)); err != nil {
		return nil, invalidImage(err)
	}
	if in.cfg.Width <= 0 || in.cfg.Height <= 0 {
		return nil, invalidImage(errors.New("empty image"))
	}
	pixels := int64(in.cfg.Width) * int64(in.cfg.Height)
	if pixels > p.maxPixels {
		return nil, imageTooLarge(p.maxPixels)
	}
	decodedBytes := pixels * 4
	switch in.mime {
	case mimeJPEG:
		decodedBytes = pixels * jpegBytesPerPixel(in.cfg.ColorModel)
	case mimePNG:
		if h, ok := png16Probe(data); ok {
			in.png16 = true
			decodedBytes = png16DecodedBytes(h)
		} else {
			decodedBytes = pixels * pngBytesPerPixel(in.cfg.ColorModel)
			if len(data) > 28 && data[28] != 0 { // interlaced: image/png decodes each pass apart, then merges
				decodedBytes *= 2
			}
		}
	case mimeGIF:
		// The frames at 1 byte per pixel, the first frame composed on an NRGBA canvas, and the
		// paletted copy gif.Encode makes of a still.
		frames := pixels
		if allFrames {
			in.allFrames = true
			_, all, err := gifFrames(data)
			if err != nil {
				return nil, invalidImage(err)
			}
			if all > p.maxPixels {
				return nil, imageTooLarge(p.maxPixels)
			}
			frames = all
		}
		decodedBytes = frames + 5*pixels
	}
	in.cost = imageCost(pixels, decodedBytes, in.orientation)
	return in, nil
}

// imageCost is the memory the pipeline takes for an image of pixels pixels that decodes to
// decodedBytes: the decoded image; the thumbnail's box-filtered intermediate (at most a quarter of
// the pixels at 4 bytes: pixels bytes); the encoded full-size output (at most about one byte per
// pixel for what we write); an upright RGBA copy (4 bytes per pixel) when an EXIF orientation
// rotates or flips it; and the thumbnail itself.
func imageCost(pixels, decodedBytes int64, orientation int) int64 {
	cost := decodedBytes + 2*pixels + 2*ThumbnailSize*ThumbnailSize*4
	if orientation > 1 && orientation <= 8 {
		cost += 4 * pixels
	}
	return cost
}

// jpegBytesPerPixel is what image/jpeg allocates per pixel: Y'CbCr at most 3 (4:4:4), gray 1,
// CMYK 4.
func jpegBytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel:
		return 1
	case color.CMYKModel:
		return 4
	default:
		return 3
	}
}

// pngBytesPerPixel is what image/png allocates per pixel for a color model.
func pngBytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel:
		return 1
	case color.Gray16Model:
		return 2
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 4
}

// decode checks data and decodes it without waiting for the memory budget (tests, fuzzing; the
// upload paths use decodeBudgeted). allFrames keeps every frame of a GIF (for re-encoding);
// otherwise only the first is decoded.
func (p *pipeline) decode(data []byte, allFrames bool) (*decoded, error) {
	in, err := p.inspect(data, allFrames)
	if err != nil {
		return nil, err
	}
	return p.decodeInspected(data, in)
}

// decodeInspected decodes data, which inspect accepted as in. 16-bit PNGs are decoded to 8 bits
// row by row (decodePNG16).
func (p *pipeline) decodeInspected(data []byte, in *inspected) (d *decoded, err error) {
	defer func() {
		if r := recover(); r != nil { // a decoder bug must not take the server down
			d, err = nil, invalidImage(fmt.Errorf("decoder panic: %v", r))
		}
	}()
	d = &decoded{mime: in.mime, orientation: in.orientation}
	var decode func(io.Reader) (image.Image, error)
	switch in.mime {
	case mimeJPEG:
		decode = jpeg.Decode
	case mimePNG:
		decode = png.Decode
		if in.png16 {
			decode = func(io.Reader) (image.Image, error) { return decodePNG16(data) }
		}
	case mimeGIF:
		decode = gif.Decode
	case mimeWebP:
		decode = webp.Decode
	default:
		return nil, errNotImage
	}
	if in.mime == mimeGIF && in.allFrames {
		if d.anim, err = gif.DecodeAll(bytes.NewReader(data)); err != nil {
			return nil, invalidImage(err)
		}
		d.img = firstFrame(d.anim)
		return d, nil
	}
	if d.img, err = decode(bytes.NewReader(data)); err != nil {
		return nil, invalidImage(err)
	}
	if b := d.img.Bounds(); b.Dx() != in.cfg.Width || b.Dy() != in.cfg.Height {
		return nil, invalidImage(errors.New("the decoded size differs from the header's"))
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
	// No full-size copy unless an EXIF rotation needs one: the encoders read the decoded image
	// as it is (image/jpeg and image/png have fast paths for the types the decoders return).
	img := d.img
	if d.orientation > 1 && d.orientation <= 8 {
		img = orient(d.img, d.orientation)
	}
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

// orient applies an EXIF orientation (1..8) and returns the upright image; 1 returns img as is
// when it is an *image.RGBA at the origin, otherwise an RGBA copy. A rotation or flip reads img a
// row at a time (converted to RGBA in a one-row buffer), so it allocates the upright result only.
func orient(img image.Image, orientation int) *image.RGBA {
	if orientation <= 1 || orientation > 8 {
		if src, ok := img.(*image.RGBA); ok && src.Rect.Min == (image.Point{}) {
			return src
		}
		b := img.Bounds()
		dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		xdraw.Draw(dst, dst.Rect, img, b.Min, xdraw.Src)
		return dst
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if orientation >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	src, direct := img.(*image.RGBA)
	var line *image.RGBA
	if !direct {
		line = image.NewRGBA(image.Rect(0, 0, w, 1))
	}
	for y := 0; y < h; y++ {
		var row []byte
		if direct {
			row = src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
		} else {
			xdraw.Draw(line, line.Rect, img, image.Pt(b.Min.X, b.Min.Y+y), xdraw.Src)
			row = line.Pix
		}
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
