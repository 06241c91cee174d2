package media_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/media"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// multipartBody builds a multipart/form-data body with one file field.
func multipartBody(t testing.TB, field, filename, contentType string, data []byte) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(map[string][]string)
	quote := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace
	h["Content-Disposition"] = []string{`form-data; name="` + quote(field) + `"; filename="` + quote(filename) + `"`}
	h["Content-Type"] = []string{contentType}
	w, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	mw.Close()
	return mw.FormDataContentType(), &buf
}

// send makes a request with optional bearer token and headers, and returns the response with its
// body read.
func send(t testing.TB, n *servertest.Node, method, path, token, contentType string, body io.Reader, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, n.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := n.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// problemCode returns the code of a problem document.
func problemCode(t testing.TB, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("error answer has Content-Type %q, want application/problem+json (body %s)", ct, body)
	}
	var p struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem %s: %v", body, err)
	}
	return p.Code
}

func photoWithGPS(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	// APP1 Exif, big-endian TIFF: IFD0 with a GPSInfo pointer to a GPS IFD holding a latitude.
	tiff := []byte("MM\x00*\x00\x00\x00\x08\x00\x01\x88\x25\x00\x04\x00\x00\x00\x01\x00\x00\x00\x1a\x00\x00\x00\x00" +
		"\x00\x01\x00\x01\x00\x02\x00\x00\x00\x02N\x00\x00\x00\x00\x00\x00\x00GPSSECRET")
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(app1[2:], uint16(len(seg)+2))
	out := append([]byte{0xFF, 0xD8}, app1...)
	out = append(out, seg...)
	return append(out, b.Bytes()[2:]...)
}

func TestAvatarsEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			testAvatarsEndToEnd(t, d, nil)
		})
	}
}

func testAvatarsEndToEnd(t *testing.T, d store.Dialect, mutate func(*config.Config)) {
	n := servertest.New(t, d, mutate)
	alice := n.Register(t, "alice")
	bob := n.Register(t, "bob")

	photo := photoWithGPS(t)
	if !bytes.Contains(photo, []byte("GPSSECRET")) {
		t.Fatal("test photo lacks its GPS marker")
	}
	ct, body := multipartBody(t, "file", "me.jpg", "image/jpeg", photo)
	resp, raw := send(t, n, http.MethodPut, "/api/v1/users/me/avatar", alice.AccessToken, ct, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT avatar: %d %s", resp.StatusCode, raw)
	}
	var prof struct {
		AvatarURL string `json:"avatar_url"`
	}
	json.Unmarshal(raw, &prof)
	if !strings.HasPrefix(prof.AvatarURL, "/api/v1/avatars/") {
		t.Fatalf("avatar_url %q", prof.AvatarURL)
	}

	// Anyone can fetch it, without a token.
	resp, img := send(t, n, http.MethodGet, prof.AvatarURL, "", "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET avatar: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for h, want := range map[string]string{
		"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width != 512 || cfg.Height != 512 {
		t.Errorf("avatar: %dx%d %v, want 512x512", cfg.Width, cfg.Height, err)
	}
	if bytes.Contains(img, []byte("GPSSECRET")) || bytes.Contains(img, []byte("Exif")) {
		t.Errorf("the served avatar still carries EXIF/GPS")
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := send(t, n, http.MethodGet, prof.AvatarURL, "", "", nil, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}
	if resp, part := send(t, n, http.MethodGet, prof.AvatarURL, "", "", nil, "Range", "bytes=2-9"); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, img[2:10]) {
		t.Errorf("Range: %d, %d bytes, want 206 and 8 bytes", resp.StatusCode, len(part))
	}
	if resp, raw := send(t, n, http.MethodGet, prof.AvatarURL, "", "", nil, "Range", "bytes=99999999-"); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable ||
		problemCode(t, resp, raw) != "range_not_satisfiable" {
		t.Errorf("Range beyond the end: %d %s, want a 416 problem", resp.StatusCode, raw)
	}
	resp, thumb := send(t, n, http.MethodGet, prof.AvatarURL+"/thumbnail", "", "", nil)
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb)); resp.StatusCode != http.StatusOK || err != nil || cfg.Width != 128 {
		t.Errorf("thumbnail: %d, %dx%d %v; want 128x128", resp.StatusCode, cfg.Width, cfg.Height, err)
	}

	// Bad uploads are refused with problem documents, and the avatar stays.
	for _, tc := range []struct {
		name   string
		data   []byte
		status int
		code   string
	}{
		{"text", []byte("not an image at all"), http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"truncated", photo[:len(photo)/2], http.StatusUnprocessableEntity, "invalid_image"},
		{"huge dimensions", hugePNGHeader(), http.StatusUnprocessableEntity, "image_too_large"},
	} {
		ct, body := multipartBody(t, "file", "x.jpg", "image/jpeg", tc.data)
		resp, raw := send(t, n, http.MethodPut, "/api/v1/users/me/avatar", bob.AccessToken, ct, body)
		if resp.StatusCode != tc.status || problemCode(t, resp, raw) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, raw, tc.status, tc.code)
		}
	}

	// Unknown and malformed ids are 404 problems.
	for _, p := range []string{"/api/v1/avatars/0123456789abcdef0123456789abcdef", "/api/v1/avatars/nothex", "/api/v1/avatars/..%2f..%2fetc",
		"/api/v1/avatars/0123456789abcdef0123456789abcdef/thumbnail"} {
		if resp, raw := send(t, n, http.MethodGet, p, "", "", nil); resp.StatusCode != http.StatusNotFound || problemCode(t, resp, raw) != "not_found" {
			t.Errorf("GET %s: %d %s, want 404 not_found", p, resp.StatusCode, raw)
		}
	}

	// Replacing the avatar removes the old one; deleting removes the new one.
	ct, body = multipartBody(t, "file", "again.png", "image/png", pngOf(t, 40, 90))
	resp, raw = send(t, n, http.MethodPut, "/api/v1/users/me/avatar", alice.AccessToken, ct, body)
	var prof2 struct {
		AvatarURL string `json:"avatar_url"`
	}
	json.Unmarshal(raw, &prof2)
	if resp.StatusCode != http.StatusOK || prof2.AvatarURL == prof.AvatarURL {
		t.Fatalf("replace: %d %s", resp.StatusCode, raw)
	}
	if resp, _ := send(t, n, http.MethodGet, prof.AvatarURL, "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("old avatar after replace: %d, want 404", resp.StatusCode)
	}
	if resp, raw := send(t, n, http.MethodDelete, "/api/v1/users/me/avatar", alice.AccessToken, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE avatar: %d %s", resp.StatusCode, raw)
	}
	for _, p := range []string{prof2.AvatarURL, prof2.AvatarURL + "/thumbnail"} {
		if resp, _ := send(t, n, http.MethodGet, p, "", "", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s after delete: %d, want 404", p, resp.StatusCode)
		}
	}
}

func pngOf(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	img.Set(0, 0, color.NRGBA{0, 0, 0, 0})
	var b bytes.Buffer
	if err := pngEncode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAvatarsEndToEndOnS3(t *testing.T) {
	t.Parallel()
	testAvatarsEndToEnd(t, store.SQLite, media.S3TestSettings(t))
}
