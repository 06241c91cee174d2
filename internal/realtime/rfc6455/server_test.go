package rfc6455

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op Opcode, payload []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	n := len(payload)
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16(append(b, 0x80|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, payload...)
	for i := range payload {
		b[start+i] ^= key[i&3]
	}
	return b
}

// recorder is a net.Conn whose reads come from a fixed stream and whose writes are recorded.
type recorder struct {
	net.Conn // nil: only the methods below are used
	in       io.Reader
	out      bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error)       { return r.in.Read(p) }
func (r *recorder) Write(p []byte) (int, error)      { return r.out.Write(p) }
func (r *recorder) Close() error                     { return nil }
func (r *recorder) SetReadDeadline(time.Time) error  { return nil }
func (r *recorder) SetWriteDeadline(time.Time) error { return nil }
func (r *recorder) SetDeadline(time.Time) error      { return nil }
func (r *recorder) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (r *recorder) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// serverOver returns a server Conn reading stream.
func serverOver(stream []byte, limit int64) (*Conn, *recorder) {
	rec := &recorder{in: bytes.NewReader(stream)}
	c := &Conn{nc: rec, br: bufio.NewReaderSize(rec, 1024)}
	c.SetReadLimit(limit)
	return c, rec
}

// serverFrames parses the unmasked frames the server wrote.
func serverFrames(t *testing.T, b []byte) []struct {
	op      Opcode
	payload []byte
} {
	t.Helper()
	var out []struct {
		op      Opcode
		payload []byte
	}
	for len(b) > 0 {
		if len(b) < 2 || b[0]&0x80 == 0 || b[1]&0x80 != 0 {
			t.Fatalf("bad server frame header % x", b[:min(len(b), 4)])
		}
		n, h := int(b[1]&0x7F), 2
		switch n {
		case 126:
			n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, h = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		out = append(out, struct {
			op      Opcode
			payload []byte
		}{Opcode(b[0] & 0x0F), b[h : h+n]})
		b = b[h+n:]
	}
	return out
}

func closePayload(code StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func TestReadMessages(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("x"), 70000)
	var stream []byte
	stream = append(stream, clientFrame(true, OpText, []byte(`{"type":"ping"}`))...)
	stream = append(stream, clientFrame(true, OpText, nil)...)
	stream = append(stream, clientFrame(true, OpBinary, bytes.Repeat([]byte{1}, 300))...)
	stream = append(stream, clientFrame(true, OpText, big)...)
	// A fragmented message with a ping between its fragments.
	stream = append(stream, clientFrame(false, OpText, []byte("hel"))...)
	stream = append(stream, clientFrame(true, OpPing, []byte("p1"))...)
	stream = append(stream, clientFrame(false, OpContinuation, []byte("lo "))...)
	stream = append(stream, clientFrame(true, OpContinuation, []byte("wörld"))...)
	stream = append(stream, clientFrame(true, OpPong, nil)...)
	stream = append(stream, clientFrame(true, OpClose, closePayload(StatusNormalClosure, "bye"))...)

	c, rec := serverOver(stream, 1<<20)
	pongs := 0
	c.OnPong(func() { pongs++ })
	want := []struct {
		op   Opcode
		data []byte
	}{
		{OpText, []byte(`{"type":"ping"}`)}, {OpText, []byte{}}, {OpBinary, bytes.Repeat([]byte{1}, 300)},
		{OpText, big}, {OpText, []byte("hello wörld")},
	}
	for i, w := range want {
		op, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if op != w.op || !bytes.Equal(b, w.data) {
			t.Fatalf("message %d: op %d, %d bytes; want op %d, %d bytes", i, op, len(b), w.op, len(w.data))
		}
	}
	_, _, err := c.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusNormalClosure || ce.Reason != "bye" {
		t.Fatalf("after the close frame: %v, want CloseError 1000 bye", err)
	}
	if pongs != 1 {
		t.Errorf("OnPong called %d times, want 1", pongs)
	}
	frames := serverFrames(t, rec.out.Bytes())
	if len(frames) != 2 || frames[0].op != OpPong || string(frames[0].payload) != "p1" ||
		frames[1].op != OpClose || !bytes.Equal(frames[1].payload, closePayload(StatusNormalClosure, "")) {
		t.Fatalf("server wrote %+v, want the pong p1 and the close 1000 echo", frames)
	}
	if _, _, err := c.ReadMessage(); !errors.As(err, &ce) {
		t.Errorf("reading after the close: %v, want the same CloseError", err)
	}
	if err := c.WriteTexts([][]byte{[]byte("late")}); !errors.Is(err, ErrClosed) {
		t.Errorf("write after the close handshake: %v, want ErrClosed", err)
	}
}

func TestReadRefusals(t *testing.T) {
	t.Parallel()
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	raw := func(b ...byte) []byte { return b }
	tests := []struct {
		name   string
		stream []byte
		code   StatusCode // 0: ErrMessageTooBig
	}{
		{"unmasked", unmasked, StatusProtocolError},
		{"reserved bits", append([]byte{}, func() []byte { f := clientFrame(true, OpText, []byte("x")); f[0] |= 0x40; return f }()...), StatusProtocolError},
		{"unknown opcode", clientFrame(true, 0x3, []byte("x")), StatusProtocolError},
		{"fragmented control", clientFrame(false, OpPing, nil), StatusProtocolError},
		{"long control", clientFrame(true, OpPing, bytes.Repeat([]byte("a"), 126)), StatusProtocolError},
		{"lone continuation", clientFrame(true, OpContinuation, []byte("x")), StatusProtocolError},
		{"message inside a message", append(clientFrame(false, OpText, []byte("a")), clientFrame(true, OpText, []byte("b"))...), StatusProtocolError},
		{"64-bit length with top bit", raw(0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4), StatusProtocolError},
		{"bad utf-8", clientFrame(true, OpText, []byte{0xff, 0xfe}), StatusInvalidPayload},
		{"bad utf-8 across fragments", append(clientFrame(false, OpText, []byte{0xe2, 0x82}), clientFrame(true, OpContinuation, []byte{0x28})...), StatusInvalidPayload},
		{"one-byte close", clientFrame(true, OpClose, []byte{3}), StatusProtocolError},
		{"reserved close code", clientFrame(true, OpClose, closePayload(1005, "")), StatusProtocolError},
		{"close code out of range", clientFrame(true, OpClose, closePayload(5000, "")), StatusProtocolError},
		{"close reason not utf-8", clientFrame(true, OpClose, append(closePayload(1000, ""), 0xff)), StatusInvalidPayload},
		{"too big", clientFrame(true, OpText, bytes.Repeat([]byte("a"), 101)), 0},
		{"too big in fragments", append(clientFrame(false, OpText, bytes.Repeat([]byte("a"), 60)), clientFrame(true, OpContinuation, bytes.Repeat([]byte("a"), 60))...), 0},
		{"huge length", raw(0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := serverOver(tt.stream, 100)
			_, _, err := c.ReadMessage()
			if tt.code == 0 {
				if !errors.Is(err, ErrMessageTooBig) {
					t.Fatalf("got %v, want ErrMessageTooBig", err)
				}
			} else {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != tt.code {
					t.Fatalf("got %v, want a protocol error with code %d", err, tt.code)
				}
			}
			if _, _, again := c.ReadMessage(); again != err {
				t.Errorf("second read: %v, want the same error", again)
			}
		})
	}
}

func TestTruncatedStream(t *testing.T) {
	t.Parallel()
	full := clientFrame(true, OpText, []byte("hello"))
	for n := 1; n < len(full); n++ {
		c, _ := serverOver(full[:n], 100)
		if _, _, err := c.ReadMessage(); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Errorf("%d of %d bytes: %v, want EOF", n, len(full), err)
		}
	}
}

