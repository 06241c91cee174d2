package server_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/server/servertest"
	"github.com/nerutalk/nerutalk/internal/store"
)

var updateSDK = flag.Bool("update-sdk", false, "rewrite web/sdk/openapi.json and web/sdk/asyncapi.json from the server's documents")

// TestSDKDocuments keeps the TypeScript SDK (web/sdk) in step with the server: the OpenAPI and
// AsyncAPI documents its types are generated from must equal, as JSON, the documents a server
// built from this code serves. It needs no Node: scripts/gen-sdk.sh rewrites the documents
// (this test with -update-sdk) and regenerates the types from them.
func TestSDKDocuments(t *testing.T) {
	t.Parallel()
	n := servertest.New(t, store.SQLite, nil)
	for _, tc := range []struct{ route, file string }{
		{"/openapi.json", "openapi.json"},
		{"/asyncapi.json", "asyncapi.json"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			live := getDocument(t, n, tc.route)
			path := filepath.Join("..", "..", "web", "sdk", tc.file)
			if *updateSDK {
				var buf bytes.Buffer
				if err := json.Indent(&buf, live, "", "  "); err != nil {
					t.Fatal(err)
				}
				buf.WriteByte('\n')
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			stored, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v: run scripts/gen-sdk.sh", err)
			}
			var a, b any
			if err := json.Unmarshal(live, &a); err != nil {
				t.Fatalf("GET %s: %v", tc.route, err)
			}
			if err := json.Unmarshal(stored, &b); err != nil {
				t.Fatalf("web/sdk/%s: %v: run scripts/gen-sdk.sh", tc.file, err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("web/sdk/%s differs from the server's %s (%s): run scripts/gen-sdk.sh (and commit web/sdk)",
					tc.file, tc.route, strings.Join(jsonDiff("", a, b, 8), "; "))
			}
		})
	}
}

// jsonDiff lists up to max JSON pointers where live and stored differ, for the failure message.
func jsonDiff(ptr string, live, stored any, max int) []string {
	if reflect.DeepEqual(live, stored) || max <= 0 {
		return nil
	}
	lm, ok1 := live.(map[string]any)
	sm, ok2 := stored.(map[string]any)
	if !ok1 || !ok2 {
		return []string{ptr + " changed"}
	}
	keys := make([]string, 0, len(lm)+len(sm))
	for k := range lm {
		keys = append(keys, k)
	}
	for k := range sm {
		if _, ok := lm[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if len(out) >= max {
			break
		}
		lv, inLive := lm[k]
		sv, inStored := sm[k]
		p := ptr + "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
		switch {
		case !inStored:
			out = append(out, p+" added")
		case !inLive:
			out = append(out, p+" removed")
		default:
			out = append(out, jsonDiff(p, lv, sv, max-len(out))...)
		}
	}
	return out
}

func getDocument(t *testing.T, n *servertest.Node, route string) []byte {
	t.Helper()
	resp, err := n.Client().Get(n.URL + route)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", route, resp.StatusCode, err)
	}
	return raw
}
