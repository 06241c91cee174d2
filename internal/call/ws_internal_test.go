package call

import (
	"encoding/json"
	"github.com/nerutalk/nerutalk/internal/apperr"
	"strings"
	"testing"
)

func TestParseSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ, data, code string
	}{
		{CmdOffer, `{"call_id":"c","to_user_id":"u","sdp":"v=0"}`, ""},
		{CmdOffer, `{"call_id":"c","to_user_id":"u","sdp":"v=0","from_user_id":"forged"}`, ""},
		{CmdOffer, `{"call_id":"c","to_user_id":"u"}`, "validation_failed"},
		{CmdOffer, `{"to_user_id":"u","sdp":"x"}`, "validation_failed"},
		{CmdAnswer, `{"call_id":"c","sdp":"x"}`, "validation_failed"},
		{CmdICECandidate, `{"call_id":"c","to_user_id":"u","candidate":{"candidate":"x"}}`, ""},
		{CmdICECandidate, `{"call_id":"c","to_user_id":"u","candidate":null}`, "validation_failed"},
		{CmdOffer, `[1]`, "bad_request"},
		{CmdOffer, `{"call_id":"c","to_user_id":"u","to_session_id":"` + strings.Repeat("s", 65) + `","sdp":"x"}`, "validation_failed"},
	}
	for _, tt := range tests {
		got, err := parseSignal(tt.typ, json.RawMessage(tt.data))
		code := ""
		if err != nil {
			code = err.Error()
			if e, ok := apperr.As(err); ok {
				code = e.Code
			}
		}
		if code != tt.code {
			t.Errorf("%s %s: code %q, want %q", tt.typ, tt.data, code, tt.code)
		}
		if err == nil && got.FromUserID != "" {
			t.Errorf("%s: from_user_id %q kept from the client", tt.data, got.FromUserID)
		}
	}
}

func FuzzParseSignal(f *testing.F) {
	f.Add(CmdOffer, `{"call_id":"c","to_user_id":"u","sdp":"v=0"}`)
	f.Add(CmdICECandidate, `{"call_id":"c","to_user_id":"u","candidate":{"candidate":"x"}}`)
	f.Add(CmdAnswer, `{"call_id":1}`)
	f.Fuzz(func(t *testing.T, typ, data string) {
		s, err := parseSignal(typ, json.RawMessage(data))
		if err != nil {
			return
		}
		if s.CallID == "" || len(s.CallID) > 64 || s.ToUserID == "" || len(s.ToUserID) > 64 || len(s.ToSessionID) > 64 || s.FromUserID != "" {
			t.Fatalf("accepted %+v", s)
		}
	})
}
