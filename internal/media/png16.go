package media

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"io"
)

// A 16-bit PNG decoded by image/png takes 8 bytes per pixel (NRGBA64/RGBA64) although nothing
// the server writes keeps more than 8 bits per channel: a 6300 x 6300 photo took 318 MB before
// the pipeline converted it to 8 bits (another 159 MB). decodePNG16 reads non-interlaced 16-bit
// grayscale, gray+alpha, truecolor and truecolor+alpha PNGs itself: it inflates the image data as
// a stream, un-filters one row at a time against the previous row (two rows of 16-bit samples in
// memory) and writes each row straight into an 8-bit image (the high byte of each sample, what
// converting a 16-bit color to 8 bits does). Every other PNG (8 bits or less, palettes,
// interlaced, a tRNS color key) goes to image/png.

const pngSignature = "\x89PNG\r\n\x1a\n"

// PNG color types.
const (
	pngGray      = 0
	pngRGB       = 2
	pngGrayAlpha = 4
	pngRGBA      = 6
)

// png16Header is the part of a PNG's IHDR that decides whether decodePNG16 takes it.
type png16Header struct {
	width, height int
	colorType     byte
}

// png16Probe reads the IHDR of data and reports whether decodePNG16 decodes it: 16 bits per
// sample, a color type without palette, no interlacing, and no tRNS chunk before the image data.
func png16Probe(data []byte) (png16Header, bool) {
	if len(data) < 33 || string(data[:8]) != pngSignature || string(data[12:16]) != "IHDR" ||
		binary.BigEndian.Uint32(data[8:12]) != 13 {
		return png16Header{}, false
	}
	ihdr := data[16:29]
	h := png16Header{
		width:     int(binary.BigEndian.Uint32(ihdr[0:4])),
		height:    int(binary.BigEndian.Uint32(ihdr[4:8])),
		colorType: ihdr[9],
	}
	depth, compression, filter, interlace := ihdr[8], ihdr[10], ihdr[11], ihdr[12]
	if depth != 16 || compression != 0 || filter != 0 || interlace != 0 || h.width <= 0 || h.height <= 0 ||
		h.width > 1<<24 || h.height > 1<<24 {
		return png16Header{}, false
	}
	switch h.colorType {
	case pngGray, pngRGB, pngGrayAlpha, pngRGBA:
	default:
		return png16Header{}, false
	}
	// A tRNS color key makes one color transparent: rare in 16-bit files, left to image/png.
	for off := 8; off+8 <= len(data); {
		n := int64(binary.BigEndian.Uint32(data[off:]))
		typ := string(data[off+4 : off+8])
		if typ == "IDAT" || typ == "IEND" {
			break
		}
		if typ == "tRNS" {
			return png16Header{}, false
		}
		next := int64(off) + 12 + n
		if next > int64(len(data)) {
			break
		}
		off = int(next)
	}
	return h, true
}

// png16Channels is the number of 16-bit samples per pixel of a color type.
func png16Channels(colorType byte) int {
	switch colorType {
	case pngGray:
		return 1
	case pngGrayAlpha:
		return 2
	case pngRGB:
		return 3
	default:
		return 4
	}
}

// png16DecodedBytes is what decodePNG16 allocates for the image: 1 byte per pixel for gray, 4
// otherwise (plus two rows).
func png16DecodedBytes(h png16Header) int64 {
	bpp := int64(4)
	if h.colorType == pngGray {
		bpp = 1
	}
	return int64(h.width)*int64(h.height)*bpp + 2*int64(h.width)*int64(png16Channels(h.colorType))*2
}

