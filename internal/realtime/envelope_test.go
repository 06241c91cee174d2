package realtime

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeEnvelope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		want     envelope
		wantCode string // "" = valid
	}{
		{"full", `{"type":"send_message","id":"1","data":{"a":1}}`, envelope{"send_message", "1", json.RawMessage(`{"a":1}`)}, ""},
		{"no id, no data", `{"type":"ping"}`, envelope{"ping", "", emptyObject}, ""},
		{"null id and data", `{"type":"ping","id":null,"data":null}`, envelope{"ping", "", emptyObject}, ""},
		{"whitespace", " \n{ \"type\" : \"ping\" } ", envelope{"ping", "", emptyObject}, ""},
		{"extra fields ignored", `{"type":"ping","v":2}`, envelope{"ping", "", emptyObject}, ""},
		{"empty", ``, envelope{}, CodeBadFrame},
		{"array", `[]`, envelope{}, CodeBadFrame},
		{"string", `"ping"`, envelope{}, CodeBadFrame},
		{"truncated", `{"type":"ping"`, envelope{}, CodeBadFrame},
		{"trailing garbage", `{"type":"ping"} x`, envelope{}, CodeBadFrame},
		{"numeric id", `{"type":"ping","id":7}`, envelope{}, CodeBadFrame},
		{"long id", `{"type":"ping","id":"` + strings.Repeat("i", maxIDLen+1) + `"}`, envelope{}, CodeBadFrame},
		{"bad id keeps nothing", `{"type":"ping","id":{}}`, envelope{}, CodeBadFrame},
		{"missing type keeps id", `{"id":"x"}`, envelope{ID: "x"}, CodeBadFrame},
		{"numeric type", `{"type":1,"id":"x"}`, envelope{ID: "x"}, CodeBadFrame},
		{"empty type", `{"type":"","id":"x"}`, envelope{ID: "x"}, CodeBadFrame},
		{"type with space", `{"type":"a b","id":"x"}`, envelope{ID: "x"}, CodeBadFrame},
		{"long type", `{"type":"` + strings.Repeat("t", maxTypeLen+1) + `"}`, envelope{}, CodeBadFrame},
		{"data array", `{"type":"ping","id":"x","data":[]}`, envelope{Type: "ping", ID: "x"}, CodeBadFrame},
		{"data string", `{"type":"ping","data":"{}"}`, envelope{Type: "ping"}, CodeBadFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeEnvelope([]byte(tt.in))
			gotCode := ""
			if err != nil {
				gotCode = err.code
			}
			if gotCode != tt.wantCode {
				t.Fatalf("code = %q (%v), want %q", gotCode, err, tt.wantCode)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(jsonEqual)); diff != "" {
				t.Errorf("envelope (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ, id string
		data    any
		want    string
	}{
		{"presence", "", nil, `{"type":"presence","data":{}}`},
		{"ack", "7", map[string]int{"seq": 3}, `{"type":"ack","id":"7","data":{"seq":3}}`},
		{"ack", "x", json.RawMessage(`{"a":[1]}`), `{"type":"ack","id":"x","data":{"a":[1]}}`},
	}
	for _, tt := range tests {
		got, err := encodeFrame(tt.typ, tt.id, tt.data)
		if err != nil || string(got) != tt.want {
			t.Errorf("encodeFrame(%q, %q, %v) = %s, %v; want %s", tt.typ, tt.id, tt.data, got, err, tt.want)
		}
	}
	if _, err := encodeFrame("x", "", make(chan int)); err == nil {
		t.Error("unencodable data: no error")
	}
}

// FuzzDecodeEnvelope checks that any client frame decodes without panicking, and that whatever is
// accepted satisfies the envelope's rules and survives a round trip.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping"}`, `{"type":"send_message","id":"1","data":{"chat_id":"c","text":"hé"}}`,
		`{"type":"x","id":null,"data":null}`, `[]`, `{"id":"x"}`, `{"type":"a","data":[1]}`, "\x00", `{"type":"\u0000"}`,
		`{"type":"ping","type":"echo"}`, `{"TYPE":"ping"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := decodeEnvelope(b)
		if len(env.ID) > maxIDLen {
			t.Fatalf("id of %d bytes", len(env.ID))
		}
		if err != nil {
			if err.code != CodeBadFrame || err.detail == "" {
				t.Fatalf("error %+v", err)
			}
			return
		}
		if !validType(env.Type) {
			t.Fatalf("accepted type %q", env.Type)
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(env.Data, &obj) != nil || obj == nil {
			t.Fatalf("accepted data %q is not an object", env.Data)
		}
		again, eerr := encodeFrame(env.Type, env.ID, env.Data)
		if eerr != nil {
			t.Fatalf("re-encode: %v", eerr)
		}
		env2, ferr := decodeEnvelope(again)
		if ferr != nil || env2.Type != env.Type || env2.ID != env.ID {
			t.Fatalf("round trip: %+v, %v; want %+v", env2, ferr, env)
		}
	})
}
