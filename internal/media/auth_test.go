package media

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
)

// Uploads and downloads authenticate through httpapi's one path: a store failure while the token
// is checked is the 500 REST gives, never a 401; a missing token is a 401 with its challenge.
func TestFilesAuthenticationFailures(t *testing.T) {
	t.Parallel()
	broken := func(context.Context, string) (identity.Principal, error) {
		return identity.Principal{}, errors.New("sessions: connection refused")
	}
	api := httpapi.New(httpapi.Options{Authenticate: broken})
	NewFiles(nil, nil, FromConfig(config.Default(), nil)).Register(api)
	srv := httptest.NewServer(api.Router)
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		name, method, path, auth string
		status                   int
	}{
		{"download, header", http.MethodGet, "/api/v1/files/f1", "Bearer x", 500},
		{"download, query", http.MethodGet, "/api/v1/files/f1?token=x", "", 500},
		{"thumbnail, query", http.MethodGet, "/api/v1/files/f1/thumbnail?token=x", "", 500},
		{"upload", http.MethodPost, "/api/v1/files", "Bearer x", 500},
		{"download without a token", http.MethodGet, "/api/v1/files/f1", "", 401},
		{"upload without a token", http.MethodPost, "/api/v1/files", "", 401},
	} {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want a %d problem", tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status)
		}
		if challenge := resp.Header.Get("WWW-Authenticate"); (tt.status == 401) != strings.HasPrefix(challenge, "Bearer") {
			t.Errorf("%s: WWW-Authenticate = %q", tt.name, challenge)
		}
	}
}
