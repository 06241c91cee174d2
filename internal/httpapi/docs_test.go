package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every URL the page loads or links: src and href attributes.
var attrURL = regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']?([^"'\s>]*)`)

// TestDocsPage: /docs is the Swagger UI page, with a strict CSP, that loads only this server's
// assets through relative URLs (so a path prefix works) and links the other references.
func TestDocsPage(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	resp, raw := a.do(t, request{path: "/docs"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("/docs: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := directives(resp.Header.Get("Content-Security-Policy"))
	for directive, want := range map[string]string{
		"default-src": "'none'", "script-src": "'self'", "style-src": "'self'", "connect-src": "'self'",
		"font-src": "", "frame-ancestors": "'none'", "base-uri": "'none'",
	} {
		if got := csp[directive]; got != want {
			t.Errorf("CSP %s = %q, want %q (policy %q)", directive, got, want, resp.Header.Get("Content-Security-Policy"))
		}
	}
	for _, src := range strings.Fields(csp["img-src"]) {
		if src != "'self'" && src != "data:" && src != "blob:" {
			t.Errorf("CSP img-src allows %q", src)
		}
	}
	for _, v := range csp {
		if strings.Contains(v, "unsafe") || strings.Contains(v, "http") || strings.Contains(v, "*") {
			t.Errorf("CSP is not strict: %q", resp.Header.Get("Content-Security-Policy"))
		}
	}

	html := string(raw)
	if strings.Contains(html, "https://") || strings.Contains(html, "http://") || strings.Contains(html, "//cdn") {
		t.Error("/docs names an absolute URL")
	}
	links := map[string]bool{}
	for _, m := range attrURL.FindAllStringSubmatch(html, -1) {
		u, err := url.Parse(m[1])
		if err != nil || u.IsAbs() || u.Host != "" || strings.HasPrefix(m[1], "/") {
			t.Errorf("/docs loads or links %q: want a relative URL on this server", m[1])
			continue
		}
		links[u.Path] = true
	}
	for _, want := range []string{"openapi.json", "docs/websocket", "docs/websocket.md", "asyncapi.json",
		"docs/assets/swagger-ui-bundle.js", "docs/assets/swagger-ui.css", "docs/assets/docs.js"} {
		if !links[want] {
			t.Errorf("/docs does not load or link %q (has %v)", want, links)
		}
	}
	if strings.Count(html, "<script") != strings.Count(html, "<script src=") {
		t.Error("/docs has an inline script; the CSP forbids them")
	}
	if strings.Contains(html, "<style") || strings.Contains(html, "style=") {
		t.Error("/docs has an inline style; the CSP forbids them")
	}
	if !strings.Contains(html, "NeruTalk API") || !strings.Contains(html, "test") {
		t.Error("/docs does not name the API and its version")
	}
}

// directives splits a Content-Security-Policy into directive → sources.
func directives(policy string) map[string]string {
	out := map[string]string{}
	for _, d := range strings.Split(policy, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			out[name] = strings.TrimSpace(value)
		}
	}
	return out
}

// TestDocsAssets: the page's assets are served from the binary with their content type, a year
// of caching at the hashed URL the page uses, an ETag, and gzip for clients that take it.
func TestDocsAssets(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	_, page := a.do(t, request{path: "/docs"})
	hashed := map[string]string{}
	for _, m := range regexp.MustCompile(`docs/assets/([^"?]+)\?v=([0-9a-f]+)`).FindAllStringSubmatch(string(page), -1) {
		hashed[m[1]] = m[2]
	}
	tests := []struct {
		name, contentType, contains string
	}{
		{"swagger-ui-bundle.js", "text/javascript; charset=utf-8", "SwaggerUIBundle"},
		{"swagger-ui.css", "text/css; charset=utf-8", ".swagger-ui"},
		{"docs.js", "text/javascript; charset=utf-8", "validatorUrl: null"},
		{"docs.css", "text/css; charset=utf-8", ".nt-bar"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := hashed[tc.name]
			if v == "" {
				t.Fatalf("the page does not load docs/assets/%s?v=<hash>", tc.name)
			}
			path := "/docs/assets/" + tc.name + "?v=" + v
			resp, body := a.do(t, request{path: path})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", path, resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if got := resp.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control at the hashed URL = %q", got)
			}
			etag := resp.Header.Get("ETag")
			if etag != `"`+v+`"` {
				t.Errorf("ETag = %q, want the hash %q", etag, v)
			}
			if !bytes.Contains(body, []byte(tc.contains)) {
				t.Errorf("body does not contain %q", tc.contains)
			}

			// Without the hash (an old page, a hand-typed URL): revalidate every time.
			resp, _ = a.do(t, request{path: "/docs/assets/" + tc.name})
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control without the hash = %q, want no-cache", got)
			}
			resp, body304 := a.do(t, request{path: "/docs/assets/" + tc.name, header: map[string]string{"If-None-Match": etag}})
			if resp.StatusCode != http.StatusNotModified || len(body304) != 0 {
				t.Errorf("If-None-Match %s: %d with %d bytes, want 304 and no body", etag, resp.StatusCode, len(body304))
			}

			// Asking for gzip by hand keeps the transport from decompressing it.
			resp, gz := a.do(t, request{path: path, header: map[string]string{"Accept-Encoding": "gzip"}})
			if resp.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("Vary = %q", resp.Header.Get("Vary"))
			}
			if resp.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(gz))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := io.ReadAll(zr)
				if err != nil || !bytes.Equal(plain, body) {
					t.Errorf("gzipped body does not decompress to the body (err %v)", err)
				}
			} else if len(body) > 100_000 {
				t.Errorf("a %d-byte asset is not gzipped for a client that takes gzip", len(body))
			}
		})
	}

	resp, _ := a.do(t, request{path: "/docs/assets/nope.js"})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown asset: %d, want 404", resp.StatusCode)
	}
}

