package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"math"
	"strings"
	"sync"
	"time"
)

// The built-in set: a few stickers (PNG with transparency) and animated GIFs drawn by this code,
// so GIF and sticker pickers work with no Giphy key. They are rendered once, on first use, and
// served from memory at /api/v1/media/builtin/{name}.

const builtinPrefix = "/api/v1/media/builtin/"

// builtinTime is the Last-Modified of the built-in images: they change only with the code.
var builtinTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func bytesReadSeeker(b []byte) io.ReadSeeker { return bytes.NewReader(b) }

// shape reports how much of the unit square's point (x, y) it covers: inside or not.
type shape func(x, y float64) bool

// layer is a shape painted in a colour; later layers cover earlier ones.
type layer struct {
	s shape
	c color.NRGBA
}

func circle(cx, cy, r float64) shape {
	return func(x, y float64) bool { return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r }
}

func minus(a, b shape) shape { return func(x, y float64) bool { return a(x, y) && !b(x, y) } }

// segment is a thick line from (x0, y0) to (x1, y1) with round ends.
func segment(x0, y0, x1, y1, w float64) shape {
	return func(x, y float64) bool {
		dx, dy := x1-x0, y1-y0
		t := ((x-x0)*dx + (y-y0)*dy) / (dx*dx + dy*dy)
		t = math.Max(0, math.Min(1, t))
		px, py := x0+t*dx-x, y0+t*dy-y
		return px*px+py*py <= w*w/4
	}
}

// arc is a thick part of the circle (cx, cy, r) between angles a0 and a1 (radians, y down).
func arc(cx, cy, r, w, a0, a1 float64) shape {
	return func(x, y float64) bool {
		d := math.Hypot(x-cx, y-cy)
		if math.Abs(d-r) > w/2 {
			return false
		}
		a := math.Atan2(y-cy, x-cx)
		return a >= a0 && a <= a1
	}
}

// heart is the curve (x^2+y^2-1)^3 = x^2 y^3, scaled by s around (cx, cy).
func heart(cx, cy, s float64) shape {
	return func(x, y float64) bool {
		u, v := (x-cx)/s*1.25, (cy-y)/s*1.25+0.1
		a := u*u + v*v - 1
		return a*a*a-u*u*v*v*v <= 0
	}
}

// polygon is filled with the even-odd rule.
func polygon(pts [][2]float64) shape {
	return func(x, y float64) bool {
		in := false
		for i, j := 0, len(pts)-1; i < len(pts); j, i = i, i+1 {
			xi, yi, xj, yj := pts[i][0], pts[i][1], pts[j][0], pts[j][1]
			if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
				in = !in
			}
		}
		return in
	}
}

// star is a five-pointed star of radius r, turned by rot radians.
func star(cx, cy, r, rot float64) shape {
	pts := make([][2]float64, 10)
	for i := range pts {
		rr := r
		if i%2 == 1 {
			rr = r * 0.42
		}
		a := rot - math.Pi/2 + float64(i)*math.Pi/5
		pts[i] = [2]float64{cx + rr*math.Cos(a), cy + rr*math.Sin(a)}
	}
	return polygon(pts)
}

// render rasterizes layers on a size x size canvas with 4 x 4 samples per pixel (anti-aliased).
// A pixel whose four corner samples fall in the same layer is taken as uniform, so only the
// pixels on an edge pay for all sixteen.
func render(size int, layers []layer) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	const ss = 4
	top := func(x, y float64) int { // the index of the topmost layer covering (x, y), -1 for none
		for i := len(layers) - 1; i >= 0; i-- {
			if layers[i].s(x, y) {
				return i
			}
		}
		return -1
	}
	at := func(px, py, sx, sy int) int {
		return top((float64(px)+(float64(sx)+0.5)/ss)/float64(size), (float64(py)+(float64(sy)+0.5)/ss)/float64(size))
	}
	for py := range size {
		for px := range size {
			c0 := at(px, py, 0, 0)
			if c0 == at(px, py, ss-1, 0) && c0 == at(px, py, 0, ss-1) && c0 == at(px, py, ss-1, ss-1) {
				if c0 >= 0 {
					img.SetNRGBA(px, py, layers[c0].c)
				}
				continue
			}
			var r, g, b, a float64
			for sy := range ss {
				for sx := range ss {
					if i := at(px, py, sx, sy); i >= 0 {
						c := layers[i].c
						r, g, b, a = r+float64(c.R), g+float64(c.G), b+float64(c.B), a+1
					}
				}
			}
			if a > 0 {
				img.SetNRGBA(px, py, color.NRGBA{uint8(r / a), uint8(g / a), uint8(b / a), uint8(a * 255 / ss / ss)})
			}
		}
	}
	return img
}

