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
		{CmdOffer, `{"call_id":"01a23c3b-b83c-7843-b51b-9695464cd964","to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142","sdp":"v=0"}`, ""},
		{CmdOffer, `{"call_id":"01a23c3b-b83c-7843-b51b-9695464cd964","to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142","sdp":"v=0","from_user_id":"forged"}`, ""},
		{CmdOffer, `{"call_id":"01a23c3b-b83c-7843-b51b-9695464cd964","to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142"}`, "validation_failed"},
		{CmdOffer, `{"to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142","sdp":"x"}`, "validation_failed"},
		{CmdAnswer, `{"call_id":"01a23c3b-b83c-7843-b51b-9695464cd964","sdp":"x"}`, "validation_failed"},
		{CmdAnswer, `{"call_id":"c\u0000","to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142","sdp":"x"}`, "validation_failed"},
		{CmdICECandidate, `{"call_id":"01a23c3b-b83c-7843-b51b-9695464cd964","to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142","candidate":{"candidate":"x"}}`, ""},
		{CmdICECandidate, `{"call_id":"01a23c3b-b83c-7843-b51b-9695464cd964","to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142","candidate":null}`, "validation_failed"},
		{CmdOffer, `[1]`, "bad_request"},
		{CmdOffer, `{"call_id":"01a23c3b-b83c-7843-b51b-9695464cd964","to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142","to_session_id":"` + strings.Repeat("s", 65) + `","sdp":"x"}`, "validation_failed"},
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
	f.Add(CmdOffer, `{"call_id":"01a23c3b-b83c-7843-b51b-9695464cd964","to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142","sdp":"v=0"}`)
	f.Add(CmdICECandidate, `{"call_id":"01a23c3b-b83c-7843-b51b-9695464cd964","to_user_id":"01a23c3b-b7a6-728e-870e-0a2f413ac142","candidate":{"candidate":"x"}}`)
	f.Add(CmdAnswer, `{"call_id":1}`)
	f.Fuzz(func(t *testing.T, typ, data string) {
		s, err := parseSignal(typ, json.RawMessage(data))
		if err != nil {
			return
		}
		if !validID(s.CallID) || !validID(s.ToUserID) || len(s.ToSessionID) > 64 || s.FromUserID != "" {
			t.Fatalf("accepted %+v", s)
		}
	})
}
