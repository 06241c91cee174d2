package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	xdraw "golang.org/x/image/draw"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
)

// NewBlobStore returns the configured blob store: S3 when o.S3.Bucket is set, otherwise the
// folder o.DiskDir.
func NewBlobStore(o Options) (BlobStore, error) {
	if o.S3.Bucket != "" {
		return NewS3Store(o.S3)
	}
	return NewDiskStore(o.DiskDir)
}

// Avatar sizes, in pixels (square).
const (
	AvatarSize      = 512
	AvatarThumbSize = 128
)

const (
	avatarNamespace = "avatars"
	avatarPrefix    = httpapi.BasePath + "/avatars/"
	thumbVariant    = "thumb"
	// immutableCache is for URLs whose content never changes (a new avatar gets a new URL).
	immutableCache = "public, max-age=31536000, immutable"
)

var avatarIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Avatars stores profile pictures. An upload is checked and decoded (see pipeline), cropped to
// its centred square and written as two JPEGs: AvatarSize and AvatarThumbSize pixels a side.
// Both are public and immutable under an unguessable random id:
// /api/v1/avatars/{id} and /api/v1/avatars/{id}/thumbnail.
//
// It implements the avatar interface of the accounts package (SaveAvatar, DeleteAvatar) and is
// safe for concurrent use.
type Avatars struct {
	blobs    BlobStore
	pipe     *pipeline
	maxBytes int64
	gate     *uploadGate // shared with Files: an avatar counts as an upload
}

// NewAvatars returns the avatar store over blobs, with o's limits (AvatarMaxBytes,
// ImageMaxPixels, UploadsInFlight, UploadsPerMinute).
func NewAvatars(blobs BlobStore, o Options) *Avatars {
	return &Avatars{blobs: blobs, pipe: newPipelineOptions(o), maxBytes: o.AvatarMaxBytes, gate: newUploadGate(o)}
}

// BeginAvatarUpload admits an avatar upload of userID before its body is read, against the same
// per-user limits as file uploads (UploadsInFlight, UploadsPerMinute): 429 too_many_uploads or
// rate_limited. release must be called once the upload has ended.
func (a *Avatars) BeginAvatarUpload(ctx context.Context, userID string) (release func(), err error) {
	return a.gate.begin(ctx, userID)
}

// SaveAvatar reads an image (at most AvatarMaxBytes; reading stops there), stores its two sizes
// and returns the URL of the large one. Errors: 413 too_large, 415 unsupported_media_type,
// 422 invalid_image (truncated or corrupt), 422 image_too_large (more than ImageMaxPixels).
func (a *Avatars) SaveAvatar(ctx context.Context, userID string, r io.Reader) (string, error) {
	data, err := readImageUpload(r, a.maxBytes)
	if err != nil {
		return "", err
	}
	big, small, err := a.render(ctx, data)
	if err != nil {
		return "", err
	}
	id := newBlobID()
	key, thumbKey := blobKey(avatarNamespace, id, ""), blobKey(avatarNamespace, id, thumbVariant)
	if _, err := a.blobs.Put(ctx, key, bytes.NewReader(big)); err != nil {
		return "", fmt.Errorf("media: save avatar of %s: %w", userID, err)
	}
	if _, err := a.blobs.Put(ctx, thumbKey, bytes.NewReader(small)); err != nil {
		_ = a.blobs.Delete(context.WithoutCancel(ctx), key)
		return "", fmt.Errorf("media: save avatar of %s: %w", userID, err)
	}
	return avatarPrefix + id, nil
}

// readImageUpload reads an image upload of at most max bytes. The type is checked on the first
// bytes, so a large file of the wrong type is refused (415) without reading it all.
func readImageUpload(r io.Reader, max int64) ([]byte, error) {
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("media: read upload: %w", err)
	}
	if !isImageType(detectType(head[:n])) {
		return nil, errNotImage
	}
	return readLimited(io.MultiReader(bytes.NewReader(head[:n]), r), max)
}

func isImageType(t string) bool {
	return t == mimeJPEG || t == mimePNG || t == mimeGIF || t == mimeWebP
}

// render decodes data and encodes both avatar sizes.
func (a *Avatars) render(ctx context.Context, data []byte) (big, small []byte, err error) {
	parts, err := a.pipe.process(ctx, opAvatar, data)
	if err != nil {
		return nil, nil, err
	}
	return parts[0].data, parts[1].data, nil
}

// renderAvatar encodes both avatar sizes of a decoded image.
func renderAvatar(d *decoded) (big, small []byte, err error) {
	large := squareImage(d, AvatarSize)
	thumb := image.NewRGBA(image.Rect(0, 0, AvatarThumbSize, AvatarThumbSize))
	xdraw.CatmullRom.Scale(thumb, thumb.Rect, large, large.Rect, xdraw.Src, nil)
	var b1, b2 bytes.Buffer
	if err := jpeg.Encode(&b1, large, &jpeg.Options{Quality: jpegQualityThumb}); err != nil {
		return nil, nil, fmt.Errorf("media: encode avatar: %w", err)
	}
	if err := jpeg.Encode(&b2, thumb, &jpeg.Options{Quality: jpegQualityThumb}); err != nil {
		return nil, nil, fmt.Errorf("media: encode avatar: %w", err)
	}
	return b1.Bytes(), b2.Bytes(), nil
}