var (
	cRed    = color.NRGBA{230, 57, 70, 255}
	cYellow = color.NRGBA{255, 209, 102, 255}
	cOrange = color.NRGBA{247, 127, 0, 255}
	cGreen  = color.NRGBA{42, 157, 143, 255}
	cBlue   = color.NRGBA{120, 180, 230, 255}
	cInk    = color.NRGBA{40, 40, 50, 255}
	cWhite  = color.NRGBA{255, 255, 255, 255}
)

func face(skin color.NRGBA, mouth shape, eyesClosed bool) []layer {
	eyes := []layer{{circle(0.36, 0.4, 0.06), cInk}, {circle(0.64, 0.4, 0.06), cInk}}
	if eyesClosed {
		eyes = []layer{{segment(0.3, 0.4, 0.42, 0.4, 0.04), cInk}, {segment(0.58, 0.4, 0.7, 0.4, 0.04), cInk}}
	}
	return append([]layer{{circle(0.5, 0.5, 0.45), skin}, {mouth, cInk}}, eyes...)
}

func smileMouth() shape { return arc(0.5, 0.5, 0.26, 0.06, 0.35, math.Pi-0.35) }

// builtinItem is one sticker or GIF: its frames are drawn at any size by draw(size, frame).
type builtinItem struct {
	kind, name, title string
	frames            int // 1 = a still (PNG sticker)
	draw              func(frame, frames int) []layer
}

var builtinItems = []builtinItem{
	{SearchStickers, "heart", "red heart love", 1, func(int, int) []layer { return []layer{{heart(0.5, 0.5, 0.4), cRed}} }},
	{SearchStickers, "star", "yellow star favourite", 1, func(int, int) []layer { return []layer{{star(0.5, 0.53, 0.46, 0), cYellow}} }},
	{SearchStickers, "smile", "smile happy face", 1, func(int, int) []layer { return face(cYellow, smileMouth(), false) }},
	{SearchStickers, "sad", "sad face", 1, func(int, int) []layer {
		return face(cBlue, arc(0.5, 0.85, 0.24, 0.06, -math.Pi+0.55, -0.55), false)
	}},
	{SearchStickers, "check", "check yes ok done", 1, func(int, int) []layer {
		return []layer{{circle(0.5, 0.5, 0.45), cGreen}, {segment(0.3, 0.52, 0.44, 0.66, 0.09), cWhite}, {segment(0.44, 0.66, 0.72, 0.36, 0.09), cWhite}}
	}},
	{SearchStickers, "cross", "cross no cancel", 1, func(int, int) []layer {
		return []layer{{circle(0.5, 0.5, 0.45), cRed}, {segment(0.33, 0.33, 0.67, 0.67, 0.09), cWhite}, {segment(0.67, 0.33, 0.33, 0.67, 0.09), cWhite}}
	}},
	{SearchStickers, "sun", "sun sunny weather", 1, func(int, int) []layer {
		ls := []layer{{circle(0.5, 0.5, 0.24), cOrange}}
		for i := range 8 {
			a := float64(i) * math.Pi / 4
			ls = append(ls, layer{segment(0.5+0.32*math.Cos(a), 0.5+0.32*math.Sin(a), 0.5+0.45*math.Cos(a), 0.5+0.45*math.Sin(a), 0.06), cOrange})
		}
		return ls
	}},
	{SearchStickers, "moon", "moon night sleep", 1, func(int, int) []layer {
		return []layer{{minus(circle(0.5, 0.5, 0.42), circle(0.68, 0.38, 0.36)), cYellow}}
	}},
	{SearchGIFs, "heartbeat", "heartbeat love heart", 10, func(f, n int) []layer {
		s := 0.34 + 0.08*math.Abs(math.Sin(math.Pi*float64(f)/float64(n)))
		return []layer{{heart(0.5, 0.5, s), cRed}}
	}},
	{SearchGIFs, "spinning-star", "spinning star party", 12, func(f, n int) []layer {
		return []layer{{star(0.5, 0.52, 0.44, 2*math.Pi/5*float64(f)/float64(n)), cYellow}}
	}},
	{SearchGIFs, "loading", "loading wait dots typing", 9, func(f, n int) []layer {
		var ls []layer
		for i := range 3 {
			lift := math.Max(0, math.Sin(2*math.Pi*float64(f)/float64(n)-float64(i)*0.9)) * 0.12
			ls = append(ls, layer{circle(0.25+0.25*float64(i), 0.55-lift, 0.08), cInk})
		}
		return ls
	}},
	{SearchGIFs, "wink", "wink blink smile happy", 10, func(f, _ int) []layer {
		return face(cYellow, smileMouth(), f == 7 || f == 8)
	}},
}

// Sizes of the built-in renditions, in pixels (square).
const (
	builtinStickerSize = 256
	builtinGIFSize     = 160
	builtinPreviewDiv  = 2 // previews are half the size
)