// TestVendoredRendererIsOffline: the vendored bundle's start-up (docs.js) turns off what would
// reach the internet at view time, and the bundle is the one the vendoring script writes.
func TestVendoredRendererIsOffline(t *testing.T) {
	t.Parallel()
	init, err := os.ReadFile("docsui/docs.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"validatorUrl: null", "queryConfigEnabled: false"} {
		if !bytes.Contains(init, []byte(want)) {
			t.Errorf("docs.js does not set %s", want)
		}
	}
	version, err := os.ReadFile("docsui/VERSION")
	if err != nil || !strings.HasPrefix(string(version), "swagger-ui-dist ") {
		t.Errorf("docsui/VERSION = %q, %v: run scripts/vendor-docs-ui.sh", version, err)
	}
	bundle, err := os.ReadFile("docsui/swagger-ui-bundle.js")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bundle, []byte("sourceMappingURL=")) {
		t.Error("the bundle points at a source map that is not served")
	}
}

// TestDocsMarkdown: the repository's guides are served from the binary at /docs/<name>.md.
func TestDocsMarkdown(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	want, err := os.ReadFile("../../docs/websocket.md")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		status int
	}{
		{"/docs/websocket.md", http.StatusOK},
		{"/docs/calls.md", http.StatusOK},
		{"/docs/nope.md", http.StatusNotFound},
		{"/docs/embed.go", http.StatusNotFound},
		{"/docs/..%2fREADME.md", http.StatusNotFound},
	}
	for _, tc := range tests {
		resp, body := a.do(t, request{path: tc.path})
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.status != http.StatusOK {
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != "text/markdown; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tc.path, got)
		}
		if tc.path == "/docs/websocket.md" && !bytes.Equal(body, want) {
			t.Errorf("%s is not docs/websocket.md", tc.path)
		}
	}
}