// decodePNG16 decodes a PNG that png16Probe accepted to an 8-bit image: *image.Gray for
// grayscale, *image.RGBA for truecolor (opaque), *image.NRGBA with alpha. Chunk CRCs are checked.
func decodePNG16(data []byte) (image.Image, error) {
	h, ok := png16Probe(data)
	if !ok {
		return nil, errors.New("png16: not a 16-bit PNG this decoder reads")
	}
	ch := png16Channels(h.colorType)
	bpp := 2 * ch             // bytes per pixel in the file
	rowLen := h.width*bpp + 1 // with the filter byte
	idat := &idatReader{data: data, off: 8}
	zr, err := zlib.NewReader(bufio.NewReaderSize(idat, 32<<10))
	if err != nil {
		return nil, fmt.Errorf("png16: %w", err)
	}
	defer zr.Close()
	rect := image.Rect(0, 0, h.width, h.height)
	var (
		gray  *image.Gray
		rgba  *image.RGBA
		nrgba *image.NRGBA
	)
	switch h.colorType {
	case pngGray:
		gray = image.NewGray(rect)
	case pngRGB:
		rgba = image.NewRGBA(rect)
	default:
		nrgba = image.NewNRGBA(rect)
	}
	cur, prev := make([]byte, rowLen), make([]byte, rowLen)
	for y := 0; y < h.height; y++ {
		if _, err := io.ReadFull(zr, cur); err != nil {
			return nil, fmt.Errorf("png16: row %d: %w", y, errUnexpected(err))
		}
		if err := unfilter(cur[0], cur[1:], prev[1:], bpp); err != nil {
			return nil, err
		}
		row := cur[1:]
		switch h.colorType {
		case pngGray:
			dst := gray.Pix[y*gray.Stride : y*gray.Stride+h.width]
			for x := range dst {
				dst[x] = row[2*x]
			}
		case pngRGB:
			dst := rgba.Pix[y*rgba.Stride : y*rgba.Stride+4*h.width]
			for x := 0; x < h.width; x++ {
				s, d := row[6*x:6*x+6], dst[4*x:4*x+4]
				d[0], d[1], d[2], d[3] = s[0], s[2], s[4], 0xff
			}
		case pngGrayAlpha:
			dst := nrgba.Pix[y*nrgba.Stride : y*nrgba.Stride+4*h.width]
			for x := 0; x < h.width; x++ {
				s, d := row[4*x:4*x+4], dst[4*x:4*x+4]
				d[0], d[1], d[2], d[3] = s[0], s[0], s[0], s[2]
			}
		case pngRGBA:
			dst := nrgba.Pix[y*nrgba.Stride : y*nrgba.Stride+4*h.width]
			for x := 0; x < h.width; x++ {
				s, d := row[8*x:8*x+8], dst[4*x:4*x+4]
				d[0], d[1], d[2], d[3] = s[0], s[2], s[4], s[6]
			}
		}
		cur, prev = prev, cur
	}
	if idat.err != nil {
		return nil, idat.err
	}
	switch {
	case gray != nil:
		return gray, nil
	case rgba != nil:
		return rgba, nil
	default:
		return nrgba, nil
	}
}

func errUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// unfilter reverses a PNG row filter in place (cur and prev without the filter byte; prev is all
// zeros for the first row).
func unfilter(filter byte, cur, prev []byte, bpp int) error {
	switch filter {
	case 0: // none
	case 1: // sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // up
		for i := range cur {
			cur[i] += prev[i]
		}
	case 3: // average
		for i := 0; i < bpp && i < len(cur); i++ {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		for i := 0; i < bpp && i < len(cur); i++ {
			cur[i] += prev[i] // paeth(0, b, 0) = b
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += paeth(cur[i-bpp], prev[i], prev[i-bpp])
		}
	default:
		return fmt.Errorf("png16: bad filter type %d", filter)
	}
	return nil
}

// paeth is the PNG Paeth predictor.
func paeth(a, b, c uint8) uint8 {
	p := int(a) + int(b) - int(c)
	pa, pb, pc := absInt(p-int(a)), absInt(p-int(b)), absInt(p-int(c))
	switch {
	case pa <= pb && pa <= pc:
		return a
	case pb <= pc:
		return b
	default:
		return c
	}
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// idatReader yields the concatenated data of the consecutive IDAT chunks of a PNG in memory,
// checking each chunk's CRC. It reports io.EOF after the last IDAT chunk.
type idatReader struct {
	data    []byte
	off     int    // next chunk header
	chunk   []byte // rest of the current IDAT chunk
	started bool
	done    bool
	err     error
}

func (r *idatReader) Read(p []byte) (int, error) {
	for len(r.chunk) == 0 {
		if r.done {
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			r.done = true
			if !errors.Is(err, io.EOF) {
				r.err = err
			}
			return 0, err
		}
	}
	n := copy(p, r.chunk)
	r.chunk = r.chunk[n:]
	return n, nil
}

// next moves to the next IDAT chunk, skipping the chunks before the first one.
func (r *idatReader) next() error {
	for {
		if r.off+8 > len(r.data) {
			return fmt.Errorf("png16: %w", io.ErrUnexpectedEOF)
		}
		n := int64(binary.BigEndian.Uint32(r.data[r.off:]))
		end := int64(r.off) + 12 + n
		if n > 0x7fffffff || end > int64(len(r.data)) {
			return fmt.Errorf("png16: %w", io.ErrUnexpectedEOF)
		}
		typ := r.data[r.off+4 : r.off+8]
		body := r.data[r.off+8 : r.off+8+int(n)]
		if crc32.ChecksumIEEE(r.data[r.off+4:r.off+8+int(n)]) != binary.BigEndian.Uint32(r.data[end-4:end]) {
			return errors.New("png16: invalid checksum")
		}
		r.off = int(end)
		if bytes.Equal(typ, []byte("IDAT")) {
			r.started = true
			r.chunk = body
			if len(body) > 0 {
				return nil
			}
			continue
		}
		if r.started || bytes.Equal(typ, []byte("IEND")) {
			r.done = true
			return io.EOF
		}
	}
}
