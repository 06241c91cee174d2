package media_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// pdf returns a document of exactly n bytes (n >= 16), different for each tag.
func pdf(n int, tag byte) []byte {
	b := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte{'a' + tag%26}, n-9)...)
	return b[:n]
}

// TestStorageQuota: a user's files add up to at most NERUTALK_STORAGE_QUOTA_BYTES (sizes of the
// files they own; an identical content counts for each owner); an upload over it is 403
// quota_exceeded, refused before the body is read when Content-Length says so and after storing
// otherwise (nothing is left stored); deleting a file frees its share; GET /media/usage tells.
func TestStorageQuota(t *testing.T) {
	t.Parallel()
	const quota = 3 << 20
	const mib = 1 << 20
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, func(c *config.Config) { c.StorageQuotaBytes = quota })
			alice, bob := n.Register(t, "alice"), n.Register(t, "bob")
			usage := func(token string) (used, q int64) {
				var u struct {
					Used  int64 `json:"used_bytes"`
					Quota int64 `json:"quota_bytes"`
				}
				if resp := n.Do(t, http.MethodGet, "/api/v1/media/usage", token, nil, &u); resp.StatusCode != http.StatusOK {
					t.Fatalf("usage: %d", resp.StatusCode)
				}
				return u.Used, u.Quota
			}
			code := func(raw []byte) string {
				var p struct {
					Code string `json:"code"`
				}
				_ = json.Unmarshal(raw, &p)
				return p.Code
			}
			var first fileJSON
			steps := []struct {
				name     string
				token    string
				data     []byte
				chunked  bool // no Content-Length: only the check after storing can refuse it
				want     int
				wantUsed int64 // the uploader's usage afterwards
			}{
				{"first MiB", alice.AccessToken, pdf(mib, 0), false, http.StatusCreated, mib},
				{"second MiB, chunked", alice.AccessToken, pdf(mib, 1), true, http.StatusCreated, 2 * mib},
				{"over by Content-Length: refused before the body", alice.AccessToken, pdf(2*mib+mib/2, 2), false, http.StatusForbidden, 2 * mib},
				{"over, chunked: refused after storing", alice.AccessToken, pdf(mib+1, 3), true, http.StatusForbidden, 2 * mib},
				{"exactly up to the quota", alice.AccessToken, pdf(mib, 4), true, http.StatusCreated, 3 * mib},
				{"one more byte", alice.AccessToken, pdf(16, 5), false, http.StatusForbidden, 3 * mib},
				{"the same content counts for another owner", bob.AccessToken, pdf(mib, 0), false, http.StatusCreated, mib},
			}
			for i, s := range steps {
				ct, body := multipartBody(t, "file", "doc.pdf", "application/pdf", s.data)
				var rd io.Reader = body
				if s.chunked {
					rd = io.MultiReader(body) // unknown length: sent chunked
				}
				resp, raw := send(t, n, http.MethodPost, "/api/v1/files", s.token, ct, rd)
				if resp.StatusCode != s.want {
					t.Fatalf("%s: %d %s, want %d", s.name, resp.StatusCode, raw, s.want)
				}
				if s.want == http.StatusForbidden && code(raw) != "quota_exceeded" {
					t.Errorf("%s: code %q, want quota_exceeded", s.name, code(raw))
				}
				if i == 0 {
					_ = json.Unmarshal(raw, &first)
				}
				if used, q := usage(s.token); used != s.wantUsed || q != quota {
					t.Errorf("%s: usage %d of %d, want %d of %d", s.name, used, q, s.wantUsed, quota)
				}
			}
			// Deleting a file gives its share back.
			if resp := n.Do(t, http.MethodDelete, "/api/v1/files/"+first.ID, alice.AccessToken, nil, nil); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("delete: %d", resp.StatusCode)
			}
			if used, _ := usage(alice.AccessToken); used != 2*mib {
				t.Errorf("after delete: used %d, want %d", used, 2*mib)
			}
			if resp, raw, _ := upload(t, n, alice.AccessToken, "d.pdf", "application/pdf", pdf(mib/2, 6)); resp.StatusCode != http.StatusCreated {
				t.Errorf("upload after delete: %d %s", resp.StatusCode, raw)
			}
		})
	}
}
