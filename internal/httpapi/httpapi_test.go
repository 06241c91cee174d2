package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
)

// logBuffer collects the JSON log lines of one test API.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the log lines decoded.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// find returns the first log record with msg whose attributes include attrs.
func (b *logBuffer) find(t *testing.T, msg string, attrs map[string]any) map[string]any {
	t.Helper()
	for _, r := range b.records(t) {
		if r["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range attrs {
			if r[k] != v {
				ok = false
			}
		}
		if ok {
			return r
		}
	}
	return nil
}

// testAPI is a fresh httpapi.New with a few test operations, served by httptest.
type testAPI struct {
	*httptest.Server
	api     *httpapi.API
	logs    *logBuffer
	failing *atomic.Bool // makes the "flaky" readiness check fail
}

// fakeAuth accepts the tokens "user" and "admin"; "expired" is an expired token and "broken"
// stands for an authenticator that cannot reach its database.
func fakeAuth(_ context.Context, token string) (identity.Principal, error) {
	switch token {
	case "user":
		return identity.Principal{UserID: "u1", SessionID: "s1"}, nil
	case "admin":
		return identity.Principal{UserID: "a1", SessionID: "s2", Admin: true}, nil
	case "expired":
		return identity.Principal{}, apperr.New(apperr.KindUnauthenticated, "token_expired", "access token expired")
	case "broken":
		return identity.Principal{}, errors.New("sessions table: connection refused at 10.0.0.7")
	}
	return identity.Principal{}, apperr.New(apperr.KindUnauthenticated, "invalid_token", "access token not valid")
}

type itemInput struct {
	Body struct {
		Name  string `json:"name" minLength:"3" maxLength:"10" pattern:"^[a-z]+$" doc:"Lower-case name"`
		Count int    `json:"count" minimum:"1" doc:"How many"`
	}
}

type itemOutput struct {
	Body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
}

type idOutput struct {
	Body struct {
		ID string `json:"id"`
	}
}

type whoOutput struct {
	Body struct {
		UserID string `json:"user_id"`
		Admin  bool   `json:"admin"`
	}
}

