package media

import (
	"bytes"
	"context"
	"errors"
	"image/color"
	"image/jpeg"
	"io"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/config"
)

func testAvatars(t *testing.T, st BlobStore, maxBytes int64) *Avatars {
	cfg := config.Default()
	cfg.AvatarMaxBytes = maxBytes
	return NewAvatars(st, FromConfig(cfg, nil))
}

func TestAvatarsSaveAndDelete(t *testing.T) {
	t.Parallel()
	for name, open := range blobStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			a := testAvatars(t, st, 5<<20)
			ctx := context.Background()
			// A 300x200 photo taken sideways (orientation 6) with GPS coordinates.
			photo := withSegment(encodeJPEG(t, quadrants(300, 200)), exifSegment(6, true))
			u, err := a.SaveAvatar(ctx, "user-1", bytes.NewReader(photo))
			if err != nil {
				t.Fatalf("SaveAvatar: %v", err)
			}
			id, ok := avatarID(u)
			if !ok || !strings.HasPrefix(u, "/api/v1/avatars/") {
				t.Fatalf("avatar URL %q", u)
			}
			for variant, side := range map[string]int{"": AvatarSize, thumbVariant: AvatarThumbSize} {
				data := getBytes(t, st, blobKey(avatarNamespace, id, variant), 0, -1)
				img, err := jpeg.Decode(bytes.NewReader(data))
				if err != nil {
					t.Fatalf("stored %q: %v", variant, err)
				}
				if b := img.Bounds(); b.Dx() != side || b.Dy() != side {
					t.Errorf("stored %q: %v, want %dx%d", variant, b, side, side)
				}
				for _, s := range []string{"Exif", "GPSSECRET"} {
					if bytes.Contains(data, []byte(s)) {
						t.Errorf("stored %q contains %q", variant, s)
					}
				}
				// Upright and centre-cropped: the photo displays 200 wide x 300 high with
				// blue/red on top and yellow/green below; the square keeps the middle rows, so
				// its left column is blue then yellow, its right column red then green.
				got := cornerColors(img)
				for i, want := range [4]color.Color{colBL, colTL, colBR, colTR} {
					if !near(got[i], want, 40) {
						t.Errorf("stored %q corner %d: got %v, want %v", variant, i, got[i], want)
					}
				}
			}
			second, err := a.SaveAvatar(ctx, "user-1", bytes.NewReader(photo))
			if err != nil || second == u {
				t.Fatalf("second SaveAvatar: %q, %v; want a new URL", second, err)
			}
			if err := a.DeleteAvatar(ctx, "http://example.com"+u); err != nil {
				t.Fatalf("DeleteAvatar: %v", err)
			}
			for _, variant := range []string{"", thumbVariant} {
				if _, err := st.Stat(ctx, blobKey(avatarNamespace, id, variant)); !errors.Is(err, ErrBlobNotFound) {
					t.Errorf("after delete, %q: %v, want not found", variant, err)
				}
			}
			if _, err := st.Stat(ctx, blobKey(avatarNamespace, mustAvatarID(t, second), "")); err != nil {
				t.Errorf("deleting one avatar removed another: %v", err)
			}
			for _, other := range []string{"", "https://gravatar.com/avatar/abc", u, "/api/v1/avatars/../../etc", "/api/v1/files/0123"} {
				if err := a.DeleteAvatar(ctx, other); err != nil {
					t.Errorf("DeleteAvatar(%q) = %v, want nil", other, err)
				}
			}
		})
	}
}

func mustAvatarID(t *testing.T, u string) string {
	id, ok := avatarID(u)
	if !ok {
		t.Fatalf("not an avatar URL: %q", u)
	}
	return id
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestAvatarsRefuse(t *testing.T) {
	t.Parallel()
	st, err := NewDiskStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := testAvatars(t, st, 64<<10)
	jpg := encodeJPEG(t, quadrants(64, 64))
	tests := []struct {
		name string
		in   []byte
		kind apperr.Kind
		code string
	}{
		{"text", []byte("hello, I am not a picture"), apperr.KindUnsupportedType, "unsupported_media_type"},
		{"empty", nil, apperr.KindUnsupportedType, "unsupported_media_type"},
		{"html", []byte("<html><script>alert(1)</script></html>"), apperr.KindUnsupportedType, "unsupported_media_type"},
		{"truncated", jpg[:len(jpg)/2], apperr.KindInvalid, "invalid_image"},
		{"100000x100000", pngHeader(100000, 100000), apperr.KindInvalid, "image_too_large"},
		{"too many bytes", append(encodePNG(t, quadrants(8, 8)), make([]byte, 65<<10)...), apperr.KindTooLarge, "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := a.SaveAvatar(context.Background(), "u", bytes.NewReader(tt.in))
			wantErrCode(t, err, tt.kind, tt.code)
		})
	}
	t.Run("a large file of the wrong type is refused early", func(t *testing.T) {
		t.Parallel()
		cr := &countingReader{r: io.MultiReader(strings.NewReader("%PDF-1.7\n"), bytes.NewReader(make([]byte, 10<<20)))}
		_, err := a.SaveAvatar(context.Background(), "u", cr)
		wantErrCode(t, err, apperr.KindUnsupportedType, "unsupported_media_type")
		if cr.n > sniffLen {
			t.Errorf("read %d bytes before refusing, want at most %d", cr.n, sniffLen)
		}
	})
	t.Run("reading stops at the limit", func(t *testing.T) {
		t.Parallel()
		cr := &countingReader{r: io.MultiReader(bytes.NewReader(encodePNG(t, quadrants(8, 8))), bytes.NewReader(make([]byte, 10<<20)))}
		_, err := a.SaveAvatar(context.Background(), "u", cr)
		wantErrCode(t, err, apperr.KindTooLarge, "too_large")
		if cr.n > 64<<10+1 {
			t.Errorf("read %d bytes, want at most the limit + 1", cr.n)
		}
	})
}