// DeleteAvatar removes both sizes of an avatar given its URL (as SaveAvatar returned it, or
// absolute). A URL that is not one of ours, or an avatar already gone, is not an error.
func (a *Avatars) DeleteAvatar(ctx context.Context, avatarURL string) error {
	id, ok := avatarID(avatarURL)
	if !ok {
		return nil
	}
	for _, key := range []string{blobKey(avatarNamespace, id, ""), blobKey(avatarNamespace, id, thumbVariant)} {
		if err := a.blobs.Delete(ctx, key); err != nil {
			return fmt.Errorf("media: delete avatar: %w", err)
		}
	}
	return nil
}

// avatarID extracts the id from an avatar URL.
func avatarID(avatarURL string) (string, bool) {
	u, err := url.Parse(avatarURL)
	if err != nil {
		return "", false
	}
	id, ok := strings.CutPrefix(u.Path, avatarPrefix)
	if !ok || !avatarIDPattern.MatchString(id) {
		return "", false
	}
	return id, true
}

type avatarInput struct {
	ID string `path:"id" doc:"The avatar's id (32 hex digits), from avatar_url"`
}

type blobOutput struct {
	Body func(huma.Context)
}

// Register mounts GET /avatars/{id} and GET /avatars/{id}/thumbnail (public: avatars are shown
// to anyone who can see the profile, and the id is unguessable).
func (a *Avatars) Register(api *httpapi.API) {
	for _, v := range []struct{ id, method, path, summary, variant string }{
		{"get-avatar", http.MethodGet, "/avatars/{id}", fmt.Sprintf("An avatar, %d x %d JPEG", AvatarSize, AvatarSize), ""},
		{"head-avatar", http.MethodHead, "/avatars/{id}", "An avatar's headers only", ""},
		{"get-avatar-thumbnail", http.MethodGet, "/avatars/{id}/thumbnail", fmt.Sprintf("An avatar's thumbnail, %d x %d JPEG", AvatarThumbSize, AvatarThumbSize), thumbVariant},
		{"head-avatar-thumbnail", http.MethodHead, "/avatars/{id}/thumbnail", "An avatar thumbnail's headers only", thumbVariant},
	} {
		huma.Register(api.Public, huma.Operation{
			OperationID: v.id, Method: v.method, Path: v.path, Tags: []string{"Media"}, Summary: v.summary,
			Description: "Immutable: a new avatar gets a new URL, so the answer may be cached for a year. " +
				"Supports Range and If-None-Match.",
			Responses: binaryResponses("image/jpeg"),
			// serveBlob: Range (416) and If-Match/If-Unmodified-Since (412); the blob store down (503).
			Errors: []int{http.StatusNotFound, http.StatusPreconditionFailed, http.StatusRequestedRangeNotSatisfiable, http.StatusServiceUnavailable},
		}, func(ctx context.Context, in *avatarInput) (*blobOutput, error) {
			if !avatarIDPattern.MatchString(in.ID) {
				return nil, apperr.NotFound("avatar")
			}
			key := blobKey(avatarNamespace, in.ID, v.variant)
			info, err := a.blobs.Stat(ctx, key)
			if errors.Is(err, ErrBlobNotFound) {
				return nil, apperr.NotFound("avatar")
			}
			if err != nil {
				return nil, fmt.Errorf("media: avatar: %w", err)
			}
			return &blobOutput{Body: func(hctx huma.Context) {
				r, w := humachi.Unwrap(hctx)
				serveBlob(w, r, a.blobs, download{key: key, size: info.Size, modTime: info.ModTime,
					contentType: mimeJPEG, etag: `"` + in.ID + v.variant + `"`, cacheControl: immutableCache})
			}}, nil
		})
	}
}

// binaryResponses documents a streamed file answer of the given types.
func binaryResponses(types ...string) map[string]*huma.Response {
	content := map[string]*huma.MediaType{}
	for _, t := range types {
		content[t] = &huma.MediaType{Schema: &huma.Schema{Type: "string", Format: "binary"}}
	}
	return map[string]*huma.Response{
		"200": {Description: "The file", Content: content, Headers: map[string]*huma.Param{
			"ETag":          {Schema: &huma.Schema{Type: "string"}},
			"Cache-Control": {Schema: &huma.Schema{Type: "string"}},
		}},
		"206": {Description: "The requested byte range", Content: content},
		"304": {Description: "Not modified (If-None-Match)"},
	}
}

// squareImage crops the largest centred square of the upright image and scales it to side x side
// (enlarging small images), flattened on white.
func squareImage(d *decoded, side int) *image.RGBA {
	b := d.img.Bounds()
	s := min(b.Dx(), b.Dy())
	// A centred square stays centred under every EXIF rotation and flip, so it is cut before
	// orienting.
	x0, y0 := b.Min.X+(b.Dx()-s)/2, b.Min.Y+(b.Dy()-s)/2
	small := scale(d.img, d.orientation, image.Rect(x0, y0, x0+s, y0+s), side, side)
	return flatten(small)
}

// flatten composes img over white (JPEG has no transparency).
func flatten(img *image.RGBA) *image.RGBA {
	if img.Opaque() {
		return img
	}
	out := image.NewRGBA(img.Rect)
	xdraw.Draw(out, out.Rect, image.White, image.Point{}, xdraw.Src)
	xdraw.Draw(out, out.Rect, img, img.Rect.Min, xdraw.Over)
	return out
}
