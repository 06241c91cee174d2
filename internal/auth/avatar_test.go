package auth_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// fakeAvatars stands in for the media package's *media.Avatars: it keeps images in a map and
// refuses anything that does not start with the PNG signature, the way the real one answers 415.
type fakeAvatars struct {
	mu     sync.Mutex
	n      int
	images map[string][]byte
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

func (f *fakeAvatars) SaveAvatar(_ context.Context, userID string, r io.Reader) (string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(b, pngMagic) {
		return "", apperr.New(apperr.KindUnsupportedType, "unsupported_media_type", "not an image")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	url := fmt.Sprintf("/media/avatars/%s-%d.png", userID, f.n)
	f.images[url] = b
	return url, nil
}

func (f *fakeAvatars) DeleteAvatar(_ context.Context, url string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.images[url]; !ok {
		return fmt.Errorf("no avatar %s", url)
	}
	delete(f.images, url)
	return nil
}

func (f *fakeAvatars) BeginAvatarUpload(context.Context, string) (func(), error) {
	return func() {}, nil
}

func (f *fakeAvatars) stored() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.images {
		out = append(out, k)
	}
	return out
}

// upload sends a multipart PUT /users/me/avatar with the given parts (field name → content).
func upload(t *testing.T, n *servertest.Node, token string, parts map[string][]byte) *http.Response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for name, data := range parts {
		w, err := mw.CreateFormFile(name, name+".png")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	mw.Close()
	return rawPut(t, n, token, mw.FormDataContentType(), &buf)
}

func rawPut(t *testing.T, n *servertest.Node, token, contentType string, body io.Reader) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, n.URL+"/api/v1/users/me/avatar", body)
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := n.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp
}

func png(size int) []byte {
	return append(append([]byte{}, pngMagic...), bytes.Repeat([]byte{7}, size-len(pngMagic))...)
}