func newTestAPI(t testing.TB, mutate func(*httpapi.Options)) *testAPI {
	t.Helper()
	logs := &logBuffer{}
	failing := &atomic.Bool{}
	o := httpapi.Options{
		Logger:       slog.New(slog.NewJSONHandler(logs, nil)),
		Metrics:      httpapi.NewMetrics(),
		Version:      "test",
		MaxBodyBytes: 1024,
		Authenticate: fakeAuth,
		Ready: []httpapi.Check{
			{Name: "steady", Check: func(context.Context) error { return nil }},
			{Name: "flaky", Check: func(context.Context) error {
				if failing.Load() {
					return errors.New("flaky: connection refused")
				}
				return nil
			}},
		},
	}
	if mutate != nil {
		mutate(&o)
	}
	a := httpapi.New(o)
	tags := []string{"Test"}
	huma.Register(a.Public, huma.Operation{
		OperationID: "test-panic", Method: http.MethodGet, Path: "/test/panic", Summary: "Panics", Tags: tags,
	}, func(ctx context.Context, _ *struct{}) (*struct{}, error) {
		panic("kaboom: secret internal state")
	})
	huma.Register(a.Public, huma.Operation{
		OperationID: "test-create-item", Method: http.MethodPost, Path: "/test/items", Summary: "Validates a body",
		Tags: tags, DefaultStatus: http.StatusCreated, Errors: []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
	}, func(ctx context.Context, in *itemInput) (*itemOutput, error) {
		if in.Body.Name == "taken" {
			return nil, apperr.New(apperr.KindConflict, "name_taken", "that name is taken")
		}
		out := &itemOutput{}
		out.Body.Name, out.Body.Count = in.Body.Name, in.Body.Count
		return out, nil
	})
	huma.Register(a.Public, huma.Operation{
		OperationID: "test-get-item", Method: http.MethodGet, Path: "/test/items/{id}", Summary: "Echoes a path parameter",
		Tags: tags, Errors: []int{http.StatusNotFound, http.StatusForbidden, http.StatusTooManyRequests, http.StatusUnprocessableEntity},
	}, func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"20"`
	}) (*idOutput, error) {
		switch in.ID {
		case "missing":
			return nil, fmt.Errorf("items: get: %w", apperr.NotFound("item"))
		case "private":
			return nil, apperr.Forbidden("not yours")
		case "limited":
			return nil, apperr.RateLimited(1500 * time.Millisecond)
		case "invalid":
			return nil, apperr.Invalid("path.id", "must not be invalid")
		case "broken":
			return nil, errors.New("items: query: pq: relation items does not exist")
		}
		out := &idOutput{}
		out.Body.ID = in.ID
		return out, nil
	})
	huma.Register(a.Public, huma.Operation{
		OperationID: "test-upload", Method: http.MethodPost, Path: "/test/upload", Summary: "Takes raw bytes", Tags: tags,
		MaxBodyBytes: 8192,
	}, func(ctx context.Context, in *struct {
		RawBody []byte `contentType:"application/octet-stream"`
	}) (*idOutput, error) {
		out := &idOutput{}
		out.Body.ID = strconv.Itoa(len(in.RawBody))
		return out, nil
	})
	huma.Register(a.Authed, huma.Operation{
		OperationID: "test-whoami", Method: http.MethodGet, Path: "/test/whoami", Summary: "Returns the caller", Tags: tags,
	}, func(ctx context.Context, _ *struct{}) (*whoOutput, error) {
		p, ok := identity.From(ctx)
		if !ok {
			return nil, errors.New("no caller in an authenticated operation")
		}
		out := &whoOutput{}
		out.Body.UserID, out.Body.Admin = p.UserID, p.Admin
		return out, nil
	})
	huma.Register(a.Admin, huma.Operation{
		OperationID: "test-admin", Method: http.MethodGet, Path: "/test/admin", Summary: "Admins only", Tags: tags,
	}, func(ctx context.Context, _ *struct{}) (*whoOutput, error) {
		out := &whoOutput{}
		out.Body.UserID, out.Body.Admin = identity.UserID(ctx), true
		return out, nil
	})
	ts := httptest.NewServer(a.Router)
	t.Cleanup(ts.Close)
	return &testAPI{Server: ts, api: a, logs: logs, failing: failing}
}

type request struct {
	method, path string
	header       map[string]string
	body         string
	chunked      bool // send the body without a Content-Length
}

// do sends r and returns the response with its body read.
func (a *testAPI) do(t *testing.T, r request) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(body) // hides the length from the client
		}
	}
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, a.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := a.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, r.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

type problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail"`
	Instance  string              `json:"instance"`
	Code      string              `json:"code"`
	RequestID string              `json:"request_id"`
	Errors    []apperr.FieldError `json:"errors"`
}

// decodeProblem checks the invariants of every problem document and returns it.
func decodeProblem(t *testing.T, resp *http.Response, raw []byte, path string) problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json (body %s)", ct, raw)
	}
	var p problem
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("decode problem %q: %v", raw, err)
	}
	if p.Status != resp.StatusCode {
		t.Errorf("problem status %d, response status %d", p.Status, resp.StatusCode)
	}
	if p.Title != http.StatusText(resp.StatusCode) {
		t.Errorf("title %q, want %q", p.Title, http.StatusText(resp.StatusCode))
	}
	if p.Code == "" || p.Detail == "" {
		t.Errorf("problem %s lacks a code or a detail", raw)
	}
	if want := strings.SplitN(path, "?", 2)[0]; p.Instance != want {
		t.Errorf("instance %q, want %q", p.Instance, want)
	}
	if id := resp.Header.Get("X-Request-ID"); id == "" || p.RequestID != id {
		t.Errorf("request_id %q, X-Request-ID header %q: want equal and set", p.RequestID, id)
	}
	return p
}

