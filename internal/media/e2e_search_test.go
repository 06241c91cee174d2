package media_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

type searchJSON struct {
	Items []struct {
		ID      string `json:"id"`
		Title   string `json:"title"`
		Preview struct {
			URL           string
			Width, Height int
		} `json:"preview"`
		Full struct {
			URL           string
			Width, Height int
		} `json:"full"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func TestBuiltinStickersEndToEnd(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	alice := n.Register(t, "alice")
	var page searchJSON
	resp := n.Do(t, http.MethodGet, "/api/v1/media/stickers", alice.AccessToken, nil, &page)
	if resp.StatusCode != http.StatusOK || len(page.Items) != 8 || page.NextCursor != "" {
		t.Fatalf("trending stickers: %d, %d items", resp.StatusCode, len(page.Items))
	}
	resp, img := send(t, n, http.MethodGet, page.Items[0].Full.URL, "", "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || len(img) == 0 {
		t.Fatalf("sticker image: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp = n.Do(t, http.MethodGet, "/api/v1/media/gifs?q=heart&limit=1", alice.AccessToken, nil, &page)
	if resp.StatusCode != http.StatusOK || len(page.Items) != 1 || page.Items[0].ID != "builtin-heartbeat" {
		t.Fatalf("gifs?q=heart: %d %+v", resp.StatusCode, page.Items)
	}
	resp, _ = send(t, n, http.MethodGet, page.Items[0].Preview.URL, "", "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/gif" {
		t.Fatalf("gif preview: %d", resp.StatusCode)
	}
	var p2 searchJSON
	n.Do(t, http.MethodGet, "/api/v1/media/stickers?limit=5", alice.AccessToken, nil, &p2)
	resp = n.Do(t, http.MethodGet, "/api/v1/media/stickers?limit=5&cursor="+p2.NextCursor, alice.AccessToken, nil, &page)
	if p2.NextCursor == "" || len(page.Items) != 3 {
		t.Errorf("second page: cursor %q, %d items", p2.NextCursor, len(page.Items))
	}
	for _, c := range []struct{ path, token string }{{"/api/v1/media/gifs", ""}, {"/api/v1/media/stickers?q=x", "garbage"}} {
		if resp, _ := send(t, n, http.MethodGet, c.path, c.token, "", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a valid token: %d", c.path, resp.StatusCode)
		}
	}
	if resp, raw := send(t, n, http.MethodGet, "/api/v1/media/builtin/nope.png", "", "", nil); resp.StatusCode != 404 || problemCode(t, resp, raw) != "not_found" {
		t.Errorf("unknown built-in: %d", resp.StatusCode)
	}
}

// TestMediaSearchRateLimited: the third search within a minute at 2 a minute is refused. The
// budget refills one search every 30 s, so even a very slow run cannot earn one back between
// three back-to-back requests (at 4 a minute, a run slowed to 15 s did, and the test flaked).
func TestMediaSearchRateLimited(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, func(c *config.Config) { c.MediaSearchPerMin = 2 })
	alice := n.Register(t, "alice")
	for i := range 2 {
		if resp, raw := send(t, n, http.MethodGet, "/api/v1/media/stickers", alice.AccessToken, "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("search %d: %d %s", i+1, resp.StatusCode, raw)
		}
	}
	resp, raw := send(t, n, http.MethodGet, "/api/v1/media/stickers", alice.AccessToken, "", nil)
	if resp.StatusCode != http.StatusTooManyRequests || problemCode(t, resp, raw) != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the rate: %d %s", resp.StatusCode, raw)
	}
}

func TestGiphyEndToEnd(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() || r.URL.Query().Get("api_key") != "secret-giphy-key" {
			http.Error(w, `{"meta":{"status":503}}`, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"data":[{"type":"gif","id":"abc","title":"Dancing %s","images":{
			"original":{"url":"https://media.giphy.com/media/abc/giphy.gif","width":"480","height":"360","size":"1"},
			"fixed_width":{"url":"https://media.giphy.com/media/abc/200w.gif","width":"200","height":"150","size":"1"}}}],
			"pagination":{"total_count":100,"count":1,"offset":0},"meta":{"status":200,"msg":"OK","response_id":"x"}}`, r.URL.Query().Get("q"))
	}))
	t.Cleanup(fake.Close)
	n := servertest.New(t, store.SQLite, func(c *config.Config) {
		c.GiphyAPIKey, c.GiphyURL, c.RateLimits = "secret-giphy-key", fake.URL, false
	})
	alice := n.Register(t, "alice")
	resp, raw := send(t, n, http.MethodGet, "/api/v1/media/gifs?q=cat", alice.AccessToken, "", nil)
	var page searchJSON
	json.Unmarshal(raw, &page)
	if resp.StatusCode != http.StatusOK || len(page.Items) != 1 || page.Items[0].Title != "Dancing cat" ||
		page.Items[0].Full.Width != 480 || page.Items[0].Preview.URL != "https://media.giphy.com/media/abc/200w.gif" || page.NextCursor != "1" {
		t.Fatalf("search: %d %s", resp.StatusCode, raw)
	}
	if strings.Contains(string(raw), "secret-giphy-key") {
		t.Fatal("the API key reached the client")
	}
	failing.Store(true)
	resp, raw = send(t, n, http.MethodGet, "/api/v1/media/stickers?q=dog", alice.AccessToken, "", nil)
	if resp.StatusCode != http.StatusBadGateway || problemCode(t, resp, raw) != "upstream_failed" || strings.Contains(string(raw), "secret-giphy-key") {
		t.Errorf("upstream down: %d %s", resp.StatusCode, raw)
	}
}
