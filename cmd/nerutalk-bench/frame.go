package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeFrame fills f from one server envelope. Decoding every delivery with encoding/json costs
// the generator several microseconds a frame, which on a shared machine is CPU taken from the
// server under test; so this scans the JSON once, reads only the fields inFrame has and skips
// the rest. Whatever it does not handle exactly as encoding/json would (escapes or invalid UTF-8
// in a field it reads, a key that differs from a field's name only in case, a number that is not
// a plain integer, malformed JSON) makes it start over with encoding/json, so for any valid
// input the result is the same as json.Unmarshal's.
func decodeFrame(b []byte, f *inFrame) error {
	*f = inFrame{}
	d := frameScanner{b: b}
	if d.envelope(f) {
		return nil
	}
	*f = inFrame{}
	return json.Unmarshal(b, f)
}

type frameScanner struct {
	b []byte
	i int
}

var envelopeKeys = []string{"type", "id", "data"}
var dataKeys = []string{"chat_id", "seq", "client_id", "text", "code", "detail"}

func (d *frameScanner) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *frameScanner) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// envelope scans the top-level object; false means "fall back".
func (d *frameScanner) envelope(f *inFrame) bool {
	ok := d.object(func(key []byte) bool {
		switch string(key) {
		case "type":
			return d.str(&f.Type)
		case "id":
			return d.str(&f.ID)
		case "data":
			if d.peek() != '{' {
				return false
			}
			return d.object(func(key []byte) bool {
				switch string(key) {
				case "chat_id":
					return d.str(&f.Data.ChatID)
				case "seq":
					return d.integer(&f.Data.Seq)
				case "client_id":
					return d.str(&f.Data.ClientID)
				case "text":
					return d.str(&f.Data.Text)
				case "code":
					return d.str(&f.Data.Code)
				case "detail":
					return d.str(&f.Data.Detail)
				}
				return !foldsTo(key, dataKeys) && d.skip(0)
			})
		}
		return !foldsTo(key, envelopeKeys) && d.skip(0)
	})
	if !ok {
		return false
	}
	d.ws()
	return d.i == len(d.b)
}

// foldsTo reports whether key matches one of names case-insensitively (encoding/json would
// then use it for that field).
func foldsTo(key []byte, names []string) bool {
	for _, n := range names {
		if len(n) == len(key) && strings.EqualFold(n, string(key)) {
			return true
		}
	}
	return false
}

// object scans {"k": v, ...}, calling field with each key positioned at its value.
func (d *frameScanner) object(field func(key []byte) bool) bool {
	if d.peek() != '{' {
		return false
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return true
	}
	for {
		if d.peek() != '"' {
			return false
		}
		key, ok := d.rawString()
		if !ok || bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		if d.peek() != ':' {
			return false
		}
		d.i++
		d.ws()
		if !field(key) {
			return false
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// rawString returns the bytes between the quotes (escapes left as they are).
func (d *frameScanner) rawString() ([]byte, bool) {
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '\\':
			j++
		case c == '"':
			d.i = j + 1
			return d.b[start:j], true
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// str reads a string (or null, which leaves dst alone, as encoding/json does).
func (d *frameScanner) str(dst *string) bool {
	switch d.peek() {
	case '"':
		raw, ok := d.rawString()
		if !ok || bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
			return false
		}
		*dst = string(raw)
		return true
	case 'n':
		return d.literal("null")
	}
	return false
}

// integer reads a plain integer (or null).
func (d *frameScanner) integer(dst *int64) bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	v, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return false
	}
	*dst = v
	return true
}

func (d *frameScanner) literal(word string) bool {
	if !bytes.HasPrefix(d.b[d.i:], []byte(word)) {
		return false
	}
	d.i += len(word)
	return true
}

// skip passes over one value of any kind.
func (d *frameScanner) skip(depth int) bool {
	if depth > 64 {
		return false
	}
	switch c := d.peek(); {
	case c == '"':
		_, ok := d.rawString()
		return ok
	case c == '{':
		return d.object(func([]byte) bool { return d.skip(depth + 1) })
	case c == '[':
		d.i++
		if d.peek() == ']' {
			d.i++
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		start := d.i
		for d.i < len(d.b) && strings.IndexByte("+-0123456789.eE", d.b[d.i]) >= 0 {
			d.i++
		}
		return d.i > start
	}
	return false
}
