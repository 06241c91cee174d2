package servertest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The contract check: every response a test node sends to a request for a path of its OpenAPI
// document (and to any /api/v1 request) is checked against that document. Its status must be
// listed for the operation (path template and method), its content type must be one the document
// lists for that status, and a JSON body (application/json, application/problem+json) must be
// valid against the response's schema. A violation fails the test that built the node, at its
// end, with the method, path, status and validation error. Bodies of other types (files, images)
// are not read; their status still is checked.
//
// The document is the one the node serves at /openapi.json; its schemas are compiled once per
// process for each distinct document (nodes built with the same features share it).

// Contract is a compiled OpenAPI 3.1 document.
type Contract struct {
	routes []route
}

type route struct {
	template string
	segs     []string // "" for a parameter
	score    int      // literal segments, the earlier the heavier: /chats/search beats /chats/{id}
	ops      map[string]*operation
}

type operation struct {
	id        string
	responses map[string]map[string]*jsonschema.Schema // status ("200", "4XX", "default") -> media type -> schema (nil: no schema)
}

// ContractViolation is one response the document does not describe.
type ContractViolation struct {
	Method, Path string
	Status       int
	Problem      string
}

func (v ContractViolation) String() string {
	return fmt.Sprintf("%s %s -> %d: %s", v.Method, v.Path, v.Status, v.Problem)
}

var contracts struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*contractOnce
}

type contractOnce struct {
	once sync.Once
	c    *Contract
	err  error
}

// CompileContract compiles an OpenAPI 3.1 document (JSON). The result for a given document is
// cached for the life of the process.
func CompileContract(doc []byte) (*Contract, error) {
	key := sha256.Sum256(doc)
	contracts.mu.Lock()
	if contracts.m == nil {
		contracts.m = map[[sha256.Size]byte]*contractOnce{}
	}
	e := contracts.m[key]
	if e == nil {
		e = &contractOnce{}
		contracts.m[key] = e
	}
	contracts.mu.Unlock()
	e.once.Do(func() { e.c, e.err = compileContract(doc) })
	return e.c, e.err
}

const docURL = "https://nerutalk.invalid/openapi.json"

type openAPIDoc struct {
	Paths map[string]map[string]json.RawMessage `json:"paths"`
}

type openAPIOperation struct {
	OperationID string `json:"operationId"`
	Responses   map[string]struct {
		Content map[string]json.RawMessage `json:"content"`
	} `json:"responses"`
}

func compileContract(raw []byte) (*Contract, error) {
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // the dialect of OpenAPI 3.1
	c.AssertFormat()
	if err := c.AddResource(docURL, inst); err != nil {
		return nil, err
	}
	out := &Contract{}
	for tmpl, item := range doc.Paths {
		r := route{template: tmpl, ops: map[string]*operation{}}
		for i, s := range strings.Split(strings.Trim(tmpl, "/"), "/") {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				s = ""
			} else {
				r.score += 1 << (20 - i)
			}
			r.segs = append(r.segs, s)
		}
		for method, rawOp := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue // parameters, summary...
			}
			var op openAPIOperation
			if err := json.Unmarshal(rawOp, &op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, tmpl, err)
			}
			o := &operation{id: op.OperationID, responses: map[string]map[string]*jsonschema.Schema{}}
			for status, resp := range op.Responses {
				types := map[string]*jsonschema.Schema{}
				for mt, m := range resp.Content {
					var has struct {
						Schema json.RawMessage `json:"schema"`
					}
					if err := json.Unmarshal(m, &has); err != nil {
						return nil, err
					}
					var sch *jsonschema.Schema
					if len(has.Schema) > 0 && isJSON(mt) {
						ptr := "/paths/" + pointerEscape(tmpl) + "/" + method + "/responses/" + pointerEscape(status) +
							"/content/" + pointerEscape(mt) + "/schema"
						if sch, err = c.Compile(docURL + "#" + ptr); err != nil {
							return nil, fmt.Errorf("%s %s %s %s: %w", strings.ToUpper(method), tmpl, status, mt, err)
						}
					}
					types[mt] = sch
				}
				o.responses[status] = types
			}
			r.ops[strings.ToUpper(method)] = o
		}
		out.routes = append(out.routes, r)
	}
	sort.Slice(out.routes, func(i, j int) bool { return out.routes[i].template < out.routes[j].template })
	return out, nil
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func isJSON(mediaType string) bool {
	return mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
}

// match finds the route of a request path: the one whose literal segments come first wins.
func (c *Contract) match(path string) *route {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var best *route
	for i := range c.routes {
		r := &c.routes[i]
		if len(r.segs) != len(segs) {
			continue
		}
		ok := true
		for j, s := range r.segs {
			if (s == "" && segs[j] == "") || (s != "" && s != segs[j]) {
				ok = false
				break
			}
		}
		if ok && (best == nil || r.score > best.score) {
			best = r
		}
	}
	return best
}

