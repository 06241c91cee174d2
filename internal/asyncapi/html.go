package asyncapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// The /docs/websocket page is rendered from the Document alone: operations grouped by action,
// each message's data as a link to its schema, every schema as a table of fields. It loads
// nothing: the one inline stylesheet is allowed by its hash in the Content-Security-Policy.

const pageStyle = `body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 1.5em;color:#1d2330}
nav ul{columns:3;padding-left:1.2em}a{color:#0550ae}
section.op{border:1px solid #dde2ea;border-radius:6px;padding:.4em 1em;margin:1em 0}
table{border-collapse:collapse;font-size:14px;margin:.4em 0}td,th{border:1px solid #dde2ea;padding:2px 8px;text-align:left;vertical-align:top}
code{background:#f4f6fa;padding:0 3px;border-radius:3px}.muted{color:#57606a}`

// styleHash is the CSP source that allows pageStyle and nothing else.
var styleHash = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// ContentSecurityPolicy is the policy of the /docs/websocket page: no script, no external
// resource, only its own stylesheet.
var ContentSecurityPolicy = "default-src 'none'; style-src " + styleHash + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type typeRef struct {
	Text, Link string // Link: a schema name, or empty
}

type pageField struct {
	Name        string
	Type        []typeRef
	Required    bool
	Enum        []string
	Rules       string
	Description string
}

type pageSchema struct {
	Name, Description string
	Type              []typeRef // for a schema that is not an object
	Fields            []pageField
}

type pageOp struct {
	ID, Type, Summary, Description string
	Data, Ack                      []typeRef
	HasAck                         bool
	Errors                         []string
}

type page struct {
	Doc               *Document
	StyleCSS          template.CSS
	Send, Receive     []pageOp
	Schemas           []pageSchema
	CloseCodes        []CloseCode
	TransportErrors   []ErrorCode
	Address, Protocol string
}

