package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

// TestOpenAPIDocument checks what the response checks of servertest cannot: the examples are
// valid against their schemas, every list follows the one end-of-list convention, and the
// document names its server.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	resp, err := n.Client().Get(n.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %v", resp.StatusCode, err)
	}
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Type     any   `json:"type"`
					Examples []any `json:"examples"`
				} `json:"properties"`
				Required []string `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}

	t.Run("servers", func(t *testing.T) {
		if len(doc.Servers) == 0 || doc.Servers[0].URL != "/" {
			t.Errorf("servers = %+v, want the relative server /", doc.Servers)
		}
	})

	t.Run("examples", func(t *testing.T) {
		count := 0
		for name, s := range doc.Components.Schemas {
			for prop, p := range s.Properties {
				for _, ex := range p.Examples {
					count++
					ptr := "/components/schemas/" + name + "/properties/" + prop
					if err := servertest.ValidateExample(raw, ptr, ex); err != nil {
						t.Errorf("example %v of %s.%s: %v", ex, name, prop, err)
					}
				}
			}
		}
		// The main bodies show examples in the docs renderer.
		for _, name := range []string{"CreateInput", "SendInput", "ChatView", "Message", "DeviceInput", "RegisterInputBody", "LoginInputBody", "TokenPair", "File"} {
			s, ok := doc.Components.Schemas[name]
			if !ok {
				continue // renamed: the loop above still checks its examples
			}
			has := false
			for _, p := range s.Properties {
				has = has || len(p.Examples) > 0
			}
			if !has {
				t.Errorf("schema %s has no example", name)
			}
		}
		if count == 0 {
			t.Error("the document has no examples")
		}
	})

	t.Run("end of lists", func(t *testing.T) {
		// Every body with items carries next_cursor, required, a plain string ("" on the last page).
		var names []string
		for name := range doc.Components.Schemas {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			s := doc.Components.Schemas[name]
			items, ok := s.Properties["items"]
			if !ok || strings.Contains(name, "Snapshot") {
				continue
			}
			if items.Type != "array" {
				t.Errorf("%s.items: type %v, want array (never null)", name, items.Type)
			}
			nc, ok := s.Properties["next_cursor"]
			if !ok || nc.Type != "string" {
				t.Errorf("%s: next_cursor missing or not a plain string (%v)", name, nc.Type)
			}
			req := false
			for _, r := range s.Required {
				req = req || r == "next_cursor"
			}
			if !req {
				t.Errorf("%s: next_cursor is not required", name)
			}
		}
	})
}
