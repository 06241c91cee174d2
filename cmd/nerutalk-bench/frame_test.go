package main

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeFrameMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		string(sampleFrame),
		`{"type":"ack","id":"m12","data":{"id":"x","chat_id":"c","seq":3,"client_id":"k","text":"nb1 1 2 x"}}`,
		`{"type":"error","id":"m9","data":{"code":"not_found","detail":"chat"}}`,
		`{"type":"ack","id":"p1","data":{"ts":"2026-11-25T20:00:00Z"}}`,
		`{"type":"presence","data":{"user_id":"u","online":true,"last_seen":null}}`,
		` { "type" : "message_new" , "data" : { "seq" : -4 , "text" : null , "nested" : {"a":[1,{"b":"}"}],"c":"\"q"} } } `,
		`{"data":{"text":"caf\u00e9 \"quoted\""},"type":"message_new"}`,
		`{"TYPE":"ack","Id":"m1","data":{"Seq":5,"CHAT_ID":"c"}}`,
		`{"type":"x","data":{"seq":1.5}}`,
		`{"type":"x","data":{"seq":"5","text":"t"}}`,
		`{"type":"x","data":[]}`,
		`{"type":"x","type":"y"}`,
		`{"type":"bad utf8 \xff","data":{}}`,
		`{"type":"x"} trailing`,
		`[1,2]`,
		`{}`,
		``,
	} {
		var got, want inFrame
		gotErr := decodeFrame([]byte(in), &got)
		wantErr := json.Unmarshal([]byte(in), &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Errorf("decodeFrame(%q) error = %v, encoding/json %v", in, gotErr, wantErr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("decodeFrame(%q) differs from encoding/json (-json +ours):\n%s", in, diff)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(sampleFrame)
	f.Add([]byte(`{"type":"error","id":"m9","data":{"code":"not_found","detail":"chat"}}`))
	f.Add([]byte(`{"data":{"seq":12,"text":"a\u0041","x":[true,false,null,{"y":-1.5e3}]},"type":"t"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var got, want inFrame
		gotErr := decodeFrame(in, &got)
		wantErr := json.Unmarshal(in, &want)
		if !json.Valid(in) {
			return // both refuse; what they filled before noticing does not matter
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("decodeFrame(%q) error = %v, encoding/json %v", in, gotErr, wantErr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("decodeFrame(%q) differs from encoding/json (-json +ours):\n%s", in, diff)
		}
	})
}
