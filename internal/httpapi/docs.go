package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/nerutalk/nerutalk/docs"
)

// The /docs page is the REST reference rendered in the browser by Swagger UI from /openapi.json.
// Swagger UI is vendored (scripts/vendor-docs-ui.sh copies the pinned npm build into docsui/) and
// embedded, so the page loads nothing from the internet, and its Content-Security-Policy says so.
// Next to it: the repository's Markdown guides at /docs/<name>.md (docs/websocket.md first).

//go:embed docsui
var docsUI embed.FS

// docsCSP is the policy of the /docs page. Everything comes from this server ('self'); Swagger UI
// needs no inline script (its start-up is docsui/docs.js) and no eval. What it does need:
// img-src data: for the icons its stylesheet inlines as data: URLs, and blob: for the image
// answers that "Try it out" shows; connect-src 'self' for the OpenAPI document and "Try it out".
// style-src 'unsafe-inline' is not needed: React sets the style props of Swagger UI's components
// through the CSSOM, which CSP allows.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// docsAsset is one file under /docs/assets/: its bytes, the hash that makes its URL (…?v=hash)
// immutable, and its gzipped bytes, made on the first request that accepts gzip.
type docsAsset struct {
	body        []byte
	contentType string
	hash        string
	gzipped     func() []byte // the gzipped bytes, or nil when gzip does not save a tenth
}

// docsAssets reads and hashes the embedded files once per process, on the first request of /docs
// or an asset (not in New: most processes never serve the page). Gzip waits for a client that
// takes it.
var docsAssets = sync.OnceValue(func() map[string]*docsAsset {
	assets := map[string]*docsAsset{}
	entries, err := fs.ReadDir(docsUI, "docsui")
	if err != nil {
		panic("httpapi: embedded docsui: " + err.Error()) // cannot happen: the directory is embedded
	}
	for _, e := range entries {
		body, err := docsUI.ReadFile("docsui/" + e.Name())
		if err != nil {
			panic("httpapi: embedded docsui: " + err.Error())
		}
		sum := sha256.Sum256(body)
		assets[e.Name()] = &docsAsset{body: body, hash: hex.EncodeToString(sum[:8]),
			contentType: assetContentType(e.Name()), gzipped: GzipOnce(body)}
	}
	return assets
})

func assetContentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	default: // LICENSE, VERSION
		return "text/plain; charset=utf-8"
	}
}

// mountDocs registers the human documentation: the page, its assets and the Markdown guides.
func (a *API) mountDocs(r chi.Router) {
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		r.Method(m, "/docs", http.HandlerFunc(a.serveDocs))
		r.Method(m, "/docs/assets/{name}", http.HandlerFunc(serveDocsAsset))
		r.Method(m, "/docs/{page:[A-Za-z0-9_-]+}.md", http.HandlerFunc(serveMarkdown))
	}
}

// The page's URLs are relative to /docs (docs/assets/…, openapi.json), so it also works behind a
// reverse proxy that serves the node under a path prefix.
var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} reference</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css?v={{.Hash "swagger-ui.css"}}">
<link rel="stylesheet" href="docs/assets/docs.css?v={{.Hash "docs.css"}}">
</head><body>
<header class="nt-bar"><strong>{{.Title}}</strong> <span class="nt-version">{{.Version}}</span>
<nav aria-label="References">
<a href="docs" aria-current="page">REST API</a>
<a href="docs/websocket">WebSocket protocol</a>
<a href="docs/websocket.md">WebSocket guide</a>
<a href="openapi.json">openapi.json</a>
<a href="asyncapi.json">asyncapi.json</a>
</nav></header>
<main id="swagger-ui" data-openapi="openapi.json"><noscript><div class="nt-noscript">This reference is drawn by
JavaScript served by this node. Without it: the REST API is described by <a href="openapi.json">openapi.json</a>
(OpenAPI 3.1), the WebSocket by <a href="asyncapi.json">asyncapi.json</a> and the guide
<a href="docs/websocket.md">websocket.md</a>.</div></noscript></main>
<script src="docs/assets/swagger-ui-bundle.js?v={{.Hash "swagger-ui-bundle.js"}}"></script>
<script src="docs/assets/docs.js?v={{.Hash "docs.js"}}"></script>
</body></html>
`))

type docsPage struct {
	Title, Version string
	assets         map[string]*docsAsset
}

// Hash is the content hash of an embedded asset, for its URL.
func (p docsPage) Hash(name string) string { return p.assets[name].hash }

// serveDocs answers the API reference page, rendered once, after every operation has been
// registered.
func (a *API) serveDocs(w http.ResponseWriter, r *http.Request) {
	a.docsOnce.Do(func() {
		info := a.Root.OpenAPI().Info
		var buf bytes.Buffer
		if err := docsTemplate.Execute(&buf, docsPage{Title: info.Title, Version: info.Version, assets: docsAssets()}); err != nil {
			panic("httpapi: docs template: " + err.Error()) // a bug in the template, caught by the tests
		}
		a.docsHTML = buf.Bytes()
	})
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(a.docsHTML)
}

// serveDocsAsset answers /docs/assets/{name}. A URL that carries the asset's current hash
// (?v=…, as the page writes it) is cached for a year; any other revalidates with the ETag.
func serveDocsAsset(w http.ResponseWriter, r *http.Request) {
	asset := docsAssets()[chi.URLParam(r, "name")]
	if asset == nil {
		WriteProblem(w, r, ProblemFor(r.Context(), http.StatusNotFound, "no such asset"))
		return
	}
	h := w.Header()
	etag := `"` + asset.hash + `"`
	h.Set("ETag", etag)
	h.Set("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == asset.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if ETagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", asset.contentType)
	body := asset.body
	if AcceptsGzip(r.Header.Get("Accept-Encoding")) {
		if gz := asset.gzipped(); gz != nil {
			h.Set("Content-Encoding", "gzip")
			body = gz
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// serveMarkdown answers /docs/{page}.md with the embedded docs/{page}.md, as Markdown text.
func serveMarkdown(w http.ResponseWriter, r *http.Request) {
	body, err := docs.Markdown.ReadFile(chi.URLParam(r, "page") + ".md")
	if err != nil {
		WriteProblem(w, r, ProblemFor(r.Context(), http.StatusNotFound, "no such document"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/markdown; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(body)
}
