package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/gif"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
)

// giphyItem renders one entry of Giphy's "data" array the way the API returns it (abridged: real
// answers carry many more fields, which must be ignored).
func giphyItem(id, title string) string {
	return fmt.Sprintf(`{"type":"gif","id":%q,"url":"https://giphy.com/gifs/%[1]s","slug":"x-%[1]s",
	"bitly_gif_url":"https://gph.is/x","embed_url":"https://giphy.com/embed/%[1]s","username":"","source":"",
	"title":%[2]q,"rating":"g","content_url":"","source_tld":"","source_post_url":"","is_sticker":0,
	"import_datetime":"2016-06-03 14:47:19","trending_datetime":"0000-00-00 00:00:00",
	"images":{
		"original":{"height":"270","width":"480","size":"1572833","url":"https://media2.giphy.com/media/%[1]s/giphy.gif?cid=abc&rid=giphy.gif&ct=g","mp4_size":"236510","mp4":"https://media2.giphy.com/media/%[1]s/giphy.mp4","webp_size":"471570","webp":"https://media2.giphy.com/media/%[1]s/giphy.webp","frames":"40","hash":"ff"},
		"fixed_width":{"height":"113","width":"200","size":"344540","url":"https://media2.giphy.com/media/%[1]s/200w.gif?cid=abc&rid=200w.gif&ct=g","mp4_size":"46712","mp4":"https://media2.giphy.com/media/%[1]s/200w.mp4","webp_size":"133998","webp":"https://media2.giphy.com/media/%[1]s/200w.webp"},
		"fixed_height_small":{"height":"100","width":"178","size":"1","url":"https://media2.giphy.com/media/%[1]s/100.gif"}
	},
	"user":{"avatar_url":"https://media2.giphy.com/avatars/x.gif","username":"someone","display_name":"Someone","is_verified":false},
	"analytics_response_payload":"e=abc","analytics":{"onload":{"url":"https://giphy-analytics.giphy.com/v2/pingback_simple?x"}},
	"alt_text":""}`, id, title)
}

type fakeGiphy struct {
	*httptest.Server
	calls   atomic.Int64
	last    atomic.Pointer[http.Request]
	status  int
	delay   time.Duration
	garbage bool
}

func newFakeGiphy(t *testing.T) *fakeGiphy {
	f := &fakeGiphy{status: http.StatusOK}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		f.last.Store(r)
		if f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-r.Context().Done():
				return
			}
		}
		if r.URL.Query().Get("api_key") != "test-key" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"data":[],"meta":{"status":401,"msg":"No API key found in request.","response_id":""}}`)
			return
		}
		if f.status != http.StatusOK {
			w.WriteHeader(f.status)
			fmt.Fprint(w, `{"meta":{"status":500,"msg":"Internal Server Error","response_id":"x"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if f.garbage {
			fmt.Fprint(w, `{"data": [`)
			return
		}
		items := []string{giphyItem("3o7TKSjRrfIPjeiVyM", "Happy Cat GIF"), giphyItem("JIX9t2j0ZTN9S", "Cat Typing GIF"),
			strings.Replace(giphyItem("evil", "Bad URL"), "https://media2.giphy.com/media/evil/giphy.gif", "javascript:alert(1)", 1)}
		fmt.Fprintf(w, `{"data":[%s],"pagination":{"total_count":3548,"count":3,"offset":%s},"meta":{"status":200,"msg":"OK","response_id":"r1"}}`,
			strings.Join(items, ","), r.URL.Query().Get("offset"))
	}))
	t.Cleanup(f.Close)
	return f
}

