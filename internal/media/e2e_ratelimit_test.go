package media_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// TestUploadRateLimit: over NERUTALK_UPLOADS_PER_MINUTE a user's uploads are refused with 429
// rate_limited and Retry-After, before the body is processed; other users keep their own budget.
// Files and avatars share the budget. With Redis the nodes share one budget.
func TestUploadRateLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	for _, dep := range servertest.Deployments() {
		t.Run(dep.Name, func(t *testing.T) {
			t.Parallel()
			nodes := dep.Start(t, func(c *config.Config) { c.UploadsPerMin = limit })
			alice, bob := nodes[0].Register(t, "alice"), nodes[0].Register(t, "bob")
			doc := func(i int) []byte { return fmt.Appendf(nil, "%%PDF-1.4\nupload %d\n", i) }
			img := pngOf(t, 8, 8)
			for i := range limit {
				n := nodes[i%len(nodes)]
				if i == 1 { // one of them an avatar
					ct, body := multipartBody(t, "file", "me.png", "image/png", img)
					if resp, raw := send(t, n, http.MethodPut, "/api/v1/users/me/avatar", alice.AccessToken, ct, body); resp.StatusCode != http.StatusOK {
						t.Fatalf("avatar upload %d: %d %s", i+1, resp.StatusCode, raw)
					}
					continue
				}
				if resp, raw, _ := upload(t, n, alice.AccessToken, "a.pdf", "application/pdf", doc(i)); resp.StatusCode != http.StatusCreated {
					t.Fatalf("upload %d: %d %s", i+1, resp.StatusCode, raw)
				}
			}
			last := nodes[len(nodes)-1]
			resp, raw, _ := upload(t, last, alice.AccessToken, "a.pdf", "application/pdf", doc(limit))
			if code := problemCode(t, resp, raw); resp.StatusCode != http.StatusTooManyRequests || code != "rate_limited" {
				t.Fatalf("upload over the limit: %d %s, want 429 rate_limited", resp.StatusCode, raw)
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
				t.Errorf("Retry-After %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
			}
			ct, body := multipartBody(t, "file", "me.png", "image/png", img)
			resp, raw = send(t, last, http.MethodPut, "/api/v1/users/me/avatar", alice.AccessToken, ct, body)
			if code := problemCode(t, resp, raw); resp.StatusCode != http.StatusTooManyRequests || code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("avatar upload over the limit: %d %s, want 429 rate_limited with Retry-After", resp.StatusCode, raw)
			}
			if resp, raw, _ := upload(t, nodes[0], bob.AccessToken, "b.pdf", "application/pdf", doc(0)); resp.StatusCode != http.StatusCreated {
				t.Errorf("another user's upload: %d %s, want 201 (budgets are per user)", resp.StatusCode, raw)
			}
		})
	}
}

