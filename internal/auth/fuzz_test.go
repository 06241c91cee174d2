package auth_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/store"
)

// FuzzPublicAuthBodies posts arbitrary bodies to the endpoints that anyone can reach without a
// token, through the real router: whatever arrives, the answer is never a 5xx, and every error is
// a problem document with a code.
func FuzzPublicAuthBodies(f *testing.F) {
	h := newHarness(f, store.SQLite, nil)
	h.register(f, "fuzzed")
	paths := []string{"/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout"}
	for _, seed := range []string{
		`{"username":"ana","email":"ana@example.com","password":"correct horse"}`,
		`{"login":"fuzzed","password":"correct horse battery"}`,
		`{"login":"fuzzed@example.com","password":"x"}`,
		`{"refresh_token":"abc"}`,
		`{"username":"\u0000","email":"@","password":"\ud800"}`,
		`{"display_name":"\u202e","username":"KKK","email":"a@b","password":"12345678"}`,
		`[]`, `null`, `{"login":{"$ne":null}}`, "\xff\xfe", "",
	} {
		for i := range paths {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		req, err := http.NewRequest(http.MethodPost, h.URL+paths[int(which)%len(paths)], bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, raw)
		}
		if resp.StatusCode >= 400 {
			var p problem
			if err := json.Unmarshal(raw, &p); err != nil || p.Code == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("status %d without a problem document: %s", resp.StatusCode, raw)
			}
		}
		if resp.StatusCode < 300 && strings.Contains(paths[int(which)%len(paths)], "register") {
			// Accounts created by the fuzzer must satisfy the rules, checked again at login.
			var pair tokenPair
			if err := json.Unmarshal(raw, &pair); err != nil || pair.AccessToken == "" || pair.User.Email == nil {
				t.Fatalf("register answered %d with %s", resp.StatusCode, raw)
			}
		}
	})
}
