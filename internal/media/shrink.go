package media

import (
	"image"
	"image/color"

	xdraw "golang.org/x/image/draw"
)

// shrink averages k x k blocks of the src rectangle of img (a box filter) into a new image of
// src.Dx()/k x src.Dy()/k pixels; the few rows and columns that do not fill a block are dropped.
// Scaling a photo to a thumbnail with Catmull-Rom alone costs time in proportion to the source's
// pixels times the kernel's support; shrinking first by an integer factor, with this cheap and
// alias-free filter, and leaving Catmull-Rom at most a 2-4x reduction is several times faster for
// the same result at thumbnail sizes.
func shrink(img image.Image, src image.Rectangle, k int) *image.RGBA {
	w, h := src.Dx()/k, src.Dy()/k
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if yc, ok := img.(*image.YCbCr); ok {
		shrinkYCbCr(yc, src, k, dst)
		return dst
	}
	// Other types than RGBA are converted k rows at a time into a strip (never a full-size copy).
	rgba, direct := img.(*image.RGBA)
	var strip *image.RGBA
	if !direct {
		strip = image.NewRGBA(image.Rect(0, 0, w*k, k))
	}
	n := uint32(k * k)
	for y := range h {
		x0, y0 := src.Min.X, src.Min.Y+y*k
		if !direct {
			xdraw.Draw(strip, strip.Rect, img, image.Pt(src.Min.X, y0), xdraw.Src)
			rgba, x0, y0 = strip, 0, 0
		}
		for x := range w {
			var r, g, b, a uint32
			for yy := 0; yy < k; yy++ {
				row := rgba.Pix[rgba.PixOffset(x0+x*k, y0+yy):]
				for xx := 0; xx < k*4; xx += 4 {
					r, g, b, a = r+uint32(row[xx]), g+uint32(row[xx+1]), b+uint32(row[xx+2]), a+uint32(row[xx+3])
				}
			}
			i := dst.PixOffset(x, y)
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = uint8(r/n), uint8(g/n), uint8(b/n), uint8(a/n)
		}
	}
	return dst
}

// shrinkYCbCr averages in Y'CbCr (the conversion to RGB is affine, so averaging first is the
// same up to rounding) and converts each block once: a JPEG is never expanded to RGBA at full
// size. Luma is averaged over the block, chroma over the subsampled samples that cover it.
func shrinkYCbCr(img *image.YCbCr, src image.Rectangle, k int, dst *image.RGBA) {
	hs, vs := 1, 1
	switch img.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 2
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 4
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	}
	minX, minY := img.Rect.Min.X, img.Rect.Min.Y
	w, h := dst.Rect.Dx(), dst.Rect.Dy()
	n := uint32(k * k)
	for y := range h {
		y0 := src.Min.Y + y*k
		cy0, cy1 := y0/vs-minY/vs, (y0+k-1)/vs-minY/vs
		for x := range w {
			x0 := src.Min.X + x*k
			var ys uint32
			for yy := y0; yy < y0+k; yy++ {
				row := img.Y[(yy-minY)*img.YStride+(x0-minX):][:k]
				for _, v := range row {
					ys += uint32(v)
				}
			}
			cx0, cx1 := x0/hs-minX/hs, (x0+k-1)/hs-minX/hs
			var cbs, crs uint32
			for cy := cy0; cy <= cy1; cy++ {
				off := cy * img.CStride
				for _, v := range img.Cb[off+cx0 : off+cx1+1] {
					cbs += uint32(v)
				}
				for _, v := range img.Cr[off+cx0 : off+cx1+1] {
					crs += uint32(v)
				}
			}
			cn := uint32((cx1 - cx0 + 1) * (cy1 - cy0 + 1))
			r, g, b := color.YCbCrToRGB(uint8(ys/n), uint8(cbs/cn), uint8(crs/cn))
			i := dst.PixOffset(x, y)
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = r, g, b, 255
		}
	}
}
