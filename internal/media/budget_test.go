package media

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"testing"
	"time"
)

// pngHeader16 is the start of a w x h 16-bit PNG of the given color type (enough for inspect).
func pngHeader16(w, h uint32, colorType byte) []byte {
	b := bytes.NewBuffer(pngHeader(w, h))
	out := b.Bytes()
	out[24], out[25] = 16, colorType
	// Fix the IHDR's CRC after the change.
	var fixed bytes.Buffer
	fixed.WriteString(pngSignature)
	writeChunk(&fixed, "IHDR", out[16:29])
	fixed.Write(out[33:])
	return fixed.Bytes()
}

// TestImageCost: the weight of an image in the memory budget is what its decode allocates (at
// the decoded form's bytes per pixel) plus the rest of the pipeline's allocations.
func TestImageCost(t *testing.T) {
	t.Parallel()
	const w, h = 1000, 500
	px := int64(w * h)
	var gray bytes.Buffer
	if err := png.Encode(&gray, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	extra := 2*px + 2*ThumbnailSize*ThumbnailSize*4
	for _, tt := range []struct {
		name string
		in   []byte
		want int64
	}{
		{"8-bit RGBA PNG", pngHeader(w, h), 4*px + extra},
		{"8-bit gray PNG", gray.Bytes(), px + extra},
		{"16-bit RGB PNG: decoded at 8 bits", pngHeader16(w, h, pngRGB), 4*px + 2*w*3*2 + extra},
		{"16-bit gray PNG: decoded at 8 bits", pngHeader16(w, h, pngGray), px + 2*w*2 + extra},
		{"JPEG 4:2:0, EXIF rotation: plus the upright copy", withSegment(encodeJPEG(t, quadrants(w, h)), exifSegment(6, false)), 3*px + 4*px + extra},
	} {
		in, err := newPipeline(1<<30).inspect(tt.in, true)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if in.cost != tt.want {
			t.Errorf("%s: cost %d, want %d", tt.name, in.cost, tt.want)
		}
	}
	if _, ok := png16Probe(pngHeader16(w, h, pngRGB)); !ok {
		t.Error("the 16-bit header is not taken by decodePNG16")
	}
}

// TestFastLane: while large images hold the whole budget, a small one is still decoded (it has a
// lane of its own); a large one waits, until its context ends.
func TestFastLane(t *testing.T) {
	t.Parallel()
	p := newPipelineBudget(1<<30, 64<<20)
	ctx := context.Background()
	if err := p.budget.Acquire(ctx, 64<<20); err != nil { // large images hold everything
		t.Fatal(err)
	}
	small := encodePNG(t, quadrants(4, 4))
	sctx, cancel := context.WithTimeout(ctx, time.Minute) // only a failure would wait this long
	defer cancel()
	d, release, err := p.decodeBudgeted(sctx, small, true)
	if err != nil {
		t.Fatalf("small image behind large ones: %v", err)
	}
	release()
	if w, h := d.size(); w != 4 || h != 4 {
		t.Errorf("size %dx%d", w, h)
	}
	large := encodePNG(t, quadrants(2000, 2000)) // 16 MB decoded: the main budget
	lctx, lcancel := context.WithCancel(ctx)
	lcancel()
	if _, _, err := p.decodeBudgeted(lctx, large, true); err == nil {
		t.Error("a large image did not wait for the budget")
	}
}

// TestHeavySlots: large images are processed at most heavySlots() at a time, although the memory
// budget would take more; small images keep their fast lane meanwhile, and a freed slot lets the
// next large image through.
func TestHeavySlots(t *testing.T) {
	t.Parallel()
	p := newPipelineBudget(1<<30, 1<<40) // memory is never the limit here
	ctx := context.Background()
	const large = fastLaneCost + 1
	var releases []func()
	for i := range heavySlots() {
		release, err := p.acquire(ctx, large)
		if err != nil {
			t.Fatalf("large image %d of %d: %v", i+1, heavySlots(), err)
		}
		releases = append(releases, release)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.acquire(done, large); err == nil {
		t.Fatal("one large image more than the slots did not wait")
	}
	sctx, scancel := context.WithTimeout(ctx, time.Minute) // only a failure would wait this long
	defer scancel()
	small, err := p.acquire(sctx, fastLaneCost)
	if err != nil {
		t.Fatalf("small image while the slots are taken: %v", err)
	}
	small()
	releases[0]()
	next, err := p.acquire(sctx, large)
	if err != nil {
		t.Fatalf("large image after a slot was freed: %v", err)
	}
	next()
	for _, r := range releases[1:] {
		r()
	}
}
