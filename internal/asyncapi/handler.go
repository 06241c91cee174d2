package asyncapi

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// The paths Mount serves.
const (
	DocumentPath = "/asyncapi.json"
	PagePath     = "/docs/websocket"
)

// Router is where Mount registers its two pages (the API's chi router).
type Router interface {
	Get(pattern string, h http.HandlerFunc)
}

// Mount renders doc as JSON and as the HTML reference, once, and serves them at DocumentPath and
// PagePath. Both are public, like /openapi.json and /docs.
func Mount(r Router, doc *Document) error {
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("asyncapi: encode document: %w", err)
	}
	html, err := renderPage(doc)
	if err != nil {
		return err
	}
	r.Get(DocumentPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(js)
	})
	r.Get(PagePath, func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		_, _ = w.Write(html)
	})
	return nil
}
