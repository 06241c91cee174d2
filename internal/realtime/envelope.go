package realtime

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// Error codes of the transport itself, carried in "error" frames. Command handlers add their own
// (the apperr codes of the domain).
const (
	CodeBadFrame    = "bad_frame"    // not a JSON envelope, or a binary frame
	CodeUnknownType = "unknown_type" // no command of that type
	CodeRateLimited = "rate_limited" // over the frames-per-second limit
	CodeInternal    = "internal"     // the handler failed unexpectedly
)

// Limits of the envelope fields.
const (
	maxTypeLen = 64
	maxIDLen   = 128
)

// Frame is one envelope as it travels on the socket: {"type": ..., "id"?: ..., "data": {...}}.
// The hub builds outgoing frames itself; Frame is exported for clients and tests that read them.
type Frame struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Data json.RawMessage `json:"data"`
}

// ErrorData is the data of an "error" frame.
type ErrorData struct {
	Code   string              `json:"code" doc:"Stable machine-readable code: the transport's (bad_frame, unknown_type, rate_limited, internal) or the command's (the REST API's codes)"`
	Detail string              `json:"detail" doc:"Human-readable explanation, safe to show"`
	Errors []apperr.FieldError `json:"errors,omitempty" doc:"The offending fields, for validation_failed"`
}

// PingData is the data of the ack that answers a "ping" frame.
type PingData struct {
	TS string `json:"ts" format:"date-time" doc:"Server time, RFC 3339 UTC with nanoseconds"`
}

// frameError is a client frame that cannot be processed; it becomes an "error" frame.
type frameError struct {
	code, detail string
}

func (e *frameError) Error() string { return e.code + ": " + e.detail }

func badFrame(format string, args ...any) *frameError {
	return &frameError{code: CodeBadFrame, detail: fmt.Sprintf(format, args...)}
}

// envelope is a decoded client frame.
type envelope struct {
	Type string
	ID   string
	Data json.RawMessage // always a JSON object ({} when the frame had none)
}

var emptyObject = json.RawMessage(`{}`)

// decodeEnvelope parses a client frame. On failure the returned envelope still carries the id when
// it could be read, so that the error frame can answer it.
func decodeEnvelope(b []byte) (envelope, *frameError) {
	var env envelope
	var raw struct {
		Type json.RawMessage `json:"type"`
		ID   json.RawMessage `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return env, badFrame("a frame must be a JSON object {\"type\", \"id\", \"data\"}")
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return env, badFrame("malformed JSON")
	}
	if len(raw.ID) > 0 && !isNull(raw.ID) {
		var id string
		if err := json.Unmarshal(raw.ID, &id); err != nil {
			return env, badFrame("id must be a string")
		}
		if len(id) > maxIDLen {
			return env, badFrame("id must be at most %d bytes", maxIDLen)
		}
		env.ID = id
	}
	if len(raw.Type) == 0 || isNull(raw.Type) {
		return env, badFrame("type is required")
	}
	if err := json.Unmarshal(raw.Type, &env.Type); err != nil {
		return env, badFrame("type must be a string")
	}
	if !validType(env.Type) {
		env.Type = ""
		return env, badFrame("type must be 1 to %d letters, digits, '_', '.' or '-'", maxTypeLen)
	}
	switch {
	case len(raw.Data) == 0 || isNull(raw.Data):
		env.Data = emptyObject
	case raw.Data[0] == '{':
		env.Data = raw.Data
	default:
		return env, badFrame("data must be a JSON object")
	}
	return env, nil
}

func isNull(b json.RawMessage) bool { return string(b) == "null" }

func validType(s string) bool {
	if s == "" || len(s) > maxTypeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// outFrame is an outgoing envelope before encoding.
type outFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Data any    `json:"data"`
}

// encodeFrame encodes one outgoing envelope; nil data becomes {}.
func encodeFrame(typ, id string, data any) ([]byte, error) {
	if data == nil {
		data = emptyObject
	}
	b, err := json.Marshal(outFrame{Type: typ, ID: id, Data: data})
	if err != nil {
		return nil, fmt.Errorf("realtime: encode %q frame: %w", typ, err)
	}
	return b, nil
}

// errorFrame encodes an "error" frame; it cannot fail.
func errorFrame(id string, d ErrorData) []byte {
	b, err := json.Marshal(outFrame{Type: "error", ID: id, Data: d})
	if err != nil { // only strings and field errors: cannot happen
		panic("realtime: encode error frame: " + err.Error())
	}
	return b
}