func TestWriteTexts(t *testing.T) {
	t.Parallel()
	c, rec := serverOver(nil, 0)
	payloads := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte("b"), 125), bytes.Repeat([]byte("c"), 126),
		bytes.Repeat([]byte("d"), 65535), bytes.Repeat([]byte("e"), 65536)}
	if err := c.WriteTexts(payloads); err != nil {
		t.Fatal(err)
	}
	if err := c.WritePing(); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteClose(4008, strings.Repeat("r", 200)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteClose(1000, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v, want ErrClosed", err)
	}
	if !c.CloseSent() {
		t.Error("CloseSent is false after WriteClose")
	}
	frames := serverFrames(t, rec.out.Bytes())
	if len(frames) != len(payloads)+2 {
		t.Fatalf("%d frames, want %d", len(frames), len(payloads)+2)
	}
	for i, p := range payloads {
		if frames[i].op != OpText || !bytes.Equal(frames[i].payload, p) {
			t.Errorf("frame %d: op %d, %d bytes; want text of %d bytes", i, frames[i].op, len(frames[i].payload), len(p))
		}
	}
	if frames[len(payloads)].op != OpPing {
		t.Error("no ping frame")
	}
	cl := frames[len(payloads)+1]
	if cl.op != OpClose || len(cl.payload) != maxControlPayload || binary.BigEndian.Uint16(cl.payload) != 4008 {
		t.Errorf("close frame: op %d, %d bytes", cl.op, len(cl.payload))
	}
}

