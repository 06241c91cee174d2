package media_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// TestUploadRateLimit: over NERUTALK_UPLOADS_PER_MINUTE a user's uploads are refused with 429
// rate_limited and Retry-After, before the body is processed; other users keep their own budget.
// With Redis the nodes share one budget.
func TestUploadRateLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	cases := map[string]func(t *testing.T) []*servertest.Node{
		"sqlite": func(t *testing.T) []*servertest.Node {
			return []*servertest.Node{servertest.New(t, store.SQLite, func(c *config.Config) { c.UploadsPerMin = limit })}
		},
		"postgres": func(t *testing.T) []*servertest.Node {
			return []*servertest.Node{servertest.New(t, store.Postgres, func(c *config.Config) { c.UploadsPerMin = limit })}
		},
		"two nodes sharing redis": func(t *testing.T) []*servertest.Node {
			redisURL := storetest.RedisURL(t)
			_, prefix := storetest.Redis(t)
			a := servertest.New(t, store.Postgres, func(c *config.Config) {
				c.UploadsPerMin, c.RedisURL, c.RedisPrefix = limit, redisURL, prefix
			})
			b := servertest.New(t, store.Postgres, func(c *config.Config) {
				c.UploadsPerMin, c.RedisURL, c.RedisPrefix = limit, redisURL, prefix
				c.DatabaseURL, c.DataDir = a.Config.DatabaseURL, a.Config.DataDir
			})
			return []*servertest.Node{a, b}
		},
	}
	for name, start := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			nodes := start(t)
			alice, bob := nodes[0].Register(t, "alice"), nodes[0].Register(t, "bob")
			doc := func(i int) []byte { return fmt.Appendf(nil, "%%PDF-1.4\nupload %d\n", i) }
			for i := range limit {
				n := nodes[i%len(nodes)]
				if resp, raw, _ := upload(t, n, alice.AccessToken, "a.pdf", "application/pdf", doc(i)); resp.StatusCode != http.StatusCreated {
					t.Fatalf("upload %d: %d %s", i+1, resp.StatusCode, raw)
				}
			}
			resp, raw, _ := upload(t, nodes[len(nodes)-1], alice.AccessToken, "a.pdf", "application/pdf", doc(limit))
			var p struct {
				Code string `json:"code"`
			}
			_ = json.Unmarshal(raw, &p)
			if resp.StatusCode != http.StatusTooManyRequests || p.Code != "rate_limited" {
				t.Fatalf("upload over the limit: %d %s, want 429 rate_limited", resp.StatusCode, raw)
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
				t.Errorf("Retry-After %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
			}
			if resp, raw, _ := upload(t, nodes[0], bob.AccessToken, "b.pdf", "application/pdf", doc(0)); resp.StatusCode != http.StatusCreated {
				t.Errorf("another user's upload: %d %s, want 201 (budgets are per user)", resp.StatusCode, raw)
			}
		})
	}
}

// TestUploadsInFlight: while a user has NERUTALK_UPLOADS_IN_FLIGHT uploads in progress, another
// is refused with 429 too_many_uploads and Retry-After, before its body is read; other users are
// not affected, and the slot is free again once an upload ends (finished or abandoned).
func TestUploadsInFlight(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			n := servertest.New(t, d, func(c *config.Config) { c.UploadsInFlight = 1 })
			alice, bob := n.Register(t, "alice"), n.Register(t, "bob")
			// Large enough that the server is inside Upload, reading, when half of it has come.
			doc := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("slow upload\n"), 8<<10)...)

			// Alice's first upload: the headers and half of the body, on a raw connection (an
			// http.Client may hold a partial body in its buffers), then nothing.
			ct, buf := multipartBody(t, "file", "slow.pdf", "application/pdf", doc)
			body := buf.Bytes()
			half := len(body) / 2
			slowConn := func() net.Conn {
				c, err := net.Dial("tcp", strings.TrimPrefix(n.URL, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				fmt.Fprintf(c, "POST /api/v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
					alice.AccessToken, ct, len(body))
				if _, err := c.Write(body[:half]); err != nil {
					t.Fatal(err)
				}
				return c
			}
			// Another upload of hers is refused while it is in progress. The slow one must be in
			// the handler first: one that arrived while a probe held the slot was refused itself,
			// so then try again with a new one.
			var slow net.Conn
			var resp *http.Response
			var raw []byte
			for range 20 {
				slow = slowConn()
				time.Sleep(20 * time.Millisecond)
				resp, raw, _ = upload(t, n, alice.AccessToken, "b.pdf", "application/pdf", doc)
				if resp.StatusCode != http.StatusCreated {
					break
				}
				slow.Close()
			}
			var p struct {
				Code string `json:"code"`
			}
			_ = json.Unmarshal(raw, &p)
			if resp.StatusCode != http.StatusTooManyRequests || p.Code != "too_many_uploads" {
				t.Fatalf("upload beside one in progress: %d %s, want 429 too_many_uploads", resp.StatusCode, raw)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 too_many_uploads without Retry-After")
			}
			if resp, raw, _ := upload(t, n, bob.AccessToken, "b.pdf", "application/pdf", doc); resp.StatusCode != http.StatusCreated {
				t.Errorf("another user's upload: %d %s, want 201 (slots are per user)", resp.StatusCode, raw)
			}

			// The slow upload finishes: the slot is free again.
			if _, err := slow.Write(body[half:]); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(slow), nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("the slow upload ended with %d, want 201", res.StatusCode)
			}
			if resp, raw, _ := upload(t, n, alice.AccessToken, "c.pdf", "application/pdf", doc); resp.StatusCode != http.StatusCreated {
				t.Fatalf("upload after the first ended: %d %s, want 201", resp.StatusCode, raw)
			}

			// An abandoned upload frees its slot too.
			slowConn().Close()
			for i := range 100 {
				resp, raw, _ := upload(t, n, alice.AccessToken, "d.pdf", "application/pdf", doc)
				if resp.StatusCode == http.StatusCreated {
					break
				}
				if resp.StatusCode != http.StatusTooManyRequests || i == 99 {
					t.Fatalf("upload after an abandoned one: %d %s, want 201", resp.StatusCode, raw)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
