package media

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"testing"
)

// photo12MP is a 4000 x 3000 JPEG (quality 92) that compresses like a photo, about 4 MB: smooth
// gradients, texture and some sensor-like noise (a plain gradient would be unrealistically cheap,
// pure noise unrealistically expensive).
func photo12MP(b *testing.B) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4000, 3000))
	seed := uint32(7)
	for y := 0; y < 3000; y++ {
		for x := 0; x < 4000; x++ {
			seed = seed*1664525 + 1013904223
			tex := uint8(24 * (1 + math.Sin(float64(x)/7+math.Sin(float64(y)/23)*3)))
			n := uint8(seed >> 29)
			i := img.PixOffset(x, y)
			img.Pix[i] = uint8(x/20) + tex + n
			img.Pix[i+1] = uint8(y/14) + tex/2 + n
			img.Pix[i+2] = uint8((x+y)/32) + n
			img.Pix[i+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}); err != nil {
		b.Fatal(err)
	}
	b.Logf("test photo: 4000 x 3000, %d bytes", buf.Len())
	return buf.Bytes()
}

// BenchmarkThumbnail12MP measures what an image upload costs in CPU: decoding a 12-megapixel
// JPEG and scaling it to a 320 px thumbnail ("thumbnail" only), or also re-encoding the full image
// ("full pipeline", what POST /files does).
func BenchmarkThumbnail12MP(b *testing.B) {
	data := photo12MP(b)
	p := newPipeline(40_000_000)
	b.Run("thumbnail", func(b *testing.B) {
		for b.Loop() {
			d, err := p.decode(data, true)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := thumbnail(d, ThumbnailSize); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "thumbnails/s")
	})
	b.Run("full pipeline", func(b *testing.B) {
		for b.Loop() {
			d, err := p.decode(data, true)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := reencode(d); err != nil {
				b.Fatal(err)
			}
			if _, err := thumbnail(d, ThumbnailSize); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	})
	b.Run("decode only", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.decode(data, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}
