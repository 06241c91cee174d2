package media_test

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/media"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

type fileJSON struct {
	ID           string `json:"id"`
	URL          string `json:"url"`
	MIMEType     string `json:"mime_type"`
	Size         int64  `json:"size"`
	Width        *int   `json:"width"`
	Height       *int   `json:"height"`
	ThumbnailURL string `json:"thumbnail_url"`
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	SHA256       string `json:"sha256"`
	CreatedAt    string `json:"created_at"`
}

func upload(t *testing.T, n nodeT, token, name, contentType string, data []byte) (*http.Response, []byte, fileJSON) {
	t.Helper()
	ct, body := multipartBody(t, "file", name, contentType, data)
	resp, raw := send(t, n, http.MethodPost, "/api/v1/files", token, ct, body)
	var f fileJSON
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return resp, raw, f
}

func TestFilesEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			testFilesEndToEnd(t, d, nil)
		})
	}
}

func TestFilesEndToEndOnS3(t *testing.T) {
	t.Parallel()
	testFilesEndToEnd(t, store.SQLite, media.S3TestSettings(t))
}

func testFilesEndToEnd(t *testing.T, d store.Dialect, mutate func(*config.Config)) {
	n := servertest.New(t, d, func(c *config.Config) {
		c.MediaMaxFileBytes = 200_000
		if mutate != nil {
			mutate(c)
		}
	})
	alice, bob := n.Register(t, "alice"), n.Register(t, "bob")

	// An image with GPS: 201 with every field; the download has no metadata.
	photo := photoWithGPS(t)
	resp, raw, img := upload(t, n, alice.AccessToken, "holiday.jpg", "application/octet-stream", photo)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, raw)
	}
	if img.Kind != "image" || img.MIMEType != "image/jpeg" || img.Width == nil || *img.Width != 300 || *img.Height != 200 ||
		img.ThumbnailURL != img.URL+"/thumbnail" || img.Name != "holiday.jpg" || len(img.SHA256) != 64 || img.CreatedAt == "" ||
		resp.Header.Get("Location") != img.URL {
		t.Fatalf("upload answer: %s (Location %q)", raw, resp.Header.Get("Location"))
	}
	resp, body := send(t, n, http.MethodGet, img.URL, alice.AccessToken, "", nil)
	if resp.StatusCode != http.StatusOK || int64(len(body)) != img.Size {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(body))
	}
	for h, want := range map[string]string{
		"Content-Type": "image/jpeg", "X-Content-Type-Options": "nosniff", "ETag": `"` + img.SHA256 + `"`,
		"Cache-Control": "private, max-age=86400", "Content-Disposition": "inline; filename=holiday.jpg",
		"Content-Security-Policy": "default-src 'none'; sandbox", "Accept-Ranges": "bytes",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if bytes.Contains(body, []byte("GPSSECRET")) || bytes.Contains(body, []byte("Exif")) {
		t.Error("the download still carries EXIF/GPS")
	}
	// ?token= for img/video tags; Range; conditional; thumbnail.
	if resp, b := send(t, n, http.MethodGet, img.URL+"?token="+url.QueryEscape(alice.AccessToken), "", "", nil); resp.StatusCode != http.StatusOK || !bytes.Equal(b, body) {
		t.Errorf("?token=: %d", resp.StatusCode)
	}
	if resp, b := send(t, n, http.MethodGet, img.URL, alice.AccessToken, "", nil, "Range", "bytes=100-199"); resp.StatusCode != http.StatusPartialContent ||
		!bytes.Equal(b, body[100:200]) || resp.Header.Get("Content-Range") != "bytes 100-199/"+itoa(img.Size) {
		t.Errorf("Range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
	}
	if resp, b := send(t, n, http.MethodGet, img.URL, alice.AccessToken, "", nil, "Range", "bytes=-10"); resp.StatusCode != http.StatusPartialContent ||
		!bytes.Equal(b, body[len(body)-10:]) {
		t.Errorf("suffix Range: %d, %d bytes", resp.StatusCode, len(b))
	}
	if resp, _ := send(t, n, http.MethodGet, img.URL, alice.AccessToken, "", nil, "If-None-Match", `"`+img.SHA256+`"`); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}
	if resp, b := send(t, n, http.MethodHead, img.URL, alice.AccessToken, "", nil); resp.StatusCode != http.StatusOK || len(b) != 0 ||
		resp.Header.Get("Content-Length") != itoa(img.Size) {
		t.Errorf("HEAD: %d, Content-Length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
	resp, th := send(t, n, http.MethodGet, img.ThumbnailURL, alice.AccessToken, "", nil)
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(th)); resp.StatusCode != http.StatusOK || err != nil || cfg.Width != 300 || cfg.Height != 200 {
		t.Errorf("thumbnail: %d %v %dx%d", resp.StatusCode, err, cfg.Width, cfg.Height)
	}
	resp, raw = send(t, n, http.MethodGet, img.URL+"/info", alice.AccessToken, "", nil)
	var info fileJSON
	json.Unmarshal(raw, &info)
	if resp.StatusCode != http.StatusOK || info.ID != img.ID || info.SHA256 != img.SHA256 {
		t.Errorf("info: %d %s", resp.StatusCode, raw)
	}

	// Strangers and anonymous callers.
	for _, c := range []struct {
		name, method, path, token string
		status                    int
		code                      string
	}{
		{"stranger downloads", http.MethodGet, img.URL, bob.AccessToken, 404, "not_found"},
		{"stranger's token in the query", http.MethodGet, img.URL + "?token=" + bob.AccessToken, "", 404, "not_found"},
		{"stranger's thumbnail", http.MethodGet, img.ThumbnailURL, bob.AccessToken, 404, "not_found"},
		{"stranger's info", http.MethodGet, img.URL + "/info", bob.AccessToken, 404, "not_found"},
		{"stranger deletes", http.MethodDelete, img.URL, bob.AccessToken, 404, "not_found"},
		{"anonymous", http.MethodGet, img.URL, "", 401, "unauthenticated"},
		{"bad token", http.MethodGet, img.URL + "?token=garbage", "", 401, ""},
		{"unknown id", http.MethodGet, "/api/v1/files/01938e9e-0000-7000-8000-000000000000", alice.AccessToken, 404, "not_found"},
		{"malformed id", http.MethodGet, "/api/v1/files/..%2F..%2Fetc%2Fpasswd", alice.AccessToken, 404, "not_found"},
		{"range beyond the end", http.MethodGet, img.URL, alice.AccessToken, 416, "range_not_satisfiable"},
	} {
		var headers []string
		if c.status == 416 {
			headers = []string{"Range", "bytes=999999-"}
		}
		resp, raw := send(t, n, c.method, c.path, c.token, "", nil, headers...)
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, raw, c.status)
			continue
		}
		if code := problemCode(t, resp, raw); c.code != "" && code != c.code {
			t.Errorf("%s: code %q, want %q", c.name, code, c.code)
		}
		if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}

	// A document is served as an attachment under its sanitized name, never sniffed.
	resp, raw, pdf := upload(t, n, alice.AccessToken, `..\..\evil".pdf`, "text/html", []byte("%PDF-1.4\n<html><script>alert(1)</script>\n%%EOF\n"))
	if resp.StatusCode != http.StatusCreated || pdf.Kind != "file" || pdf.MIMEType != "application/pdf" || pdf.Name != "evil_.pdf" || pdf.ThumbnailURL != "" || pdf.Width != nil {
		t.Fatalf("pdf upload: %d %s", resp.StatusCode, raw)
	}
	resp, _ = send(t, n, http.MethodGet, pdf.URL, alice.AccessToken, "", nil)
	if got := resp.Header.Get("Content-Disposition"); got != `attachment; filename=evil_.pdf` || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("pdf: Content-Disposition %q, Content-Type %q", got, resp.Header.Get("Content-Type"))
	}
	if resp, raw := send(t, n, http.MethodGet, pdf.URL+"/thumbnail", alice.AccessToken, "", nil); resp.StatusCode != 404 || problemCode(t, resp, raw) != "not_found" {
		t.Errorf("thumbnail of a pdf: %d", resp.StatusCode)
	}

	// Refusals.
	notMultipart, nb := "application/json", strings.NewReader(`{"file": "x"}`)
	if resp, raw := send(t, n, http.MethodPost, "/api/v1/files", alice.AccessToken, notMultipart, nb); resp.StatusCode != 415 || problemCode(t, resp, raw) != "unsupported_media_type" {
		t.Errorf("not multipart: %d %s", resp.StatusCode, raw)
	}
	ct, body2 := multipartBody(t, "other", "x.txt", "text/plain", []byte("hello"))
	if resp, raw := send(t, n, http.MethodPost, "/api/v1/files", alice.AccessToken, ct, body2); resp.StatusCode != 422 || problemCode(t, resp, raw) != "validation_failed" {
		t.Errorf("no file field: %d %s", resp.StatusCode, raw)
	}
	ct, body2 = multipartBody(t, "file", "x.txt", "text/plain", []byte("hello"))
	if resp, raw := send(t, n, http.MethodPost, "/api/v1/files", "", ct, body2); resp.StatusCode != 401 || problemCode(t, resp, raw) != "unauthenticated" ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("upload without a token: %d %s", resp.StatusCode, raw)
	}
	for _, c := range []struct {
		name, filename, ct string
		data               []byte
		status             int
		code               string
	}{
		{"html declared as png", "x.png", "image/png", []byte("<html><script>alert(1)</script></html>"), 415, "unsupported_media_type"},
		{"svg", "x.svg", "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), 415, "unsupported_media_type"},
		{"exe declared as pdf", "x.pdf", "application/pdf", append([]byte("MZ\x90\x00"), make([]byte, 300)...), 415, "unsupported_media_type"},
		{"truncated image", "x.jpg", "image/jpeg", photo[:len(photo)/2], 422, "invalid_image"},
		{"100000x100000 png", "x.png", "image/png", hugePNGHeader(), 422, "image_too_large"},
		{"empty", "x.txt", "text/plain", nil, 422, "validation_failed"},
		{"document over its limit", "x.pdf", "application/pdf", append([]byte("%PDF-1.4\n"), make([]byte, 300_000)...), 413, "too_large"},
	} {
		resp, raw, _ := upload(t, n, alice.AccessToken, c.filename, c.ct, c.data)
		if resp.StatusCode != c.status || problemCode(t, resp, raw) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, resp.StatusCode, raw, c.status, c.code)
		}
	}

	// The same bytes from another user: a separate file with the same hash.
	resp, raw, again := upload(t, n, bob.AccessToken, "copy.jpg", "image/jpeg", photo)
	if resp.StatusCode != http.StatusCreated || again.ID == img.ID || again.SHA256 != img.SHA256 {
		t.Fatalf("same content again: %d %s", resp.StatusCode, raw)
	}

	// Delete: the owner only; afterwards it is gone, the other copy stays.
	if resp, raw := send(t, n, http.MethodDelete, img.URL, alice.AccessToken, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, raw)
	}
	if resp, _ := send(t, n, http.MethodGet, img.URL, alice.AccessToken, "", nil); resp.StatusCode != 404 {
		t.Errorf("after delete: %d, want 404", resp.StatusCode)
	}
	if resp, b := send(t, n, http.MethodGet, again.URL, bob.AccessToken, "", nil); resp.StatusCode != 200 || !bytes.Equal(b, body) {
		t.Errorf("the other copy after delete: %d", resp.StatusCode)
	}
}

type nodeT = *servertestNode

func itoa(n int64) string { return strconvItoa(n) }
