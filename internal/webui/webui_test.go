package webui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/go-chi/chi/v5"
)

var (
	indexHTML = `<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head><body>` +
		strings.Repeat("<!-- padding so that gzip pays -->", 20) + `</body></html>`
	appJS = strings.Repeat("console.log('NeruTalk');\n", 100)
)

// testRouter is a router like the server's: an API route, a problem-document NotFound, and the
// client mounted last.
func testRouter(t *testing.T) *chi.Mux {
	t.Helper()
	h, err := newFromFS(fstest.MapFS{
		"dist/index.html":             {Data: []byte(indexHTML)},
		"dist/assets/index-abc123.js": {Data: []byte(appJS)},
		"dist/favicon.svg":            {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	}, "dist")
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Get("/api/v1/ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "pong") })
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"status":404,"code":"not_found"}`)
	})
	h.Mount(r)
	return r
}

func do(r http.Handler, method, target string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.Host = "chat.example.com:8080"
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func TestServe(t *testing.T) {
	t.Parallel()
	r := testRouter(t)
	html := map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
	for _, tc := range []struct {
		name, method, target string
		header               map[string]string
		status               int
		contentType, cache   string
		body                 string // "" = not checked; "-" = empty
	}{
		{"index", "GET", "/", nil, 200, "text/html; charset=utf-8", "no-cache", indexHTML},
		{"index HEAD", "HEAD", "/", nil, 200, "text/html; charset=utf-8", "no-cache", "-"},
		{"hashed asset", "GET", "/assets/index-abc123.js", nil, 200, "text/javascript; charset=utf-8", ImmutableCache, appJS},
		{"hashed asset HEAD", "HEAD", "/assets/index-abc123.js", nil, 200, "text/javascript; charset=utf-8", ImmutableCache, "-"},
		{"root file", "GET", "/favicon.svg", nil, 200, "image/svg+xml", "no-cache", ""},
		{"SPA fallback", "GET", "/chats/0194d3", html, 200, "text/html; charset=utf-8", "no-cache", indexHTML},
		{"SPA fallback HEAD", "HEAD", "/settings", html, 200, "text/html; charset=utf-8", "no-cache", "-"},
		{"unknown path, not HTML", "GET", "/chats/0194d3", map[string]string{"Accept": "application/json"}, 404, "application/problem+json", "", ""},
		{"unknown path, no Accept", "GET", "/chats/0194d3", nil, 404, "application/problem+json", "", ""},
		{"unknown path, POST", "POST", "/chats/0194d3", html, 404, "application/problem+json", "", ""},
		{"API 404 stays a problem", "GET", "/api/v1/nope", html, 404, "application/problem+json", "", ""},
		{"API root", "GET", "/api", html, 404, "application/problem+json", "", ""},
		{"docs tree", "GET", "/docs/nope", html, 404, "application/problem+json", "", ""},
		{"missing asset", "GET", "/assets/index-old.js", html, 404, "application/problem+json", "", ""},
		{"API route", "GET", "/api/v1/ping", html, 200, "text/plain; charset=utf-8", "", "pong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := do(r, tc.method, tc.target, tc.header)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != tc.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if cc := w.Header().Get("Cache-Control"); cc != tc.cache {
				t.Errorf("Cache-Control %q, want %q", cc, tc.cache)
			}
			switch tc.body {
			case "":
			case "-":
				if w.Body.Len() != 0 {
					t.Errorf("HEAD answered a body of %d bytes", w.Body.Len())
				}
				if w.Header().Get("Content-Length") == "" {
					t.Error("HEAD without Content-Length")
				}
			default:
				if w.Body.String() != tc.body {
					t.Errorf("body %q, want %q", w.Body, tc.body)
				}
			}
			if tc.status == 200 && tc.cache != "" {
				if got, want := w.Header().Get("Content-Security-Policy"), PolicyFor("chat.example.com:8080"); got != want {
					t.Errorf("CSP %q, want %q", got, want)
				}
				if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Referrer-Policy") != "no-referrer" {
					t.Errorf("security headers missing: %v", w.Header())
				}
				if w.Header().Get("ETag") == "" {
					t.Error("no ETag")
				}
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ host, connect string }{
		{"127.0.0.1:8080", "connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080"},
		{"chat.example.com", "connect-src 'self' ws://chat.example.com wss://chat.example.com"},
		{"[::1]:8080", "connect-src 'self' ws://[::1]:8080 wss://[::1]:8080"},
		{"evil.com; script-src *", "connect-src 'self'"},
		{"", "connect-src 'self'"},
	} {
		p := PolicyFor(tc.host)
		if !strings.HasSuffix(p, "; "+tc.connect) {
			t.Errorf("PolicyFor(%q) = %q, want it to end with %q", tc.host, p, tc.connect)
		}
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' blob: data:",
			"media-src 'self' blob:", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(p, d+";") {
				t.Errorf("PolicyFor(%q) = %q: no %q", tc.host, p, d)
			}
		}
		if strings.Contains(p, "unsafe") {
			t.Errorf("PolicyFor(%q) = %q: unsafe source", tc.host, p)
		}
	}
}

func TestETag(t *testing.T) {
	t.Parallel()
	r := testRouter(t)
	for _, target := range []string{"/", "/assets/index-abc123.js"} {
		first := do(r, "GET", target, nil)
		etag := first.Header().Get("ETag")
		for _, tc := range []struct {
			inm    string
			status int
		}{
			{etag, http.StatusNotModified},
			{"W/" + etag, http.StatusNotModified},
			{`"other", ` + etag, http.StatusNotModified},
			{`"other"`, http.StatusOK},
		} {
			w := do(r, "GET", target, map[string]string{"If-None-Match": tc.inm})
			if w.Code != tc.status {
				t.Errorf("%s If-None-Match %s: %d, want %d", target, tc.inm, w.Code, tc.status)
			}
			if tc.status == http.StatusNotModified && (w.Body.Len() != 0 || w.Header().Get("ETag") != etag) {
				t.Errorf("%s 304: body %d bytes, ETag %q", target, w.Body.Len(), w.Header().Get("ETag"))
			}
		}
	}
	if a, b := do(r, "GET", "/", nil).Header().Get("ETag"), do(r, "GET", "/assets/index-abc123.js", nil).Header().Get("ETag"); a == b {
		t.Errorf("two files share the ETag %s", a)
	}
}

func TestGzip(t *testing.T) {
	t.Parallel()
	r := testRouter(t)
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"gzip, deflate, br", true},
		{"br;q=1.0, gzip;q=0.8", true},
		{"*", true},
		{"gzip;q=0", false},
		{"identity", false},
		{"", false},
	} {
		for _, target := range []string{"/", "/assets/index-abc123.js"} {
			w := do(r, "GET", target, map[string]string{"Accept-Encoding": tc.accept})
			if w.Header().Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s: Vary %q", target, w.Header().Get("Vary"))
			}
			gotGzip := w.Header().Get("Content-Encoding") == "gzip"
			if gotGzip != tc.gzip {
				t.Errorf("%s Accept-Encoding %q: gzip %v, want %v", target, tc.accept, gotGzip, tc.gzip)
				continue
			}
			body := w.Body.Bytes()
			if gotGzip {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			want := map[string]string{"/": indexHTML, "/assets/index-abc123.js": appJS}[target]
			if string(body) != want {
				t.Errorf("%s Accept-Encoding %q: body differs from the file", target, tc.accept)
			}
		}
	}
}

// TestEmbedded checks the build that the binary carries: an index.html, and every asset it links
// is embedded.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	index := string(h.files["/"].body)
	for _, m := range assetRef.FindAllStringSubmatch(index, -1) {
		if h.files[m[1]] == nil {
			t.Errorf("index.html links %s, which is not embedded", m[1])
		}
	}
}

// assetRef finds the root-relative URLs of index.html's scripts and stylesheets.
var assetRef = regexp.MustCompile(`(?:src|href)="(/[^"?#]+)"`)

func TestIsAppNavigation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path, accept string
		want                 bool
	}{
		{"GET", "/chats", "text/html", true},
		{"HEAD", "/x/y", "TEXT/HTML", true},
		{"GET", "/apiary", "text/html", true},
		{"GET", "/api", "text/html", false},
		{"GET", "/api/v1/chats", "text/html", false},
		{"GET", "/openapi.yaml", "text/html", false},
		{"GET", "/metrics", "text/html", false},
		{"GET", "/chats", "*/*", false},
		{"DELETE", "/chats", "text/html", false},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Header.Set("Accept", tc.accept)
		if got := IsAppNavigation(req); got != tc.want {
			t.Errorf("%s %s Accept %s: %v, want %v", tc.method, tc.path, tc.accept, got, tc.want)
		}
	}
}
