package media_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// uploadTimeout bounds one fuzzed upload: a body of a few KiB is answered in milliseconds, so
// reaching it means the server stalled on the input, which is a bug.
const uploadTimeout = 10 * time.Second

// FuzzMultipartUpload posts arbitrary multipart bodies, boundaries and part headers to POST
// /files through the real router of a SQLite node, as a signed-in user: the answer is never a
// 5xx, every error is a problem document, a 201 is a file, and the server never stalls (the
// request has a deadline; the body is complete, so the server has all it will ever get).
func FuzzMultipartUpload(f *testing.F) {
	n := servertest.New(f, store.SQLite, func(c *config.Config) {
		c.RateLimits = false
		c.ImageMaxPixels = 1 << 16 // keep fuzzed images cheap
	})
	u := n.Register(f, "fuzzer")
	png := pngOf(f, 4, 4)
	add := func(ct string, parts ...string) {
		f.Add(ct, []byte(strings.Join(parts, "")))
	}
	const b = "XyZ"
	ct := "multipart/form-data; boundary=" + b
	add(ct, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n")
	add(ct, "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.png\"\r\nContent-Type: image/png\r\n\r\n", string(png), "\r\n--XyZ--\r\n")
	add(ct, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*\x00\x00\x00\x08\r\n--XyZ--\r\n")
	add(ct, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E2%80%AE.txt\r\n\r\nx\r\n--XyZ--\r\n")
	add(ct, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../etc/passwd\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=41=\r\n--XyZ--\r\n")
	add(ct, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\x00\"\r\n\r\nx\r\n--XyZ--")
	add(ct, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n", strings.Repeat("X-A: b\r\n", 100), "\r\nx\r\n--XyZ--\r\n")
	add(ct, "--XyZ\r\n\r\n--XyZ--\r\n")
	add(ct, "--XyZ--\r\n")
	add(ct, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nunterminated")
	add(ct, "")
	add("multipart/form-data; boundary=\"a b\"", "--a b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--a b--\r\n")
	add("multipart/form-data", "--\r\n\r\n")
	add("multipart/mixed; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--XyZ--\r\n")
	add("multipart/form-data; boundary="+strings.Repeat("z", 70), "--", strings.Repeat("z", 70), "\r\n\r\n")
	add("application/json", "{}")
	add("", "x")
	client := &http.Client{Timeout: uploadTimeout}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		if strings.ContainsFunc(contentType, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) {
			t.Skip("net/http refuses to send a header with control characters (and so does any proxy)")
		}
		req, err := http.NewRequest(http.MethodPost, n.URL+"/api/v1/files", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+u.AccessToken)
		resp, err := client.Do(req)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout") {
				t.Fatalf("the server stalled on Content-Type %q body %q: %v", contentType, body, err)
			}
			t.Fatalf("Content-Type %q body %q: %v", contentType, body, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read the answer: %v", err)
		}
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("Content-Type %q body %q: status %d: %s", contentType, body, resp.StatusCode, raw)
		case resp.StatusCode >= 400:
			var p struct {
				Code string `json:"code"`
			}
			if err := json.Unmarshal(raw, &p); err != nil || p.Code == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("status %d without a problem document: %s", resp.StatusCode, raw)
			}
		case resp.StatusCode == http.StatusCreated:
			var out struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &out); err != nil || out.ID == "" {
				t.Fatalf("201 without a file: %s", raw)
			}
		default:
			t.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
	})
}