func TestProblemDocuments(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	tests := []struct {
		name      string
		req       request
		status    int
		code      string
		fields    []string // locations of the field errors, in order
		detailHas string
		header    map[string]string
		notInBody string
	}{
		{name: "unknown route", req: request{path: "/api/v1/nope"}, status: 404, code: "not_found"},
		{name: "unknown root route", req: request{path: "/favicon.ico"}, status: 404, code: "not_found"},
		{name: "method not allowed", req: request{method: "DELETE", path: "/healthz"}, status: 405, code: "method_not_allowed",
			header: map[string]string{"Allow": "GET"}},
		{name: "method not allowed on api", req: request{method: "PUT", path: "/api/v1/test/items"}, status: 405, code: "method_not_allowed",
			header: map[string]string{"Allow": "POST"}},
		{name: "malformed json", req: request{method: "POST", path: "/api/v1/test/items", body: `{"name": "abc",`}, status: 400,
			code: "bad_request", fields: []string{"body"}},
		{name: "wrong json type", req: request{method: "POST", path: "/api/v1/test/items", body: `{"name": 5, "count": "x"}`}, status: 422,
			code: "validation_failed", fields: []string{"body.count", "body.name"}},
		{name: "validation field list", req: request{method: "POST", path: "/api/v1/test/items", body: `{"name": "AB"}`}, status: 422,
			code: "validation_failed", fields: []string{"body", "body.name", "body.name"}, detailHas: "validation failed"},
		{name: "empty body", req: request{method: "POST", path: "/api/v1/test/items", header: map[string]string{"Content-Type": "application/json"}},
			status: 400, code: "bad_request"},
		{name: "body too large", req: request{method: "POST", path: "/api/v1/test/items",
			body: `{"name": "abc", "count": 1, "pad": "` + strings.Repeat("x", 2048) + `"}`}, status: 413, code: "too_large", detailHas: "1024 bytes"},
		{name: "streamed body too large", req: request{method: "POST", path: "/api/v1/test/items", chunked: true,
			body: `{"name": "abc", "count": 1, "pad": "` + strings.Repeat("x", 2048) + `"}`}, status: 413, code: "too_large", detailHas: "1024 bytes"},
		{name: "json with a charset is limited too", req: request{method: "POST", path: "/api/v1/test/items",
			header: map[string]string{"Content-Type": "application/json; charset=utf-8"},
			body:   `{"name": "abc", "count": 1, "pad": "` + strings.Repeat("x", 2048) + `"}`}, status: 413, code: "too_large"},
		{name: "unsupported content type", req: request{method: "POST", path: "/api/v1/test/items", body: `<item/>`,
			header: map[string]string{"Content-Type": "application/xml"}}, status: 415, code: "unsupported_media_type", fields: []string{"body"},
			detailHas: `the request body must be application/json; its Content-Type is "application/xml"`},
		{name: "unsupported content type, form", req: request{method: "POST", path: "/api/v1/test/items", body: `name=abc`,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, status: 415, code: "unsupported_media_type",
			fields: []string{"body"}, detailHas: `must be application/json; its Content-Type is "application/x-www-form-urlencoded"`},
		{name: "path parameter too long", req: request{path: "/api/v1/test/items/" + strings.Repeat("x", 21)}, status: 422,
			code: "validation_failed", fields: []string{"path.id"}},
		{name: "domain conflict", req: request{method: "POST", path: "/api/v1/test/items", body: `{"name": "taken", "count": 1}`}, status: 409,
			code: "name_taken", detailHas: "taken"},
		{name: "wrapped not found", req: request{path: "/api/v1/test/items/missing"}, status: 404, code: "not_found", detailHas: "item not found"},
		{name: "forbidden", req: request{path: "/api/v1/test/items/private"}, status: 403, code: "forbidden"},
		{name: "domain validation", req: request{path: "/api/v1/test/items/invalid"}, status: 422, code: "validation_failed", fields: []string{"path.id"}},
		{name: "rate limited", req: request{path: "/api/v1/test/items/limited"}, status: 429, code: "rate_limited",
			header: map[string]string{"Retry-After": "2"}},
		{name: "unclassified error is a 500 that hides its cause", req: request{path: "/api/v1/test/items/broken"}, status: 500,
			code: "internal", detailHas: "internal error", notInBody: "relation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, raw := a.do(t, tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, raw)
			}
			p := decodeProblem(t, resp, raw, tt.req.path)
			if p.Code != tt.code {
				t.Errorf("code %q, want %q", p.Code, tt.code)
			}
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Location)
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("field errors (-want +got):\n%s\n%s", diff, raw)
			}
			if !strings.Contains(p.Detail, tt.detailHas) {
				t.Errorf("detail %q does not contain %q", p.Detail, tt.detailHas)
			}
			for k, v := range tt.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tt.notInBody != "" && bytes.Contains(raw, []byte(tt.notInBody)) {
				t.Errorf("body %s reveals %q", raw, tt.notInBody)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
		})
	}
}