// builtinAsset is a rendered file.
type builtinAsset struct {
	data        []byte
	contentType string
	etag        string
}

// Builtin is the built-in Provider. It is safe for concurrent use: rendering happens once, under
// a sync.Once, and the result is read-only.
type Builtin struct {
	once   sync.Once
	assets map[string]builtinAsset // by file name, e.g. "heart.png", "heart-preview.png"
	items  map[string][]SearchItem // by kind, in builtinItems order
}

func (b *Builtin) load() {
	b.once.Do(func() {
		b.assets = map[string]builtinAsset{}
		b.items = map[string][]SearchItem{}
		// Render in parallel: items are independent.
		type result struct {
			item   SearchItem
			assets map[string]builtinAsset
		}
		results := make([]result, len(builtinItems))
		var wg sync.WaitGroup
		for i, it := range builtinItems {
			wg.Add(1)
			go func() {
				defer wg.Done()
				size, ext := builtinStickerSize, "png"
				if it.frames > 1 {
					size, ext = builtinGIFSize, "gif"
				}
				res := result{item: SearchItem{ID: "builtin-" + it.name, Title: it.title}, assets: map[string]builtinAsset{}}
				for _, v := range []struct {
					suffix string
					size   int
					dst    *Rendition
				}{{"", size, &res.item.Full}, {"-preview", size / builtinPreviewDiv, &res.item.Preview}} {
					name := it.name + v.suffix + "." + ext
					data := encodeBuiltin(it, v.size)
					sum := sha256.Sum256(data)
					res.assets[name] = builtinAsset{data: data, contentType: "image/" + ext, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
					*v.dst = Rendition{URL: builtinPrefix + name, Width: v.size, Height: v.size}
				}
				results[i] = res
			}()
		}
		wg.Wait()
		for i, it := range builtinItems {
			for name, a := range results[i].assets {
				b.assets[name] = a
			}
			b.items[it.kind] = append(b.items[it.kind], results[i].item)
		}
	})
}

// encodeBuiltin draws an item at size: a PNG for stills, an endlessly looping GIF otherwise
// (on white: GIF transparency is all or nothing).
func encodeBuiltin(it builtinItem, size int) []byte {
	var buf bytes.Buffer
	if it.frames == 1 {
		if err := png.Encode(&buf, render(size, it.draw(0, 1))); err != nil {
			panic(fmt.Sprintf("media: built-in %s: %v", it.name, err)) // encoding to memory cannot fail
		}
		return buf.Bytes()
	}
	pal := color.Palette{cWhite, cInk, cRed, cYellow, cOrange, cGreen, cBlue}
	// Anti-aliased edges need the shades between white and each colour.
	for _, c := range []color.NRGBA{cInk, cRed, cYellow, cOrange, cGreen, cBlue} {
		for _, t := range []float64{0.25, 0.5, 0.75} {
			pal = append(pal, color.NRGBA{mix(c.R, t), mix(c.G, t), mix(c.B, t), 255})
		}
	}
	g := &gif.GIF{LoopCount: 0}
	for f := range it.frames {
		src := render(size, it.draw(f, it.frames))
		dst := image.NewPaletted(src.Rect, pal)
		for i := 0; i < len(src.Pix); i += 4 {
			a := float64(src.Pix[i+3]) / 255
			over := color.NRGBA{blend(src.Pix[i], a), blend(src.Pix[i+1], a), blend(src.Pix[i+2], a), 255}
			dst.Pix[i/4] = uint8(pal.Index(over))
		}
		g.Image = append(g.Image, dst)
		g.Delay = append(g.Delay, 8)
	}
	if err := gif.EncodeAll(&buf, g); err != nil {
		panic(fmt.Sprintf("media: built-in %s: %v", it.name, err))
	}
	return buf.Bytes()
}

func mix(v uint8, t float64) uint8 { return uint8(float64(v)*t + 255*(1-t)) }

func blend(v uint8, a float64) uint8 { return uint8(float64(v)*a + 255*(1-a)) }

// Search matches every word of q against the titles; no q lists everything.
func (b *Builtin) Search(_ context.Context, q SearchQuery) (SearchPage, error) {
	b.load()
	var matched []SearchItem
	for _, it := range b.items[q.Kind] {
		ok := true
		for _, w := range strings.Fields(q.Q) {
			ok = ok && strings.Contains(it.Title, w)
		}
		if ok {
			matched = append(matched, it)
		}
	}
	page := SearchPage{Items: []SearchItem{}}
	if q.Offset < len(matched) {
		end := min(len(matched), q.Offset+q.Limit)
		page.Items = matched[q.Offset:end]
		if end < len(matched) {
			page.Next = end
		}
	}
	return page, nil
}

// asset returns a rendered file by name.
func (b *Builtin) asset(name string) (builtinAsset, bool) {
	b.load()
	a, ok := b.assets[name]
	return a, ok
}