// Check checks one response: its status, its Content-Type and, for JSON, its body. It returns
// "" when the document describes the response.
func (c *Contract) Check(method, path string, status int, contentType string, body []byte) string {
	r := c.match(path)
	if r == nil {
		switch {
		case !strings.HasPrefix(path, "/api/v1/"):
			return "" // not the API: /openapi.json, /docs, /metrics...
		case status != http.StatusNotFound:
			return "the path is not in the OpenAPI document"
		}
		return c.checkProblem(status, contentType, body) // the router's 404 for an unknown endpoint
	}
	op := r.ops[method]
	if op == nil {
		if status != http.StatusMethodNotAllowed {
			return fmt.Sprintf("%s is not an operation of %s in the OpenAPI document", method, r.template)
		}
		return c.checkProblem(status, contentType, body)
	}
	code := strconv.Itoa(status)
	types, ok := op.responses[code]
	if !ok {
		types, ok = op.responses[code[:1]+"XX"]
	}
	if !ok {
		types, ok = op.responses["default"]
	}
	if !ok {
		return fmt.Sprintf("status %d is not listed for %s (%s %s; listed: %s)", status, op.id, method, r.template, listed(op))
	}
	return checkBody(types, contentType, body, method)
}

// checkProblem checks the router's own errors (unknown endpoint, method not allowed): a problem
// document, valid against any operation's Problem schema.
func (c *Contract) checkProblem(status int, contentType string, body []byte) string {
	if len(body) == 0 {
		return ""
	}
	for _, r := range c.routes {
		for _, op := range r.ops {
			for code, types := range op.responses {
				if sch := types["application/problem+json"]; sch != nil && code >= "4" {
					return checkBody(map[string]*jsonschema.Schema{"application/problem+json": sch}, contentType, body, "")
				}
			}
		}
	}
	return ""
}

func listed(op *operation) string {
	var s []string
	for k := range op.responses {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

func checkBody(types map[string]*jsonschema.Schema, contentType string, body []byte, method string) string {
	if len(body) == 0 || method == http.MethodHead {
		return "" // 204, 304, HEAD: nothing to describe
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Sprintf("a body with no valid Content-Type (%q)", contentType)
	}
	sch, ok := types[mt]
	if !ok {
		if isJSON(mt) {
			return fmt.Sprintf("Content-Type %s is not listed for this status (listed: %s)", mt, mediaTypes(types))
		}
		// A file's own type: fine where the document lists a binary or wildcard type.
		for t := range types {
			if !isJSON(t) {
				return ""
			}
		}
		return fmt.Sprintf("Content-Type %s is not listed for this status (listed: %s)", mt, mediaTypes(types))
	}
	if sch == nil || !isJSON(mt) {
		return ""
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Sprintf("the %s body does not parse: %v", mt, err)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			// The first line names the schema's URL; the rest are the failures, one a line.
			lines := strings.Split(strings.TrimSpace(ve.Error()), "\n")
			if len(lines) > 1 {
				lines = lines[1:]
			}
			for i := range lines {
				lines[i] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[i]), "- "))
			}
			return fmt.Sprintf("the body does not match the schema: %s; body: %s", strings.Join(lines, "; "), truncate(body))
		}
		return err.Error()
	}
	return ""
}

func mediaTypes(types map[string]*jsonschema.Schema) string {
	var s []string
	for k := range types {
		s = append(s, k)
	}
	sort.Strings(s)
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func truncate(b []byte) string {
	const max = 600
	b = bytes.TrimSpace(b)
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// ValidateExample checks an example value against the schema at a JSON pointer of the document
// (e.g. "/components/schemas/ChatView").
func ValidateExample(doc []byte, pointer string, example any) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, inst); err != nil {
		return err
	}
	sch, err := c.Compile(docURL + "#" + pointer)
	if err != nil {
		return err
	}
	b, err := json.Marshal(example)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// ContractRecorder collects the violations of a node's responses.
type ContractRecorder struct {
	contract *Contract
	mu       sync.Mutex
	found    []ContractViolation
}

// Violations returns what was found so far.
func (cr *ContractRecorder) Violations() []ContractViolation {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return append([]ContractViolation(nil), cr.found...)
}

// maxCheckedBody bounds how much of a JSON body is kept for validation.
const maxCheckedBody = 8 << 20

// Wrap returns next with every response checked.
func (cr *ContractRecorder) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &checkingWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if cw.hijacked {
			return // a WebSocket: 101, then no more HTTP
		}
		status := cw.status
		if status == 0 {
			status = http.StatusOK
		}
		if cw.overflow {
			cw.body = nil
		}
		if p := cr.contract.Check(r.Method, r.URL.Path, status, w.Header().Get("Content-Type"), cw.body); p != "" {
			cr.mu.Lock()
			cr.found = append(cr.found, ContractViolation{Method: r.Method, Path: r.URL.Path, Status: status, Problem: p})
			cr.mu.Unlock()
		}
	})
}

// checkingWriter keeps the status and (for JSON) the body of a response.
type checkingWriter struct {
	http.ResponseWriter
	status   int
	json     bool
	body     []byte
	overflow bool
	hijacked bool
}

func (w *checkingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		mt, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
		w.json = isJSON(mt)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *checkingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.json && !w.overflow {
		if len(w.body)+len(p) > maxCheckedBody {
			w.overflow = true
		} else {
			w.body = append(w.body, p...)
		}
	}
	return w.ResponseWriter.Write(p)
}

func (w *checkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *checkingWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *checkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// checkContract makes the node check its responses against its own document, failing t at its end.
func checkContract(t testing.TB, doc []byte) *ContractRecorder {
	c, err := CompileContract(doc)
	if err != nil {
		t.Fatalf("compile the OpenAPI document: %v", err)
	}
	cr := &ContractRecorder{contract: c}
	t.Cleanup(func() {
		for _, v := range cr.Violations() {
			t.Errorf("OpenAPI contract: %s", v)
		}
	})
	return cr
}