func TestSuccessfulOperation(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	resp, raw := a.do(t, request{method: "POST", path: "/api/v1/test/items", body: `{"name": "abc", "count": 2}`})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", resp.StatusCode, raw)
	}
	var got struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || got.Name != "abc" || got.Count != 2 {
		t.Errorf("body %s (err %v), want the item echoed", raw, err)
	}
}

// The JSON limit does not apply to uploads of other types: their operation sets its own.
func TestUploadLimitIsPerOperation(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	octet := map[string]string{"Content-Type": "application/octet-stream"}
	resp, raw := a.do(t, request{method: "POST", path: "/api/v1/test/upload", header: octet, body: strings.Repeat("x", 4096)})
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"4096"`) {
		t.Errorf("4 KiB upload: %d %s, want 200 with the size", resp.StatusCode, raw)
	}
	resp, raw = a.do(t, request{method: "POST", path: "/api/v1/test/upload", header: octet, body: strings.Repeat("x", 9000)})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("9000-byte upload: %d %s, want 413", resp.StatusCode, raw)
	}
	decodeProblem(t, resp, raw, "/api/v1/test/upload")
}

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	resp, raw := a.do(t, request{path: "/api/v1/test/panic", header: map[string]string{"X-Request-ID": "boom-1"}})
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500: %s", resp.StatusCode, raw)
	}
	p := decodeProblem(t, resp, raw, "/api/v1/test/panic")
	if p.Code != "internal" || p.Detail != "internal error" {
		t.Errorf("problem %s, want code internal and detail \"internal error\"", raw)
	}
	for _, leak := range []string{"kaboom", "goroutine", ".go:", "runtime"} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Errorf("response %s reveals %q", raw, leak)
		}
	}
	rec := a.logs.find(t, "panic serving request", map[string]any{"request_id": "boom-1"})
	if rec == nil {
		t.Fatalf("no panic log record with the request id; logs: %v", a.logs.records(t))
	}
	if s, _ := rec["panic"].(string); !strings.Contains(s, "kaboom") {
		t.Errorf("panic log %v lacks the panic value", rec)
	}
	if s, _ := rec["stack"].(string); !strings.Contains(s, "goroutine") || !strings.Contains(s, "httpapi_test.go") {
		t.Errorf("panic log lacks the stack: %q", s)
	}
	if a.logs.find(t, "http request", map[string]any{"request_id": "boom-1", "status": float64(500), "level": "ERROR"}) == nil {
		t.Error("the access log does not record the panic as an ERROR 500")
	}
	// The server keeps serving.
	if resp, raw := a.do(t, request{path: "/healthz"}); resp.StatusCode != http.StatusOK {
		t.Errorf("after a panic: /healthz status %d: %s", resp.StatusCode, raw)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, func(o *httpapi.Options) { o.Pprof = true })
	const realm = `Bearer realm="nerutalk"`
	tests := []struct {
		name          string
		path, auth    string
		status        int
		code          string // for problems
		challenge     string // WWW-Authenticate; "" = must be absent
		user          string // for 200
		notInResponse string
	}{
		{"no token", "/api/v1/test/whoami", "", 401, "unauthenticated", realm, "", ""},
		{"basic auth", "/api/v1/test/whoami", "Basic dTpw", 401, "unauthenticated", realm, "", ""},
		{"empty bearer", "/api/v1/test/whoami", "Bearer   ", 401, "unauthenticated", realm, "", ""},
		{"expired token", "/api/v1/test/whoami", "Bearer expired", 401, "token_expired", realm + `, error="invalid_token"`, "", ""},
		{"unknown token", "/api/v1/test/whoami", "Bearer forged", 401, "invalid_token", realm + `, error="invalid_token"`, "", ""},
		{"authenticator failure is not the client's fault", "/api/v1/test/whoami", "Bearer broken", 500, "internal", "", "", "10.0.0.7"},
		{"user", "/api/v1/test/whoami", "Bearer user", 200, "", "", "u1", ""},
		{"scheme is case-insensitive", "/api/v1/test/whoami", "bearer user", 200, "", "", "u1", ""},
		{"admin route without token", "/api/v1/test/admin", "", 401, "unauthenticated", realm, "", ""},
		{"admin route with a user", "/api/v1/test/admin", "Bearer user", 403, "forbidden", "", "", ""},
		{"admin route with an expired token", "/api/v1/test/admin", "Bearer expired", 401, "token_expired", realm + `, error="invalid_token"`, "", ""},
		{"admin", "/api/v1/test/admin", "Bearer admin", 200, "", "", "a1", ""},
		{"pprof without token", "/debug/pprof/cmdline", "", 401, "unauthenticated", realm, "", ""},
		{"pprof with an unknown token", "/debug/pprof/cmdline", "Bearer forged", 401, "invalid_token", realm + `, error="invalid_token"`, "", ""},
		{"pprof with a user", "/debug/pprof/cmdline", "Bearer user", 403, "forbidden", "", "", ""},
		{"pprof with a store failure", "/debug/pprof/cmdline", "Bearer broken", 500, "internal", "", "", "10.0.0.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := map[string]string{}
			if tt.auth != "" {
				h["Authorization"] = tt.auth
			}
			resp, raw := a.do(t, request{path: tt.path, header: h})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, raw)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			if tt.notInResponse != "" && bytes.Contains(raw, []byte(tt.notInResponse)) {
				t.Errorf("response %s reveals %q", raw, tt.notInResponse)
			}
			if tt.status != http.StatusOK {
				if p := decodeProblem(t, resp, raw, tt.path); p.Code != tt.code {
					t.Errorf("code %q, want %q", p.Code, tt.code)
				}
				return
			}
			var who struct {
				UserID string `json:"user_id"`
			}
			if err := json.Unmarshal(raw, &who); err != nil || who.UserID != tt.user {
				t.Errorf("body %s: want user %q", raw, tt.user)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	allowed := newTestAPI(t, func(o *httpapi.Options) { o.CORSOrigins = []string{"https://app.example", "https://other.example/"} })
	anyOrigin := newTestAPI(t, func(o *httpapi.Options) { o.CORSOrigins = []string{"*"} })
	off := newTestAPI(t, nil)
	preflight := func(origin string) request {
		return request{method: http.MethodOptions, path: "/api/v1/test/items", header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}}
	}
	get := func(origin string) request {
		return request{path: "/api/v1/test/items/x", header: map[string]string{"Origin": origin}}
	}
	tests := []struct {
		name   string
		api    *testAPI
		req    request
		status int
		allow  string // Access-Control-Allow-Origin; "" = absent
	}{
		{"preflight from an allowed origin", allowed, preflight("https://app.example"), 204, "https://app.example"},
		{"trailing slash in the setting", allowed, preflight("https://other.example"), 204, "https://other.example"},
		{"preflight from another origin", allowed, preflight("https://evil.example"), 405, ""},
		{"request from an allowed origin", allowed, get("https://app.example"), 200, "https://app.example"},
		{"request from another origin", allowed, get("https://evil.example"), 200, ""},
		{"request without origin", allowed, get(""), 200, ""},
		{"wildcard echoes the origin", anyOrigin, preflight("https://anything.example"), 204, "https://anything.example"},
		{"cors off", off, preflight("https://app.example"), 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, raw := tt.api.do(t, tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, raw)
			}
			h := resp.Header
			if got := h.Get("Access-Control-Allow-Origin"); got != tt.allow {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.allow)
			}
			if got := h.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials = %q: bearer tokens need no credentials", got)
			}
			if tt.api != off && !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary = %q, want Origin", h.Values("Vary"))
			}
			if tt.allow == "" {
				return
			}
			if tt.status == http.StatusNoContent {
				for _, want := range []string{"POST", "DELETE", "PATCH"} {
					if !strings.Contains(h.Get("Access-Control-Allow-Methods"), want) {
						t.Errorf("Access-Control-Allow-Methods = %q lacks %s", h.Get("Access-Control-Allow-Methods"), want)
					}
				}
				for _, want := range []string{"Authorization", "Content-Type"} {
					if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
						t.Errorf("Access-Control-Allow-Headers = %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
					}
				}
				if h.Get("Access-Control-Max-Age") == "" {
					t.Error("preflight answer has no Access-Control-Max-Age")
				}
				return
			}
			for _, want := range []string{"Retry-After", "X-Request-ID"} {
				if !strings.Contains(h.Get("Access-Control-Expose-Headers"), want) {
					t.Errorf("Access-Control-Expose-Headers = %q lacks %s", h.Get("Access-Control-Expose-Headers"), want)
				}
			}
		})
	}
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{24}$`)

