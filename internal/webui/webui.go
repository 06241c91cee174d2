// Package webui serves NeruTalk's web client: the single-page app that web/app builds into dist/
// (committed, so the Go build never needs Node), embedded in the binary and answered at /.
//
// Every answer carries a strict Content-Security-Policy (CSP below; SECURITY.md explains each
// directive). Hashed files under /assets/ are immutable for a year; index.html and the other
// files at the root revalidate (no-cache) with their ETag. Bodies are gzipped, once, on the first
// request that accepts gzip. Unknown GET paths outside the API that ask for HTML get index.html
// (the app routes in the browser); everything else keeps the router's NotFound, so the API's 404s
// stay problem documents.
//
// The files are read and hashed once, in New; the Handler is safe for concurrent use.
package webui

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nerutalk/nerutalk/internal/httpapi"
)

//go:embed all:dist
var dist embed.FS

// CSP is the policy of every answer of the web client, but for connect-src, which New's handler
// completes with the WebSocket URLs of the host the browser asked for (ws: and wss:, so that it
// works behind a TLS proxy as well as on plain loopback; CSP 'self' covers them only in the
// browsers that implement CSP level 3 fully).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// ImmutableCache is the Cache-Control of the hashed files under /assets/.
const ImmutableCache = "public, max-age=31536000, immutable"

// file is one embedded file, with what its answers need.
type file struct {
	body        []byte
	contentType string
	etag        string
	immutable   bool
	gzipped     func() []byte // nil when gzip does not save a tenth
}

// Handler answers the web client's files.
type Handler struct {
	files map[string]*file // by URL path: "/", "/assets/index-abc.js", "/favicon.svg"
}

// New reads the embedded build.
func New() (*Handler, error) { return newFromFS(dist, "dist") }

func newFromFS(fsys fs.FS, root string) (*Handler, error) {
	h := &Handler{files: map[string]*file{}}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root) // "/index.html", "/assets/x.js"
		sum := sha256.Sum256(body)
		f := &file{body: body, contentType: contentType(rel), immutable: strings.HasPrefix(rel, "/assets/"),
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`, gzipped: httpapi.GzipOnce(body)}
		if rel == "/index.html" {
			rel = "/"
		}
		h.files[rel] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webui: embedded build: %w", err)
	}
	if h.files["/"] == nil {
		return nil, fmt.Errorf("webui: embedded build has no index.html")
	}
	return h, nil
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8", ".json": "application/json", ".webmanifest": "application/manifest+json",
	".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".webp": "image/webp", ".jpg": "image/jpeg",
	".woff2": "font/woff2", ".woff": "font/woff", ".txt": "text/plain; charset=utf-8", ".map": "application/json",
}

func contentType(name string) string {
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		return ct
	}
	return "application/octet-stream"
}

// Mount registers the client's routes on r: / and every embedded file, and a NotFound that
// answers index.html to the browser's navigations (GET or HEAD, Accept: text/html) outside the
// server's own trees, falling back to r's current NotFound for the rest. Call it last, after
// every other route and the router's NotFound.
func (h *Handler) Mount(r *chi.Mux) {
	for p := range h.files {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			r.Method(m, p, h.serve(p))
		}
	}
	notFound := r.NotFoundHandler()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		// A file that is not (or no longer) in the build: its own 404, never index.html.
		r.Method(m, "/assets/*", notFound)
	}
	index := h.serve("/")
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		if IsAppNavigation(req) {
			index(w, req)
			return
		}
		notFound(w, req)
	})
}

// serverTrees are the path prefixes the server answers itself: a miss there is the server's 404.
var serverTrees = []string{"/api", "/docs", "/debug", "/assets", "/openapi", "/asyncapi", "/metrics", "/healthz", "/readyz"}

// IsAppNavigation reports whether r is a browser's navigation to a path of the app: GET or HEAD,
// accepting text/html, outside the server's own trees.
func IsAppNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, t := range serverTrees {
		if r.URL.Path == t || strings.HasPrefix(r.URL.Path, t+"/") || strings.HasPrefix(r.URL.Path, t+".") {
			return false
		}
	}
	return strings.Contains(strings.ToLower(r.Header.Get("Accept")), "text/html")
}

// hostSource matches a Host header that may go into the policy as is (a name or an address and
// a port); anything else gets the policy without the WebSocket sources ('self' still covers them
// in current browsers).
var hostSource = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$`)

// PolicyFor is the Content-Security-Policy of an answer to a request for host.
func PolicyFor(host string) string {
	connect := "connect-src 'self'"
	if hostSource.MatchString(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return CSP + "; " + connect
}

func (h *Handler) serve(p string) http.HandlerFunc {
	f := h.files[p]
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", PolicyFor(r.Host))
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Vary", "Accept-Encoding")
		hd.Set("ETag", f.etag)
		if f.immutable {
			hd.Set("Cache-Control", ImmutableCache)
		} else {
			hd.Set("Cache-Control", "no-cache")
		}
		if httpapi.ETagMatches(r.Header.Get("If-None-Match"), f.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		hd.Set("Content-Type", f.contentType)
		body := f.body
		if httpapi.AcceptsGzip(r.Header.Get("Accept-Encoding")) {
			if gz := f.gzipped(); gz != nil {
				hd.Set("Content-Encoding", "gzip")
				body = gz
			}
		}
		hd.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}
}
