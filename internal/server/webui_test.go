package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/webui"
)

// TestWebUI checks the web client as the node serves it, next to what it must leave alone: the
// API's 404s stay problem documents, /docs and /openapi.json keep their own answers.
func TestWebUI(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	host := strings.TrimPrefix(n.URL, "http://")
	get := func(t *testing.T, method, path, accept string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, n.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := n.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	const html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, tc := range []struct {
		name, method, path, accept string
		status                     int
		contentType                string // prefix
		csp                        string // "" = not checked
		cache                      string
	}{
		{"client", "GET", "/", html, 200, "text/html", webui.PolicyFor(host), "no-cache"},
		{"client HEAD", "HEAD", "/", "", 200, "text/html", webui.PolicyFor(host), "no-cache"},
		{"navigation fallback", "GET", "/chats/somewhere", html, 200, "text/html", webui.PolicyFor(host), "no-cache"},
		{"unknown path for a program", "GET", "/chats/somewhere", "application/json", 404, "application/problem+json", "", ""},
		{"API 404", "GET", "/api/v1/no-such-thing", html, 404, "application/problem+json", "", ""},
		{"API 405", "DELETE", "/", "", 405, "application/problem+json", "", ""},
		{"docs page", "GET", "/docs", html, 200, "text/html", "default-src 'none'; script-src 'self'", "no-cache"},
		{"OpenAPI document", "GET", "/openapi.json", html, 200, "application/", "", ""},
		{"AsyncAPI document", "GET", "/asyncapi.json", "", 200, "application/", "", ""},
		{"healthz", "GET", "/healthz", html, 200, "application/", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.method, tc.path, tc.accept)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.200s", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %q…", ct, tc.contentType)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); tc.csp != "" && !strings.HasPrefix(csp, tc.csp) {
				t.Errorf("CSP %q, want %q…", csp, tc.csp)
			}
			if cc := resp.Header.Get("Cache-Control"); tc.cache != "" && cc != tc.cache {
				t.Errorf("Cache-Control %q, want %q", cc, tc.cache)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
			if tc.status == 404 && !strings.Contains(body, `"not_found"`) {
				t.Errorf("404 is not the problem document: %.200s", body)
			}
		})
	}
	// The document does not describe the client: it is not an API operation.
	_, doc := get(t, "GET", "/openapi.json", "")
	if strings.Contains(doc, `"/":`) || strings.Contains(doc, `"/assets/`) {
		t.Error("the OpenAPI document lists the web client's routes")
	}
}