func TestGiphy(t *testing.T) {
	t.Parallel()
	fake := newFakeGiphy(t)
	g := NewGiphy(fake.URL, "test-key")
	ctx := context.Background()

	page, err := g.Search(ctx, SearchQuery{Kind: SearchGIFs, Q: "cats", Offset: 10, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	r := fake.last.Load()
	if r.URL.Path != "/v1/gifs/search" || r.URL.Query().Get("q") != "cats" || r.URL.Query().Get("limit") != "3" ||
		r.URL.Query().Get("offset") != "10" || r.URL.Query().Get("rating") != "pg-13" {
		t.Errorf("request: %s", r.URL)
	}
	want := SearchPage{Next: 13, Items: []SearchItem{
		{ID: "giphy-3o7TKSjRrfIPjeiVyM", Title: "Happy Cat GIF",
			Preview: Rendition{URL: "https://media2.giphy.com/media/3o7TKSjRrfIPjeiVyM/200w.gif?cid=abc&rid=200w.gif&ct=g", Width: 200, Height: 113},
			Full:    Rendition{URL: "https://media2.giphy.com/media/3o7TKSjRrfIPjeiVyM/giphy.gif?cid=abc&rid=giphy.gif&ct=g", Width: 480, Height: 270}},
		{ID: "giphy-JIX9t2j0ZTN9S", Title: "Cat Typing GIF",
			Preview: Rendition{URL: "https://media2.giphy.com/media/JIX9t2j0ZTN9S/200w.gif?cid=abc&rid=200w.gif&ct=g", Width: 200, Height: 113},
			Full:    Rendition{URL: "https://media2.giphy.com/media/JIX9t2j0ZTN9S/giphy.gif?cid=abc&rid=giphy.gif&ct=g", Width: 480, Height: 270}},
	}}
	if d := cmp.Diff(want, page); d != "" {
		t.Errorf("page (-want +got):\n%s", d)
	}
	if _, err := g.Search(ctx, SearchQuery{Kind: SearchStickers, Limit: 5}); err != nil {
		t.Fatal(err)
	}
	if r := fake.last.Load(); r.URL.Path != "/v1/stickers/trending" || r.URL.Query().Has("q") {
		t.Errorf("trending stickers request: %s", r.URL)
	}
}

func TestGiphyFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(f *fakeGiphy, g *Giphy)
	}{
		{"server error", func(f *fakeGiphy, _ *Giphy) { f.status = http.StatusInternalServerError }},
		{"wrong key", func(_ *fakeGiphy, g *Giphy) { g.key = "revoked" }},
		{"truncated json", func(f *fakeGiphy, _ *Giphy) { f.garbage = true }},
		{"timeout", func(f *fakeGiphy, g *Giphy) { f.delay = 5 * time.Second; g.client.Timeout = 50 * time.Millisecond }},
		{"unreachable", func(f *fakeGiphy, g *Giphy) { g.base = "http://127.0.0.1:1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGiphy(t)
			g := NewGiphy(f.URL, "test-key")
			tc.setup(f, g)
			start := time.Now()
			_, err := g.Search(context.Background(), SearchQuery{Kind: SearchGIFs, Q: "x", Limit: 1})
			wantErrCode(t, err, apperr.KindUpstream, "upstream_failed")
			if strings.Contains(err.Error(), "test-key") || strings.Contains(err.Error(), "revoked") {
				t.Errorf("the error reveals the API key: %v", err)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
		})
	}
}

// countingProvider counts calls and answers a page naming the query.
type countingProvider struct {
	calls atomic.Int64
	err   error
}

func (p *countingProvider) Search(_ context.Context, q SearchQuery) (SearchPage, error) {
	p.calls.Add(1)
	if p.err != nil {
		return SearchPage{}, p.err
	}
	return SearchPage{Items: []SearchItem{{ID: fmt.Sprintf("%s|%s|%d|%d", q.Kind, q.Q, q.Offset, q.Limit)}}, Next: q.Offset + q.Limit}, nil
}

func TestSearchCacheLimitsAndCursor(t *testing.T) {
	t.Parallel()
	p := &countingProvider{}
	s := NewSearch(p, ratelimit.Noop{})
	now := time.Now()
	s.now = func() time.Time { return now }
	ctx := context.Background()
	get := func(q, cursor string, limit int) SearchPage {
		t.Helper()
		page, err := s.Find(ctx, "u1", SearchGIFs, q, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
	if got := get("  Happy   CATS ", "", 0).Items[0].ID; got != "gifs|happy cats|0|25" {
		t.Errorf("normalized query: %s", got)
	}
	get("happy cats", "", 25)
	if p.calls.Load() != 1 {
		t.Errorf("%d provider calls, want 1 (cached)", p.calls.Load())
	}
	if got := get("happy cats", "25", 500).Items[0].ID; got != "gifs|happy cats|25|50" {
		t.Errorf("second page, limit clamped: %s", got)
	}
	now = now.Add(searchCacheTTL + time.Second)
	get("happy cats", "", 25)
	if p.calls.Load() != 3 {
		t.Errorf("%d provider calls after expiry, want 3", p.calls.Load())
	}
	for _, c := range []string{"x", "-1", "5000", "1e3"} {
		_, err := s.Find(ctx, "u1", SearchGIFs, "", c, 0)
		wantErrCode(t, err, apperr.KindInvalid, "validation_failed")
	}
	if page := get("", "4990", 25); page.Next != 0 {
		t.Errorf("next beyond the provider's last offset: %d, want 0", page.Next)
	}
	// Failures are not cached.
	p.err = errors.New("down")
	if _, err := s.Find(ctx, "u1", SearchStickers, "new", "", 0); err == nil {
		t.Fatal("want the provider's error")
	}
	p.err = nil
	get("new", "", 0)
	// The cache stays bounded.
	for i := range searchCacheMax + 10 {
		get(fmt.Sprintf("q%d", i), "", 1)
	}
	if n := len(s.cache); n > searchCacheMax {
		t.Errorf("cache holds %d entries, want at most %d", n, searchCacheMax)
	}
}

func TestSearchRateLimitPerUser(t *testing.T) {
	t.Parallel()
	s := NewSearch(&countingProvider{}, ratelimit.NewMemory(ratelimit.PerMinute(3)))
	ctx := context.Background()
	for i := range 3 {
		if _, err := s.Find(ctx, "alice", SearchGIFs, "x", "", 0); err != nil {
			t.Fatalf("search %d: %v", i, err)
		}
	}
	_, err := s.Find(ctx, "alice", SearchGIFs, "x", "", 0)
	wantErrCode(t, err, apperr.KindRateLimited, "rate_limited")
	if ae, _ := apperr.As(err); ae.RetryAfter <= 0 {
		t.Errorf("no retry hint")
	}
	if _, err := s.Find(ctx, "bob", SearchGIFs, "x", "", 0); err != nil {
		t.Errorf("another user is limited too: %v", err)
	}
}

func TestBuiltin(t *testing.T) {
	t.Parallel()
	b := &Builtin{}
	ctx := context.Background()
	all, _ := b.Search(ctx, SearchQuery{Kind: SearchStickers, Limit: 50})
	if len(all.Items) != 8 || all.Next != 0 {
		t.Fatalf("trending stickers: %d items, next %d", len(all.Items), all.Next)
	}
	gifs, _ := b.Search(ctx, SearchQuery{Kind: SearchGIFs, Limit: 50})
	if len(gifs.Items) != 4 {
		t.Fatalf("trending GIFs: %d items", len(gifs.Items))
	}
	for q, want := range map[string]string{"heart": "builtin-heart", "happy face": "builtin-smile", "sleep": "builtin-moon"} {
		page, _ := b.Search(ctx, SearchQuery{Kind: SearchStickers, Q: q, Limit: 50})
		if len(page.Items) != 1 || page.Items[0].ID != want {
			t.Errorf("stickers %q: %+v, want %s", q, page.Items, want)
		}
	}
	if page, _ := b.Search(ctx, SearchQuery{Kind: SearchGIFs, Q: "love", Limit: 50}); len(page.Items) != 1 || page.Items[0].ID != "builtin-heartbeat" {
		t.Errorf("gifs love: %+v", page.Items)
	}
	if page, _ := b.Search(ctx, SearchQuery{Kind: SearchStickers, Q: "nothing matches", Limit: 50}); page.Items == nil || len(page.Items) != 0 {
		t.Errorf("no match: %+v", page)
	}
	p1, _ := b.Search(ctx, SearchQuery{Kind: SearchStickers, Limit: 3})
	p3, _ := b.Search(ctx, SearchQuery{Kind: SearchStickers, Offset: 6, Limit: 3})
	if len(p1.Items) != 3 || p1.Next != 3 || len(p3.Items) != 2 || p3.Next != 0 {
		t.Errorf("pages: %d next %d; %d next %d", len(p1.Items), p1.Next, len(p3.Items), p3.Next)
	}
	for _, it := range append(all.Items, gifs.Items...) {
		for _, r := range []Rendition{it.Full, it.Preview} {
			a, ok := b.asset(strings.TrimPrefix(r.URL, builtinPrefix))
			if !ok {
				t.Fatalf("%s: no asset at %s", it.ID, r.URL)
			}
			switch a.contentType {
			case "image/png":
				img, err := png.Decode(bytes.NewReader(a.data))
				if err != nil || img.Bounds().Dx() != r.Width {
					t.Errorf("%s: %v %v", r.URL, err, img.Bounds())
				}
				if _, _, _, alpha := img.At(0, 0).RGBA(); alpha != 0 {
					t.Errorf("%s: the corner is not transparent", r.URL)
				}
			case "image/gif":
				g, err := gif.DecodeAll(bytes.NewReader(a.data))
				if err != nil || len(g.Image) < 2 || g.Config.Width != r.Width {
					t.Errorf("%s: %v, %d frames", r.URL, err, len(g.Image))
				}
			default:
				t.Errorf("%s: type %s", r.URL, a.contentType)
			}
		}
	}
}
