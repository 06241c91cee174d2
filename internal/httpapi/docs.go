package httpapi

import (
	"bytes"
	"html/template"
	"net/http"
	"sort"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// The docs page is rendered on the server from the generated OpenAPI document, so it needs no
// script or stylesheet from the internet.

type docOp struct {
	Method, Path, ID, Summary, Description string
	Secured                                bool
	Params                                 []docField
	Body                                   string
	Responses                              []docResponse
}

type docResponse struct{ Status, Description, Schema string }

type docField struct {
	Name, In, Type, Description string
	Required                    bool
}

type docSchema struct {
	Name, Description string
	Fields            []docField
}

type docTag struct {
	Name string
	Ops  []docOp
}

type docPage struct {
	Title, Version, Description string
	Tags                        []docTag
	Schemas                     []docSchema
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;display:flex;color:#1d2330}
nav{width:280px;height:100vh;overflow:auto;position:sticky;top:0;background:#f4f6fa;padding:1em;box-sizing:border-box;font-size:13px}
nav a{display:block;color:#1d2330;text-decoration:none;padding:1px 0}main{flex:1;padding:1em 2em;max-width:1000px}
.op{border:1px solid #dde2ea;border-radius:6px;padding:.6em 1em;margin:1em 0}.m{font-weight:700;display:inline-block;min-width:4.5em}
.GET{color:#1a7f37}.POST{color:#0969da}.PUT,.PATCH{color:#9a6700}.DELETE{color:#cf222e}
table{border-collapse:collapse;font-size:13px;margin:.4em 0}td,th{border:1px solid #dde2ea;padding:2px 8px;text-align:left;vertical-align:top}
code{background:#f4f6fa;padding:0 3px;border-radius:3px}.lock{font-size:12px;color:#6e7781}
</style></head><body>
<nav><strong>{{.Title}}</strong> <small>{{.Version}}</small><p><a href="/openapi.json">openapi.json</a></p>
{{range .Tags}}<p><strong>{{.Name}}</strong></p>{{range .Ops}}<a href="#{{.ID}}"><span class="m {{.Method}}">{{.Method}}</span> {{.Path}}</a>{{end}}{{end}}
<p><strong><a href="#schemas">Schemas</a></strong></p></nav>
<main><h1>{{.Title}}</h1><p>{{.Description}}</p>
{{range .Tags}}<h2>{{.Name}}</h2>{{range .Ops}}<div class="op" id="{{.ID}}"><div><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code>
{{if .Secured}}<span class="lock">(bearer token)</span>{{end}}</div><p><strong>{{.Summary}}</strong></p>{{if .Description}}<p>{{.Description}}</p>{{end}}
{{if .Params}}<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>{{range .Params}}<tr><td><code>{{.Name}}</code>{{if .Required}} *{{end}}</td><td>{{.In}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{if .Body}}<p>Request body: {{.Body}}</p>{{end}}
<table><tr><th>status</th><th>meaning</th><th>body</th></tr>{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}</td><td>{{.Schema}}</td></tr>{{end}}</table></div>{{end}}{{end}}
<h2 id="schemas">Schemas</h2>{{range .Schemas}}<h3 id="schema-{{.Name}}">{{.Name}}</h3>{{if .Description}}<p>{{.Description}}</p>{{end}}
{{if .Fields}}<table><tr><th>field</th><th>type</th><th></th></tr>{{range .Fields}}<tr><td><code>{{.Name}}</code>{{if .Required}} *{{end}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}{{end}}
</main></body></html>`))

func schemaType(s *huma.Schema) string {
	if s == nil {
		return ""
	}
	if s.Ref != "" {
		return s.Ref[strings.LastIndex(s.Ref, "/")+1:]
	}
	switch s.Type {
	case "array":
		return "[" + schemaType(s.Items) + "]"
	case "":
		return "any"
	}
	t := s.Type
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	return t
}

// needsCredentials reports whether a security requirement list asks for any credential; an empty
// requirement object ({}) means the operation is open to anonymous callers.
func needsCredentials(reqs []map[string][]string) bool {
	for _, r := range reqs {
		if len(r) > 0 {
			return true
		}
	}
	return false
}

func contentSchema(content map[string]*huma.MediaType) string {
	var parts []string
	for ct, mt := range content {
		parts = append(parts, schemaType(mt.Schema)+" <"+ct+">")
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func buildDocPage(oapi *huma.OpenAPI) docPage {
	page := docPage{Title: oapi.Info.Title, Version: oapi.Info.Version, Description: oapi.Info.Description}
	byTag := map[string][]docOp{}
	for path, item := range oapi.Paths {
		for _, mo := range []struct {
			m  string
			op *huma.Operation
		}{{"GET", item.Get}, {"POST", item.Post}, {"PUT", item.Put}, {"PATCH", item.Patch}, {"DELETE", item.Delete}} {
			if mo.op == nil {
				continue
			}
			d := docOp{Method: mo.m, Path: path, ID: mo.op.OperationID, Summary: mo.op.Summary,
				Description: mo.op.Description, Secured: needsCredentials(mo.op.Security)}
			for _, p := range mo.op.Parameters {
				d.Params = append(d.Params, docField{Name: p.Name, In: p.In, Type: schemaType(p.Schema), Description: p.Description, Required: p.Required})
			}
			if mo.op.RequestBody != nil {
				d.Body = contentSchema(mo.op.RequestBody.Content)
			}
			for status, resp := range mo.op.Responses {
				d.Responses = append(d.Responses, docResponse{Status: status, Description: resp.Description, Schema: contentSchema(resp.Content)})
			}
			sort.Slice(d.Responses, func(i, j int) bool { return d.Responses[i].Status < d.Responses[j].Status })
			tag := "Other"
			if len(mo.op.Tags) > 0 {
				tag = mo.op.Tags[0]
			}
			byTag[tag] = append(byTag[tag], d)
		}
	}
	for name, ops := range byTag {
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].Path != ops[j].Path {
				return ops[i].Path < ops[j].Path
			}
			return ops[i].Method < ops[j].Method
		})
		page.Tags = append(page.Tags, docTag{Name: name, Ops: ops})
	}
	sort.Slice(page.Tags, func(i, j int) bool { return page.Tags[i].Name < page.Tags[j].Name })
	if oapi.Components != nil && oapi.Components.Schemas != nil {
		for name, s := range oapi.Components.Schemas.Map() {
			ds := docSchema{Name: name, Description: s.Description}
			required := map[string]bool{}
			for _, r := range s.Required {
				required[r] = true
			}
			for field, fs := range s.Properties {
				ds.Fields = append(ds.Fields, docField{Name: field, Type: schemaType(fs), Description: fs.Description, Required: required[field]})
			}
			sort.Slice(ds.Fields, func(i, j int) bool { return ds.Fields[i].Name < ds.Fields[j].Name })
			page.Schemas = append(page.Schemas, ds)
		}
		sort.Slice(page.Schemas, func(i, j int) bool { return page.Schemas[i].Name < page.Schemas[j].Name })
	}
	return page
}

// serveDocs renders the human API reference, once, after every operation has been registered.
func (a *API) serveDocs(w http.ResponseWriter, r *http.Request) {
	a.docsOnce.Do(func() {
		var buf bytes.Buffer
		if err := docsTemplate.Execute(&buf, buildDocPage(a.Root.OpenAPI())); err != nil {
			buf.Reset()
			buf.WriteString("docs page failed to render: " + template.HTMLEscapeString(err.Error()))
		}
		a.docsHTML = buf.Bytes()
	})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(a.docsHTML)
}