// TestUploadsInFlight: while a user has NERUTALK_UPLOADS_IN_FLIGHT uploads in progress, another
// (file or avatar) is refused with 429 too_many_uploads and Retry-After, before its body is read;
// other users are not affected, and the slot is free again once an upload ends (finished or
// abandoned). An avatar upload in progress holds a slot too.
func TestUploadsInFlight(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, func(c *config.Config) { c.UploadsInFlight = 1 })
			alice, bob := n.Register(t, "alice"), n.Register(t, "bob")
			// Large enough that the server is inside the handler, reading, when half has come.
			doc := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("slow upload\n"), 8<<10)...)
			fileCT, fileBuf := multipartBody(t, "file", "slow.pdf", "application/pdf", doc)
			img := pngOf(t, 512, 512)
			avatarCT, avatarBuf := multipartBody(t, "file", "slow.png", "image/png", img)

			// slowUpload sends alice's request line, headers and half of the body on a raw
			// connection (an http.Client may hold a partial body in its buffers), then nothing.
			// finish sends the rest and returns the status.
			type slowUpload struct {
				conn net.Conn
				rest []byte
			}
			start := func(method, path, ct string, body []byte) slowUpload {
				c, err := net.Dial("tcp", strings.TrimPrefix(n.URL, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
					method, path, alice.AccessToken, ct, len(body))
				half := len(body) / 2
				if _, err := c.Write(body[:half]); err != nil {
					t.Fatal(err)
				}
				return slowUpload{c, body[half:]}
			}
			finish := func(u slowUpload) int {
				t.Helper()
				if _, err := u.conn.Write(u.rest); err != nil {
					t.Fatal(err)
				}
				res, err := http.ReadResponse(bufio.NewReader(u.conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode
			}
			slowFile := func() slowUpload { return start(http.MethodPost, "/api/v1/files", fileCT, fileBuf.Bytes()) }
			slowAvatar := func() slowUpload {
				return start(http.MethodPut, "/api/v1/users/me/avatar", avatarCT, avatarBuf.Bytes())
			}
			fileUpload := func(token string) (*http.Response, []byte) {
				resp, raw, _ := upload(t, n, token, "b.pdf", "application/pdf", doc)
				return resp, raw
			}
			avatarUpload := func(token string) (*http.Response, []byte) {
				ct, body := multipartBody(t, "file", "me.png", "image/png", img)
				return send(t, n, http.MethodPut, "/api/v1/users/me/avatar", token, ct, body)
			}
			// refusedBeside starts a slow upload and checks that probe, sent while it is in
			// progress, is refused. The slow one must be in the handler first: one that arrived
			// while the probe held the slot was refused itself, so then it tries again.
			refusedBeside := func(slow func() slowUpload, probe func(string) (*http.Response, []byte), what string) slowUpload {
				t.Helper()
				var u slowUpload
				var resp *http.Response
				var raw []byte
				for range 20 {
					u = slow()
					time.Sleep(20 * time.Millisecond)
					if resp, raw = probe(alice.AccessToken); resp.StatusCode >= 300 {
						break
					}
					u.conn.Close()
				}
				if code := problemCode(t, resp, raw); resp.StatusCode != http.StatusTooManyRequests || code != "too_many_uploads" {
					t.Fatalf("%s: %d %s, want 429 too_many_uploads", what, resp.StatusCode, raw)
				}
				if resp.Header.Get("Retry-After") == "" {
					t.Errorf("%s: 429 too_many_uploads without Retry-After", what)
				}
				return u
			}

			u := refusedBeside(slowFile, fileUpload, "a file upload beside one in progress")
			if resp, raw := fileUpload(bob.AccessToken); resp.StatusCode != http.StatusCreated {
				t.Errorf("another user's upload: %d %s, want 201 (slots are per user)", resp.StatusCode, raw)
			}
			// The slow upload finishes: the slot is free again.
			if code := finish(u); code != http.StatusCreated {
				t.Fatalf("the slow upload ended with %d, want 201", code)
			}
			if resp, raw := fileUpload(alice.AccessToken); resp.StatusCode != http.StatusCreated {
				t.Fatalf("upload after the first ended: %d %s, want 201", resp.StatusCode, raw)
			}

			// An abandoned upload frees its slot too.
			slowFile().conn.Close()
			for i := range 100 {
				resp, raw := fileUpload(alice.AccessToken)
				if resp.StatusCode == http.StatusCreated {
					break
				}
				if resp.StatusCode != http.StatusTooManyRequests || i == 99 {
					t.Fatalf("upload after an abandoned one: %d %s, want 201", resp.StatusCode, raw)
				}
				time.Sleep(20 * time.Millisecond)
			}

			// Avatars share the slots, both ways.
			u = refusedBeside(slowFile, avatarUpload, "an avatar upload beside a file upload in progress")
			if code := finish(u); code != http.StatusCreated {
				t.Fatalf("the slow upload ended with %d, want 201", code)
			}
			u = refusedBeside(slowAvatar, fileUpload, "a file upload beside an avatar upload in progress")
			if code := finish(u); code != http.StatusOK {
				t.Fatalf("the slow avatar upload ended with %d, want 200", code)
			}
			if resp, raw := avatarUpload(alice.AccessToken); resp.StatusCode != http.StatusOK {
				t.Fatalf("avatar upload after the others ended: %d %s, want 200", resp.StatusCode, raw)
			}
		})
	}
}
