package asyncapi_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/asyncapi"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// get fetches path from the node and returns the response with its body.
func get(t *testing.T, n *servertest.Node, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := n.Client().Get(n.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, b
}

// document is /asyncapi.json as the tests read it (huma's schemas do not decode back).
type document struct {
	AsyncAPI   string                        `json:"asyncapi"`
	Info       asyncapi.Info                 `json:"info"`
	Servers    map[string]asyncapi.Server    `json:"servers"`
	Channels   map[string]asyncapi.Channel   `json:"channels"`
	Operations map[string]asyncapi.Operation `json:"operations"`
	Components struct {
		Messages map[string]struct {
			Name   string               `json:"name"`
			Errors []asyncapi.ErrorCode `json:"x-error-codes"`
		} `json:"messages"`
		Schemas         map[string]json.RawMessage         `json:"schemas"`
		SecuritySchemes map[string]asyncapi.SecurityScheme `json:"securitySchemes"`
	} `json:"components"`
}

// fetchDoc returns /asyncapi.json decoded and as a generic JSON value.
func fetchDoc(t *testing.T, n *servertest.Node) (document, any) {
	t.Helper()
	resp, raw := get(t, n, asyncapi.DocumentPath)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: %d %q", asyncapi.DocumentPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return doc, generic
}

// TestDocumentShape checks that /asyncapi.json is shaped like an AsyncAPI 3.0 document, that
// every reference resolves, and that it documents exactly the commands the hub dispatches.
func TestDocumentShape(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	doc, generic := fetchDoc(t, n)

	if doc.AsyncAPI != "3.0.0" {
		t.Errorf("asyncapi = %q, want 3.0.0", doc.AsyncAPI)
	}
	if doc.Info.Title == "" || doc.Info.Version == "" {
		t.Errorf("info = %+v, want a title and a version", doc.Info)
	}
	var protocols []string
	for name, s := range doc.Servers {
		protocols = append(protocols, s.Protocol)
		if s.Host == "" || s.Pathname != realtime.Path {
			t.Errorf("server %s = %+v, want a host and pathname %s", name, s, realtime.Path)
		}
	}
	if !slices.Contains(protocols, "ws") || !slices.Contains(protocols, "wss") {
		t.Errorf("server protocols %v, want ws and wss", protocols)
	}
	ch, ok := doc.Channels[asyncapi.ChannelName]
	if !ok || ch.Address != realtime.Path || len(ch.Messages) == 0 {
		t.Fatalf("channel %s = %+v", asyncapi.ChannelName, ch)
	}
	if len(doc.Components.Messages) == 0 || len(doc.Components.Schemas) == 0 || len(doc.Components.SecuritySchemes) == 0 {
		t.Fatalf("components: %d messages, %d schemas, %d security schemes", len(doc.Components.Messages),
			len(doc.Components.Schemas), len(doc.Components.SecuritySchemes))
	}
	for id, op := range doc.Operations {
		if op.Action != "send" && op.Action != "receive" {
			t.Errorf("operation %s: action %q", id, op.Action)
		}
		if len(op.Messages) == 0 {
			t.Errorf("operation %s has no message", id)
		}
		for _, m := range op.Messages {
			if !strings.HasPrefix(m.Ref, "#/channels/"+asyncapi.ChannelName+"/messages/") {
				t.Errorf("operation %s: message %s is not one of its channel's", id, m.Ref)
			}
		}
		if op.Action == "send" && (op.Reply == nil || len(op.Reply.Messages) != 2) {
			t.Errorf("command %s: reply %+v, want its ack and the error frame", id, op.Reply)
		}
	}
	// Every $ref of the document points at something in it.
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					ref, _ := x.(string)
					if _, ok := resolve(generic, ref); !ok {
						t.Errorf("%s: $ref %q does not resolve", path, ref)
					}
					continue
				}
				walk(path+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(path+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("#", generic)

	// The commands are exactly the hub's.
	var documented []string
	for id, op := range doc.Operations {
		if op.Action == "send" {
			documented = append(documented, strings.TrimPrefix(id, "send."))
		}
	}
	slices.Sort(documented)
	if got, want := documented, n.Srv.Hub.Commands(); !slices.Equal(got, want) {
		t.Errorf("documented commands %v, the hub dispatches %v", got, want)
	}

	// The close codes come from the hub's close causes.
	var codes []int
	for _, c := range ch.CloseCodes {
		codes = append(codes, c.Code)
		if c.Meaning == "" {
			t.Errorf("close code %d %q has no meaning", c.Code, c.Reason)
		}
	}
	for _, want := range []int{1000, 1001, 1002, 1007, 1008, 1009, 1011, 4001, 4002, 4003, 4008, 4029} {
		if !slices.Contains(codes, want) {
			t.Errorf("close codes %v lack %d", codes, want)
		}
	}
	errs := doc.Components.Messages["error"].Errors
	for _, want := range []string{realtime.CodeBadFrame, realtime.CodeUnknownType, realtime.CodeRateLimited, realtime.CodeInternal} {
		if !slices.ContainsFunc(errs, func(e asyncapi.ErrorCode) bool { return e.Code == want }) {
			t.Errorf("transport error codes %+v lack %s", errs, want)
		}
	}
}

// resolve follows a local JSON pointer (#/a/b) in doc.
func resolve(doc any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	cur := doc
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// TestEveryFrameTypeInTheCodeIsDocumented reads the non-test sources of internal/: every
// constant named Event... is an event of the document, every Cmd... a command, and every frame
// type the hub encodes itself (encodeFrame("...")) is documented.
func TestEveryFrameTypeInTheCodeIsDocumented(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	doc, _ := fetchDoc(t, n)
	root := filepath.Join("..")
	fset := token.NewFileSet()
	type found struct{ kind, name, value, pos string }
	var all []found
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(node ast.Node) bool {
			switch x := node.(type) {
			case *ast.GenDecl:
				if x.Tok != token.CONST {
					return true
				}
				for _, spec := range x.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						switch {
						case regexp.MustCompile(`^Event[A-Z]`).MatchString(name.Name):
							all = append(all, found{"event", name.Name, v, fset.Position(name.Pos()).String()})
						case regexp.MustCompile(`^Cmd[A-Z]`).MatchString(name.Name):
							all = append(all, found{"command", name.Name, v, fset.Position(name.Pos()).String()})
						}
					}
				}
			case *ast.CallExpr:
				if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "encodeFrame" && len(x.Args) > 0 {
					if lit, ok := x.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						all = append(all, found{"frame", "encodeFrame", v, fset.Position(x.Pos()).String()})
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 20 {
		t.Fatalf("found only %d frame types in the sources: %+v", len(all), all)
	}
	for _, f := range all {
		var ok bool
		switch {
		case f.kind == "command":
			_, ok = doc.Operations[asyncapi.SendOperation(f.value)]
		case f.kind == "event":
			_, ok = doc.Operations[asyncapi.ReceiveOperation(f.value)]
		case f.value == "ack":
			for _, m := range doc.Components.Messages {
				ok = ok || m.Name == "ack"
			}
		default:
			_, ok = doc.Operations[asyncapi.ReceiveOperation(f.value)]
		}
		if !ok {
			t.Errorf("%s: %s %s = %q is not in %s", f.pos, f.kind, f.name, f.value, asyncapi.DocumentPath)
		}
	}
}

// TestPage checks /docs/websocket: HTML with a strict policy, every operation and schema on it,
// links that resolve inside the page, nothing loaded from elsewhere.
func TestPage(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	doc, _ := fetchDoc(t, n)
	resp, body := get(t, n, asyncapi.PagePath)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%s: %d %q", asyncapi.PagePath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy %q, want default-src 'none' and no script nor unsafe source", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options: nosniff")
	}
	page := string(body)
	if strings.Contains(page, "<script") || !strings.Contains(page, `<html lang="en">`) {
		t.Error("the page has a script, or no language")
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`id="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		ids[m[1]] = true
	}
	for id := range doc.Operations {
		if id != "receive.error" && !ids[id] {
			t.Errorf("operation %s is not on the page", id)
		}
	}
	for name := range doc.Components.Schemas {
		if !ids["schema-"+name] {
			t.Errorf("schema %s is not on the page", name)
		}
	}
	for _, m := range regexp.MustCompile(`(href|src)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		u := m[2]
		switch {
		case strings.HasPrefix(u, "#"):
			if !ids[u[1:]] {
				t.Errorf("link %s points nowhere on the page", u)
			}
		case u == asyncapi.DocumentPath || u == "/docs":
		default:
			t.Errorf("the page links or loads %q", u)
		}
	}
	for _, want := range []string{"4029", "too many frames", "unknown_type", "send_message", "ack data", "required"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not mention %q", want)
		}
	}
	// The stylesheet is the one the policy's hash allows.
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindSubmatch(body)
	if style == nil || !bytes.Contains([]byte(csp), []byte("'sha256-")) {
		t.Fatalf("no inline style or no hash in the policy %q", csp)
	}
}