var pageTemplate = template.Must(template.New("ws").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Doc.Info.Title}} {{.Doc.Info.Version}}</title>
<style>{{.StyleCSS}}</style></head><body>
<header><h1>{{.Doc.Info.Title}} <small class="muted">{{.Doc.Info.Version}}</small></h1>
<p>{{.Doc.Info.Description}}</p>
<p>Endpoint: <code>GET {{.Address}}</code>, authenticated with the access token (<code>Authorization: Bearer</code>, or <code>?token=</code>).
Machine-readable: <a href="/asyncapi.json">asyncapi.json</a> (AsyncAPI {{.Doc.AsyncAPI}}). REST: <a href="/docs">/docs</a>.</p></header>
<nav aria-label="Contents"><h2>Contents</h2>
<h3>Commands (client → server)</h3><ul>{{range .Send}}<li><a href="#{{.ID}}">{{.Type}}</a></li>{{end}}</ul>
<h3>Events (server → client)</h3><ul>{{range .Receive}}<li><a href="#{{.ID}}">{{.Type}}</a></li>{{end}}</ul>
<p><a href="#errors">Error codes</a> · <a href="#close-codes">Close codes</a> · <a href="#schemas">Schemas</a></p></nav>
<main>
<h2>Frames</h2>
<p>Every frame is one JSON object <code>{"type", "id"?, "data"}</code>. A command with an <code>id</code> is answered once, in order,
by <code>{"type":"ack","id":…,"data":{…}}</code> or <code>{"type":"error","id":…,"data":<a href="#schema-ErrorData">ErrorData</a>}</code>.
Server events carry no <code>id</code>.</p>
<h2 id="send">Commands (client → server)</h2>
{{range .Send}}<section class="op" id="{{.ID}}" aria-labelledby="{{.ID}}-h"><h3 id="{{.ID}}-h"><code>{{.Type}}</code></h3>
<p><strong>{{.Summary}}</strong></p>{{if .Description}}<p>{{.Description}}</p>{{end}}
<p>data: {{template "type" .Data}}</p>
<p>ack data: {{template "type" .Ack}}</p>
{{if .Errors}}<p>error codes: {{range $i, $c := .Errors}}{{if $i}}, {{end}}<code>{{$c}}</code>{{end}} (and the <a href="#errors">transport's</a>)</p>{{end}}
</section>{{end}}
<h2 id="receive">Events (server → client)</h2>
{{range .Receive}}<section class="op" id="{{.ID}}" aria-labelledby="{{.ID}}-h"><h3 id="{{.ID}}-h"><code>{{.Type}}</code></h3>
<p><strong>{{.Summary}}</strong></p>{{if .Description}}<p>{{.Description}}</p>{{end}}
<p>data: {{template "type" .Data}}</p></section>{{end}}
<h2 id="errors">Error codes of the transport</h2>
<table><thead><tr><th scope="col">code</th><th scope="col">meaning</th></tr></thead><tbody>
{{range .TransportErrors}}<tr><td><code>{{.Code}}</code></td><td>{{.Meaning}}</td></tr>{{end}}</tbody></table>
<p>Commands add their own codes, the REST API's (listed with each command).</p>
<h2 id="close-codes">Close codes</h2>
<table><thead><tr><th scope="col">code</th><th scope="col">reason</th><th scope="col">meaning</th></tr></thead><tbody>
{{range .CloseCodes}}<tr><td>{{.Code}}</td><td>{{if .Reason}}<code>{{.Reason}}</code>{{end}}</td><td>{{.Meaning}}</td></tr>{{end}}</tbody></table>
<h2 id="schemas">Schemas</h2>
{{range .Schemas}}<section id="schema-{{.Name}}" aria-labelledby="schema-{{.Name}}-h"><h3 id="schema-{{.Name}}-h">{{.Name}}</h3>{{if .Description}}<p>{{.Description}}</p>{{end}}
{{if .Fields}}<table><thead><tr><th scope="col">field</th><th scope="col">type</th><th scope="col">required</th><th scope="col">values</th><th scope="col">description</th></tr></thead><tbody>
{{range .Fields}}<tr><td><code>{{.Name}}</code></td><td>{{template "type" .Type}}</td><td>{{if .Required}}yes{{else}}no{{end}}</td><td>{{range $i, $e := .Enum}}{{if $i}}, {{end}}<code>{{$e}}</code>{{end}}{{if .Rules}}{{if .Enum}}; {{end}}{{.Rules}}{{end}}</td><td>{{.Description}}</td></tr>{{end}}</tbody></table>
{{else}}<p>{{template "type" .Type}}</p>{{end}}</section>{{end}}
</main></body></html>
{{define "type"}}{{range .}}{{if .Link}}<a href="#schema-{{.Link}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}{{end}}{{end}}`))

// renderPage renders the human reference of doc.
func renderPage(doc *Document) ([]byte, error) {
	p := page{Doc: doc, StyleCSS: template.CSS(pageStyle), CloseCodes: doc.Channels[ChannelName].CloseCodes,
		Address: doc.Channels[ChannelName].Address}
	if em, ok := doc.Components.Messages[errorKey]; ok {
		p.TransportErrors = em.Errors
	}
	for id, op := range doc.Operations {
		if id == ReceiveOperation(errorKey) {
			continue
		}
		po := pageOp{ID: id, Type: op.Title, Summary: op.Summary, Description: op.Description, Errors: op.Errors}
		if len(op.Messages) > 0 {
			po.Data = dataType(doc, op.Messages[0])
		}
		if op.Reply != nil && len(op.Reply.Messages) > 0 {
			po.HasAck = true
			po.Ack = dataType(doc, op.Reply.Messages[0])
		}
		if op.Action == "send" {
			p.Send = append(p.Send, po)
		} else {
			p.Receive = append(p.Receive, po)
		}
	}
	byType := func(a, b pageOp) int { return strings.Compare(a.Type, b.Type) }
	slices.SortFunc(p.Send, byType)
	slices.SortFunc(p.Receive, byType)
	names := make([]string, 0, len(doc.Components.Schemas))
	for name := range doc.Components.Schemas {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p.Schemas = append(p.Schemas, pageSchemaOf(name, doc.Components.Schemas[name]))
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("asyncapi: render page: %w", err)
	}
	return buf.Bytes(), nil
}

// dataType is the type of the data of the message ref points to.
func dataType(doc *Document, ref Ref) []typeRef {
	key := strings.TrimPrefix(ref.Ref, messagePrefix)
	m, ok := doc.Components.Messages[key]
	if !ok || m.Payload == nil || m.Payload.Properties["data"] == nil {
		return []typeRef{{Text: "?"}}
	}
	return typeOf(m.Payload.Properties["data"])
}

// typeOf describes a schema as text with links to the named schemas.
func typeOf(s *huma.Schema) []typeRef {
	switch {
	case s == nil:
		return []typeRef{{Text: "any"}}
	case s.Ref != "":
		name := strings.TrimPrefix(s.Ref, schemaPrefix)
		return []typeRef{{Text: name, Link: name}}
	case len(s.AnyOf) > 0:
		var out []typeRef
		for i, sub := range s.AnyOf {
			if i > 0 {
				out = append(out, typeRef{Text: " or "})
			}
			out = append(out, typeOf(sub)...)
		}
		return out
	}
	var t string
	switch s.Type {
	case "":
		return []typeRef{{Text: "any JSON value"}}
	case huma.TypeArray:
		out := append([]typeRef{{Text: "array of "}}, typeOf(s.Items)...)
		if s.Nullable {
			out = append(out, typeRef{Text: " or null"})
		}
		return out
	case huma.TypeObject:
		if s.Properties == nil {
			t = "object"
			if ap, ok := s.AdditionalProperties.(*huma.Schema); ok {
				return append([]typeRef{{Text: "object of "}}, typeOf(ap)...)
			}
			if ap, ok := s.AdditionalProperties.(bool); ok && !ap {
				t = "empty object"
			}
		} else {
			t = "object"
		}
	default:
		t = s.Type
	}
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	if s.Nullable {
		t += " or null"
	}
	return []typeRef{{Text: t}}
}

func pageSchemaOf(name string, s *huma.Schema) pageSchema {
	ps := pageSchema{Name: name, Description: s.Description}
	if s.Type != huma.TypeObject || len(s.Properties) == 0 {
		ps.Type = typeOf(s)
		return ps
	}
	props := make([]string, 0, len(s.Properties))
	for p := range s.Properties {
		props = append(props, p)
	}
	slices.Sort(props)
	for _, p := range props {
		fs := s.Properties[p]
		f := pageField{Name: p, Type: typeOf(fs), Required: slices.Contains(s.Required, p), Description: fs.Description, Rules: rules(fs)}
		target := fs
		if fs.Type == huma.TypeArray && fs.Items != nil {
			target = fs.Items
		}
		for _, e := range target.Enum {
			f.Enum = append(f.Enum, fmt.Sprint(e))
		}
		ps.Fields = append(ps.Fields, f)
	}
	return ps
}

// rules lists a field's constraints.
func rules(s *huma.Schema) string {
	var r []string
	num := func(label string, v *float64) {
		if v != nil {
			r = append(r, fmt.Sprintf("%s %g", label, *v))
		}
	}
	count := func(label string, v *int) {
		if v != nil {
			r = append(r, fmt.Sprintf("%s %d", label, *v))
		}
	}
	num("min", s.Minimum)
	num("max", s.Maximum)
	count("min length", s.MinLength)
	count("max length", s.MaxLength)
	count("max items", s.MaxItems)
	if s.Pattern != "" {
		r = append(r, "pattern "+s.Pattern)
	}
	return strings.Join(r, ", ")
}
