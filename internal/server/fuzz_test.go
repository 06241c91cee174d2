package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// jsonBodyOp is an operation of the live OpenAPI document that takes a JSON body.
type jsonBodyOp struct{ method, template string }

// jsonBodyOperations reads GET /openapi.json and returns every operation whose request body is
// application/json, sorted (so that a fuzz input names the same operation in every run).
func jsonBodyOperations(t testing.TB, n *servertest.Node) ([]jsonBodyOp, []byte) {
	t.Helper()
	resp, err := n.Client().Get(n.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody *struct {
				Content map[string]json.RawMessage `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("GET /openapi.json: %v", err)
	}
	var ops []jsonBodyOp
	for p, item := range doc.Paths {
		for m, op := range item {
			if op.RequestBody == nil {
				continue
			}
			if _, ok := op.RequestBody.Content["application/json"]; ok {
				ops = append(ops, jsonBodyOp{strings.ToUpper(m), p})
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		return ops[i].template+" "+ops[i].method < ops[j].template+" "+ops[j].method
	})
	return ops, raw
}

// FuzzJSONBodies sends arbitrary bytes as the JSON body of every operation of the live OpenAPI
// document that takes one (a new operation is fuzzed by itself), through the real router of a
// SQLite node, as a signed-in user who owns the chat, message, call, geofence... the path names
// and is a server administrator (so that the bodies reach the handlers, not a 403 or 404). The
// answer is never a 5xx, every error is a problem document with a code, and every answer is
// one the document lists for the operation, with a body valid against its schema.
func FuzzJSONBodies(f *testing.F) {
	n := servertest.New(f, store.SQLite, func(c *config.Config) { c.RateLimits = false })
	fx := setUpFixtures(f, n)
	if err := auth.SetRole(context.Background(), n.Srv.DB, fx.owner.Username, true); err != nil {
		f.Fatal(err)
	}
	ops, doc := jsonBodyOperations(f, n)
	if len(ops) == 0 {
		f.Fatal("no operation of the document takes a JSON body")
	}
	contract, err := servertest.CompileContract(doc)
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		`{}`, `[]`, `null`, `""`, `0`, `{"a":1}`, "", "\xff\xfe", `{"title":"\u0000"}`, `{`, `{"x":` + strings.Repeat("[", 200),
		`{"client_id":"c1","text":"hi"}`, `{"client_id":"c1","text":"hi","reply_to":"not-a-uuid"}`,
		`{"seq":1}`, `{"seq":-1}`, `{"seq":1e300}`, `{"title":"renamed"}`, `{"role":"member"}`, `{"role":"owner"}`,
		`{"user_ids":["0190a3e0-0000-7000-8000-000000000001"]}`, `{"text":"edited"}`, `{"mode":"all"}`, `{"mode":"mute","until":"x"}`,
		`{"type":"group","title":"t","member_ids":[]}`, `{"type":"direct","member_ids":["` + fx.member.ID + `"]}`,
		`{"chat_id":"` + fx.chat + `","kind":"audio"}`, `{"platform":"android","token":"t"}`,
		`{"name":"home","center":{"lat":91,"lng":0},"radius_m":1}`, `{"name":"x","polygon":[{"lat":0,"lng":0},{"lat":1,"lng":1},{"lat":0,"lng":0}]}`,
		`{"lat":1,"lng":2,"accuracy_m":5}`, `{"lat":"NaN","lng":1e999}`, `{"enabled":true}`, `{"user_id":"` + fx.member.ID + `","duration_s":60,"precision":"exact"}`,
		`{"id":"x.en","title":"{{.X}}","body":"{{template \"a\"}}"}`, `{"title":"{{","body":"}}"}`,
		`{"user_ids":["` + fx.member.ID + `"],"title":"t","body":"b"}`, `{"title":"t","body":"b"}`,
		`{"display_name":"\u202e","bio":"\u0007"}`, `{"current_password":"wrong","new_password":"x"}`,
		`{"login":"x","password":"y"}`, `{"refresh_token":"x"}`, `{"username":"u","email":"e@x","password":"12345678"}`,
	}
	// Every operation gets an empty object and a few seeds, round robin (each seed is a request
	// through the whole server: the baseline must stay short).
	for i := range ops {
		f.Add(uint8(i), []byte(`{}`))
	}
	for i, s := range seeds {
		for k := 0; k < 2; k++ {
			f.Add(uint8((i+k*len(seeds))%len(ops)), []byte(s))
		}
	}
	client := &http.Client{Timeout: 20 * time.Second}
	token := fx.owner.AccessToken
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		op := ops[int(which)%len(ops)]
		path := fillPath(op.template, fx)
		send := func() (*http.Response, []byte) {
			req, err := http.NewRequest(op.method, n.URL+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s with %q: %v", op.method, path, body, err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("%s %s with %q: read: %v", op.method, path, body, err)
			}
			return resp, raw
		}
		resp, raw := send()
		if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(op.template, "/api/v1/auth/") {
			// An earlier input ended the session (a password change...): sign in again.
			var pair struct {
				AccessToken string `json:"access_token"`
			}
			if r := n.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"login": fx.owner.Username, "password": "correct horse battery"}, &pair); r.StatusCode != http.StatusOK {
				t.Skipf("the fuzzer changed the owner's password (login %d): nothing more to learn in this process", r.StatusCode)
			}
			token = pair.AccessToken
			resp, raw = send()
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s with %q: status %d: %s", op.method, path, body, resp.StatusCode, raw)
		}
		ct := resp.Header.Get("Content-Type")
		if resp.StatusCode >= 400 {
			var p struct {
				Code string `json:"code"`
			}
			if err := json.Unmarshal(raw, &p); err != nil || p.Code == "" || !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("%s %s with %q: status %d without a problem document (%s): %s", op.method, path, body, resp.StatusCode, ct, raw)
			}
		}
		if v := contract.Check(op.method, path, resp.StatusCode, ct, raw); v != "" {
			t.Fatalf("%s %s with %q: %d: not in the OpenAPI document: %s", op.method, path, body, resp.StatusCode, v)
		}
	})
}