func TestAvatars(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, d store.Dialect) {
		fake := &fakeAvatars{images: map[string][]byte{}}
		h := newHarness(t, d, func(o *auth.Options) { o.Avatars = fake; o.AvatarMaxBytes = 4096 })
		me := h.register(t, "mona")
		other := h.register(t, "nils")

		resp := upload(t, h.Node, me.AccessToken, map[string][]byte{"file": png(1000)})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("upload: %d %s", resp.StatusCode, body(resp))
		}
		var first profile
		h.Do(t, http.MethodGet, "/api/v1/users/me", me.AccessToken, nil, &first)
		if !strings.HasPrefix(first.AvatarURL, "/media/avatars/"+me.User.ID) {
			t.Fatalf("avatar_url = %q", first.AvatarURL)
		}
		// Others see it on the public profile.
		var pub profile
		h.Do(t, http.MethodGet, "/api/v1/users/"+me.User.ID, other.AccessToken, nil, &pub)
		if pub.AvatarURL != first.AvatarURL {
			t.Fatalf("public avatar_url = %q, want %q", pub.AvatarURL, first.AvatarURL)
		}

		// Replacing stores the new image and deletes the old one.
		resp = upload(t, h.Node, me.AccessToken, map[string][]byte{"file": png(4096)}) // exactly the limit
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("second upload: %d %s", resp.StatusCode, body(resp))
		}
		var second profile
		h.Do(t, http.MethodGet, "/api/v1/users/me", me.AccessToken, nil, &second)
		if second.AvatarURL == first.AvatarURL || len(fake.stored()) != 1 || fake.stored()[0] != second.AvatarURL {
			t.Fatalf("after replace: url %q, stored %v", second.AvatarURL, fake.stored())
		}

		for _, tt := range []struct {
			name   string
			resp   func() *http.Response
			status int
			code   string
		}{
			{"too large part", func() *http.Response { return upload(t, h.Node, me.AccessToken, map[string][]byte{"file": png(4097)}) }, 413, "too_large"},
			{"too large body", func() *http.Response {
				return upload(t, h.Node, me.AccessToken, map[string][]byte{"file": png(100), "padding": make([]byte, 80<<10)})
			}, 413, "too_large"},
			{"not multipart", func() *http.Response {
				return rawPut(t, h.Node, me.AccessToken, "image/png", bytes.NewReader(png(100)))
			}, 415, "unsupported_media_type"},
			{"no file field", func() *http.Response { return upload(t, h.Node, me.AccessToken, map[string][]byte{"image": png(100)}) }, 422, "validation_failed"},
			{"empty file", func() *http.Response { return upload(t, h.Node, me.AccessToken, map[string][]byte{"file": {}}) }, 422, "validation_failed"},
			{"broken multipart", func() *http.Response {
				return rawPut(t, h.Node, me.AccessToken, "multipart/form-data; boundary=xyz", strings.NewReader("--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"))
			}, 400, "bad_request"},
			{"not an image (the store's own error)", func() *http.Response {
				return upload(t, h.Node, me.AccessToken, map[string][]byte{"file": []byte("GIF89a, or rather not")})
			}, 415, "unsupported_media_type"},
			{"anonymous", func() *http.Response { return upload(t, h.Node, "", map[string][]byte{"file": png(100)}) }, 401, "unauthenticated"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				wantProblem(t, tt.resp(), tt.status, tt.code)
			})
		}
		// None of the failures touched the profile.
		var still profile
		h.Do(t, http.MethodGet, "/api/v1/users/me", me.AccessToken, nil, &still)
		if still.AvatarURL != second.AvatarURL {
			t.Fatalf("avatar changed by a failed upload: %q", still.AvatarURL)
		}

		// Another user's upload changes only their own profile.
		if resp := upload(t, h.Node, other.AccessToken, map[string][]byte{"file": png(100)}); resp.StatusCode != http.StatusOK {
			t.Fatalf("other upload: %d", resp.StatusCode)
		}
		h.Do(t, http.MethodGet, "/api/v1/users/me", me.AccessToken, nil, &still)
		if still.AvatarURL != second.AvatarURL {
			t.Fatalf("someone else's upload changed my avatar: %q", still.AvatarURL)
		}

		var cleared profile
		if resp := h.Do(t, http.MethodDelete, "/api/v1/users/me/avatar", me.AccessToken, nil, &cleared); resp.StatusCode != http.StatusOK {
			t.Fatalf("delete: %d %s", resp.StatusCode, body(resp))
		}
		if cleared.AvatarURL != "" || cleared.Email == nil {
			t.Fatalf("after delete: %+v", cleared)
		}
		for _, url := range fake.stored() {
			if strings.Contains(url, me.User.ID) {
				t.Fatalf("deleted avatar still stored: %s", url)
			}
		}
		// Deleting again is harmless.
		if s := h.status(t, http.MethodDelete, "/api/v1/users/me/avatar", me.AccessToken, nil); s != http.StatusOK {
			t.Fatalf("second delete: %d", s)
		}
		resp = h.Do(t, http.MethodDelete, "/api/v1/users/me/avatar", "", nil, nil)
		wantProblem(t, resp, http.StatusUnauthorized, "unauthenticated")
	})
}

func TestAvatarsWithoutAStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, store.SQLite, nil) // Options.Avatars is nil
	u := h.register(t, "noavatar")
	resp := upload(t, h.Node, u.AccessToken, map[string][]byte{"file": png(100)})
	wantProblem(t, resp, http.StatusServiceUnavailable, "avatars_unavailable")
	resp = h.Do(t, http.MethodDelete, "/api/v1/users/me/avatar", u.AccessToken, nil, nil)
	wantProblem(t, resp, http.StatusServiceUnavailable, "avatars_unavailable")
	// Authentication still comes first.
	resp = upload(t, h.Node, "", map[string][]byte{"file": png(100)})
	wantProblem(t, resp, http.StatusUnauthorized, "unauthenticated")
}