func handshakeRequest(mut func(r *http.Request)) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://chat.example.com/api/v1/ws", nil)
	r.Header.Set("Connection", "keep-alive, Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if mut != nil {
		mut(r)
	}
	return r
}

func TestHandshakeChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   Options
		mut    func(r *http.Request)
		status int // 0: accepted
	}{
		{"valid", Options{}, nil, 0},
		{"same-host origin", Options{}, func(r *http.Request) { r.Header.Set("Origin", "https://chat.example.com") }, 0},
		{"foreign origin", Options{}, func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, 403},
		{"origin matching a pattern", Options{OriginPatterns: []string{"*.example.org"}}, func(r *http.Request) { r.Header.Set("Origin", "https://app.example.org") }, 0},
		{"origin matching a scheme pattern", Options{OriginPatterns: []string{"https://app.example.org"}}, func(r *http.Request) { r.Header.Set("Origin", "https://app.example.org") }, 0},
		{"origin with the wrong scheme", Options{OriginPatterns: []string{"https://app.example.org"}}, func(r *http.Request) { r.Header.Set("Origin", "http://app.example.org") }, 403},
		{"any origin", Options{AnyOrigin: true}, func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, 0},
		{"origin not a url", Options{}, func(r *http.Request) { r.Header.Set("Origin", "null") }, 403},
		{"no upgrade header", Options{}, func(r *http.Request) { r.Header.Del("Upgrade") }, 426},
		{"post", Options{}, func(r *http.Request) { r.Method = http.MethodPost }, 405},
		{"version 8", Options{}, func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, 400},
		{"no key", Options{}, func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, 400},
		{"short key", Options{}, func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "c2hvcnQ=") }, 400},
		{"two keys", Options{}, func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==") }, 400},
		{"http/1.0", Options{}, func(r *http.Request) { r.ProtoMajor, r.ProtoMinor = 1, 0 }, 426},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, herr := checkHandshake(handshakeRequest(tt.mut), tt.opts)
			switch {
			case tt.status == 0 && herr != nil:
				t.Fatalf("refused: %v", herr)
			case tt.status == 0 && key != "dGhlIHNhbXBsZSBub25jZQ==":
				t.Fatalf("key %q", key)
			case tt.status != 0 && (herr == nil || herr.Status != tt.status):
				t.Fatalf("got %v, want status %d", herr, tt.status)
			}
		})
	}
}

// The accept key of RFC 6455 section 1.3's example.
func TestAcceptKey(t *testing.T) {
	t.Parallel()
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
}

// An upgrade over a real connection: the 101 answer, then frames both ways, including bytes the
// client sent before it read the 101.
func TestUpgradeOverTCP(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, Options{})
		if err != nil {
			got <- "upgrade: " + err.Error()
			return
		}
		defer c.Close()
		_, b, err := c.ReadMessage()
		if err != nil {
			got <- "read: " + err.Error()
			return
		}
		got <- string(b)
		_ = c.WriteTexts([][]byte{[]byte("pong:" + string(b))})
		_ = c.WriteClose(StatusNormalClosure, "")
	}))
	defer srv.Close()

	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	// The first frame goes out with the request, before the 101 arrives.
	if _, err := nc.Write(append([]byte(req), clientFrame(true, OpText, []byte("early"))...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("answer %d, accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	if s := <-got; s != "early" {
		t.Fatalf("server read %q", s)
	}
	rest, _ := io.ReadAll(br)
	frames := serverFrames(t, rest)
	if len(frames) != 2 || string(frames[0].payload) != "pong:early" || frames[1].op != OpClose {
		t.Fatalf("frames %+v", frames)
	}
}

// FuzzReadMessage feeds arbitrary client bytes to the reader: it must never panic, never return a
// message over the limit, and always end (the stream is finite).
func FuzzReadMessage(f *testing.F) {
	f.Add(clientFrame(true, OpText, []byte(`{"type":"ping"}`)))
	f.Add(append(clientFrame(false, OpText, []byte("a")), clientFrame(true, OpContinuation, []byte("b"))...))
	f.Add(clientFrame(true, OpClose, closePayload(1000, "bye")))
	f.Add(clientFrame(true, OpPing, []byte("x")))
	f.Add([]byte{0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, stream []byte) {
		c, _ := serverOver(stream, 512)
		for i := 0; i < len(stream)+1; i++ {
			op, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if len(b) > 512 {
				t.Fatalf("message of %d bytes over the 512-byte limit", len(b))
			}
			if op != OpText && op != OpBinary {
				t.Fatalf("ReadMessage returned opcode %d", op)
			}
		}
		t.Fatal("ReadMessage kept returning messages past the end of the stream")
	})
}
