package realtime

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"
)

// TestCloseCausesListed checks that every close cause declared in conn.go is in closeCauses,
// so that the protocol document (CloseCodes) lists every code the server sends.
func TestCloseCausesListed(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "conn.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared, listed []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.CompositeLit)
			if !ok {
				continue
			}
			switch typ := lit.Type.(type) {
			case *ast.Ident:
				if typ.Name == "closeCause" {
					declared = append(declared, name.Name)
				}
			case *ast.ArrayType:
				if id, ok := typ.Elt.(*ast.Ident); ok && id.Name == "closeCause" && name.Name == "closeCauses" {
					for _, e := range lit.Elts {
						if id, ok := e.(*ast.Ident); ok {
							listed = append(listed, id.Name)
						}
					}
				}
			}
		}
		return true
	})
	if len(declared) == 0 || len(listed) != len(closeCauses) {
		t.Fatalf("declared %v, listed %v", declared, listed)
	}
	for _, d := range declared {
		if !slices.Contains(listed, d) {
			t.Errorf("close cause %s is not in closeCauses", d)
		}
	}
	for _, c := range CloseCodes() {
		if c.Meaning == "" {
			t.Errorf("close code %d %q has no meaning", c.Code, c.Reason)
		}
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	h, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(t.Context()) })
	h.Describe(Protocol{
		Commands: []CommandSpec{{Type: "b_cmd", Data: PingData{}}, {Type: "a_cmd"}},
		Events:   []EventSpec{{Type: "b_cmd", Data: PingData{}}},
	})
	p := h.Protocol()
	var cmds, evs []string
	for _, c := range p.Commands {
		cmds = append(cmds, c.Type)
	}
	for _, e := range p.Events {
		evs = append(evs, e.Type)
	}
	if want := []string{"a_cmd", "b_cmd", "ping", "presence_count", "presence_subscribe", "presence_unsubscribe"}; !slices.Equal(cmds, want) {
		t.Errorf("commands %v, want %v", cmds, want)
	}
	if want := []string{"b_cmd", "presence", "presence_snapshot"}; !slices.Equal(evs, want) {
		t.Errorf("events %v, want %v", evs, want)
	}
	for _, p := range []Protocol{
		{Commands: []CommandSpec{{Type: "a_cmd"}}},
		{Events: []EventSpec{{Type: "presence"}}},
		{Commands: []CommandSpec{{Type: "bad type"}}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Describe(%+v) did not panic", p)
				}
			}()
			h.Describe(p)
		}()
	}
}