func TestRequestID(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"none sent", "", false},
		{"sane id kept", "req-42_A.b", true},
		{"64 characters kept", strings.Repeat("a", 64), true},
		{"65 characters replaced", strings.Repeat("a", 65), false},
		{"space replaced", "a b", false},
		{"header injection replaced", "a\"b", false},
		{"non-ascii replaced", "idé", false},
		{"log forging replaced", "x request_id=admin", false},
	}
	seen := sync.Map{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := map[string]string{}
			if tt.sent != "" {
				h["X-Request-ID"] = tt.sent
			}
			resp, raw := a.do(t, request{path: "/api/v1/nope", header: h})
			got := resp.Header.Get("X-Request-ID")
			if tt.kept && got != tt.sent {
				t.Errorf("X-Request-ID = %q, want the client's %q", got, tt.sent)
			}
			if !tt.kept && !generatedID.MatchString(got) {
				t.Errorf("X-Request-ID = %q, want a generated id (sent %q)", got, tt.sent)
			}
			if _, dup := seen.LoadOrStore(got, true); dup && !tt.kept {
				t.Errorf("generated id %q twice", got)
			}
			if p := decodeProblem(t, resp, raw, "/api/v1/nope"); p.RequestID != got {
				t.Errorf("problem request_id %q, header %q", p.RequestID, got)
			}
			if a.logs.find(t, "http request", map[string]any{"request_id": got}) == nil {
				t.Errorf("no access log line carries request_id %q", got)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	resp, _ := a.do(t, request{path: "/api/v1/test/items/abc?x=1", header: map[string]string{"X-Request-ID": "log-1"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rec := a.logs.find(t, "http request", map[string]any{"request_id": "log-1"})
	if rec == nil {
		t.Fatalf("no access log line; logs: %v", a.logs.records(t))
	}
	want := map[string]any{"level": "INFO", "method": "GET", "route": "/api/v1/test/items/{id}", "path": "/api/v1/test/items/abc",
		"status": float64(200)}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("access log %s = %v, want %v", k, rec[k], v)
		}
	}
	for _, k := range []string{"duration", "bytes", "remote", "time"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("access log lacks %s: %v", k, rec)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	resp, raw := a.do(t, request{path: "/healthz"})
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &body) != nil || body.Status != "ok" {
		t.Fatalf("/healthz: %d %s", resp.StatusCode, raw)
	}
	resp, raw = a.do(t, request{path: "/readyz"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d %s", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"steady": "ok", "flaky": "ok"}, body.Checks); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}

	a.failing.Store(true)
	resp, raw = a.do(t, request{path: "/readyz"})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a failing check: %d %s", resp.StatusCode, raw)
	}
	p := decodeProblem(t, resp, raw, "/readyz")
	if p.Code != "not_ready" || !strings.Contains(p.Detail, "flaky") || strings.Contains(p.Detail, "steady") {
		t.Errorf("problem %s: want code not_ready naming only the failing check", raw)
	}
	if strings.Contains(string(raw), "connection refused") {
		t.Errorf("problem %s reveals the check's error", raw)
	}
	if a.logs.find(t, "readiness check failed", map[string]any{"check": "flaky"}) == nil {
		t.Error("the failing check is not logged")
	}
	// Liveness does not depend on the checks.
	if resp, _ := a.do(t, request{path: "/healthz"}); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with a failing check: %d", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	for _, p := range []string{"/api/v1/test/items/abc", "/api/v1/test/items/xyz", "/api/v1/test/items/missing", "/no/such/route-123"} {
		a.do(t, request{path: p})
	}
	resp, raw := a.do(t, request{path: "/metrics"})
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	text := string(raw)
	for _, want := range []string{
		`nerutalk_http_requests_total{method="GET",route="/api/v1/test/items/{id}",status="200"} 2`,
		`nerutalk_http_requests_total{method="GET",route="/api/v1/test/items/{id}",status="404"} 1`,
		`nerutalk_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`nerutalk_http_request_duration_seconds_count{method="GET",route="/api/v1/test/items/{id}"} 3`,
		"# TYPE nerutalk_http_requests_total counter",
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, leak := range []string{"abc", "xyz", "route-123"} {
		if strings.Contains(text, leak) {
			t.Errorf("/metrics labels a raw path (%q): the route pattern must be used", leak)
		}
	}
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	resp, raw := a.do(t, request{path: "/openapi.json"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/openapi.json: %d", resp.StatusCode)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title, Version string
		} `json:"info"`
		Paths map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Summary     string                     `json:"summary"`
			Responses   map[string]json.RawMessage `json:"responses"`
			Security    []map[string][]string      `json:"security"`
		} `json:"paths"`
		Components struct {
			SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse /openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf(`"openapi" = %q, want "3.1.0"`, doc.OpenAPI)
	}
	if doc.Info.Title != "NeruTalk API" || doc.Info.Version != "test" {
		t.Errorf("info = %+v", doc.Info)
	}
	if _, ok := doc.Components.SecuritySchemes["bearer"]; !ok {
		t.Error("no bearer security scheme")
	}
	ids := map[string]bool{}
	for path, item := range doc.Paths {
		for method, op := range item {
			where := strings.ToUpper(method) + " " + path
			if op.OperationID == "" || op.Summary == "" || len(op.Responses) == 0 {
				t.Errorf("%s: operationId %q, summary %q, %d responses: want all", where, op.OperationID, op.Summary, len(op.Responses))
			}
			if ids[op.OperationID] {
				t.Errorf("%s: operationId %q is not unique", where, op.OperationID)
			}
			ids[op.OperationID] = true
			if needsToken(op.Security) {
				if _, ok := op.Responses["401"]; !ok {
					t.Errorf("%s is secured but documents no 401", where)
				}
			}
		}
	}
	for _, want := range []string{"healthz", "readyz", "test-whoami", "test-admin", "test-create-item"} {
		if !ids[want] {
			t.Errorf("operation %q missing from the document", want)
		}
	}
	admin := doc.Paths["/api/v1/test/admin"]["get"]
	if _, ok := admin.Responses["403"]; !ok || !needsToken(admin.Security) {
		t.Errorf("admin operation: security %v, responses %v: want bearer and a 403", admin.Security, admin.Responses)
	}
	if pub := doc.Paths["/api/v1/test/items"]["post"]; needsToken(pub.Security) {
		t.Errorf("public operation is marked secured: %v", pub.Security)
	}
}

// needsToken reports whether a security requirement list asks for a credential: an empty
// requirement object ({}) documents an anonymous operation.
func needsToken[T any](reqs []map[string]T) bool {
	for _, r := range reqs {
		if len(r) > 0 {
			return true
		}
	}
	return false
}

// FuzzRequestID: whatever X-Request-ID a client sends, the id the server uses is short and made
// of safe characters, so it can go into headers and logs as it is.
func FuzzRequestID(f *testing.F) {
	a := httpapi.New(httpapi.Options{})
	safe := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	for _, s := range []string{"", "abc", strings.Repeat("z", 80), "a\r\nSet-Cookie: x", "é", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.Header["X-Request-Id"] = []string{id}
		rec := httptest.NewRecorder()
		a.Router.ServeHTTP(rec, req)
		got := rec.Header().Get("X-Request-ID")
		if !safe.MatchString(got) {
			t.Errorf("X-Request-ID %q became %q", id, got)
		}
		if safe.MatchString(id) && got != id {
			t.Errorf("safe X-Request-ID %q replaced by %q", id, got)
		}
	})
}

// FuzzBearerToken: the Authorization header is untrusted; parsing it never panics and yields a
// trimmed token only for the Bearer scheme.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer  x ", "Basic abc", "Bearer", "BEARER \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok := httpapi.BearerToken(h)
		if tok == "" {
			return
		}
		if tok != strings.TrimSpace(tok) {
			t.Errorf("BearerToken(%q) = %q, not trimmed", h, tok)
		}
		if !strings.EqualFold(h[:7], "bearer ") || !strings.Contains(h, tok) {
			t.Errorf("BearerToken(%q) = %q", h, tok)
		}
	})
}

// BenchmarkMiddlewareChain measures the cost of the whole HTTP layer (request id, access log to a
// JSON logger, metrics, recovery, CORS, routing, huma parameter validation, encoding) around a
// trivial operation, in process.
func BenchmarkMiddlewareChain(b *testing.B) {
	a := newTestAPI(b, func(o *httpapi.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
		o.CORSOrigins = []string{"https://app.example"}
	})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/test/items/abc", nil)
			req.Header.Set("Origin", "https://app.example")
			rec := httptest.NewRecorder()
			a.api.Router.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d", rec.Code) // not Fatal: this is not the benchmark's goroutine
				return
			}
		}
	})
}
