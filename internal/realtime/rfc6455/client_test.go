package rfc6455

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsURL turns an httptest server's URL into a ws:// one.
func wsURL(ts *httptest.Server) string { return "ws" + strings.TrimPrefix(ts.URL, "http") }

// startServer serves WebSocket upgrades with handler and returns the server's ws:// URL. The
// test's cleanup waits for every handler to return, so close the client first (a cleanup
// registered later runs earlier).
func startServer(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	var wg sync.WaitGroup
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		handler(w, r)
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(wg.Wait) // hijacked connections are not waited for by ts.Close
	return wsURL(ts)
}

// serveConns runs fn on every upgraded server Conn.
func serveConns(t *testing.T, fn func(c *Conn)) string {
	return startServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, Options{})
		if err != nil {
			t.Errorf("Upgrade: %v", err)
			return
		}
		defer c.Close()
		fn(c)
	})
}

// dial dials url and closes the client Conn when the test ends.
func dial(t *testing.T, url string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := Dial(ctx, url, http.Header{"Authorization": {"Bearer x"}}, nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("Dial: status %d", resp.StatusCode)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// text is n bytes of ASCII.
func text(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

var sizes = []int{0, 1, 125, 126, 127, 65535, 65536, 200_000}

// echo answers every message with itself until reading fails, and returns that error.
func echo(c *Conn) error {
	c.SetReadLimit(1 << 20)
	for {
		op, msg, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if op != OpText {
			return fmt.Errorf("opcode %v", op)
		}
		if err := c.WriteTexts([][]byte{msg}); err != nil {
			return err
		}
	}
}

func readText(t *testing.T, c *Conn) []byte {
	t.Helper()
	op, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	if op != OpText {
		t.Fatalf("ReadMessage: opcode %v, want text", op)
	}
	return msg
}

func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	url := serveConns(t, func(c *Conn) { _ = echo(c) })
	c := dial(t, url)
	c.SetReadLimit(1 << 20)

	for _, n := range sizes {
		p := text(n)
		if err := c.WriteTexts([][]byte{p}); err != nil {
			t.Fatalf("WriteTexts(%d bytes): %v", n, err)
		}
		if !bytes.Equal(p, text(n)) {
			t.Fatalf("WriteTexts(%d bytes) changed the caller's payload", n)
		}
		if got := readText(t, c); !bytes.Equal(got, p) {
			t.Fatalf("echo of %d bytes: got %d bytes, different", n, len(got))
		}
	}

	// Several messages in one call, each its own frame.
	var batch [][]byte
	for _, n := range sizes {
		batch = append(batch, text(n))
	}
	if err := c.WriteTexts(batch); err != nil {
		t.Fatalf("WriteTexts(batch): %v", err)
	}
	for i, n := range sizes {
		if !bytes.Equal(batch[i], text(n)) {
			t.Fatalf("WriteTexts(batch) changed payload %d", i)
		}
		if got := readText(t, c); !bytes.Equal(got, text(n)) {
			t.Fatalf("batch echo %d: got %d bytes, want %d", i, len(got), n)
		}
	}
}

func TestClientServerWritesFirst(t *testing.T) {
	t.Parallel()
	url := serveConns(t, func(c *Conn) {
		msgs := [][]byte{}
		for _, n := range sizes {
			msgs = append(msgs, text(n))
		}
		if err := c.WriteTexts(msgs); err != nil {
			t.Errorf("server WriteTexts: %v", err)
		}
		_ = echo(c)
	})
	c := dial(t, url)
	c.SetReadLimit(1 << 20)
	for _, n := range sizes {
		if got := readText(t, c); !bytes.Equal(got, text(n)) {
			t.Fatalf("got %d bytes, want %d", len(got), n)
		}
	}
}

func TestClientPingPong(t *testing.T) {
	t.Parallel()
	serverPong := make(chan struct{}, 1)
	url := serveConns(t, func(c *Conn) {
		c.OnPong(func() { serverPong <- struct{}{} })
		if err := c.WritePing(); err != nil {
			t.Errorf("server WritePing: %v", err)
		}
		_ = echo(c)
	})
	c := dial(t, url)
	clientPong := make(chan struct{}, 1)
	c.OnPong(func() { clientPong <- struct{}{} })
	readDone := make(chan error, 1)
	go func() { // the reader answers the server's ping and sees the server's pong
		_, _, err := c.ReadMessage()
		readDone <- err
	}()
	if err := c.WritePing(); err != nil {
		t.Fatalf("client WritePing: %v", err)
	}
	for _, ch := range []chan struct{}{serverPong, clientPong} {
		select {
		case <-ch:
		case err := <-readDone:
			t.Fatalf("client ReadMessage ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no pong")
		}
	}
	// The reader goroutine is still waiting for a message: give it one.
	if err := c.WriteTexts([][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := <-readDone; err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
}

func TestClientClosesFirst(t *testing.T) {
	t.Parallel()
	serverErr := make(chan error, 1)
	url := serveConns(t, func(c *Conn) { serverErr <- echo(c) })
	c := dial(t, url)
	if err := c.WriteClose(StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("WriteClose: %v", err)
	}
	_, _, err := c.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
		t.Fatalf("client ReadMessage: %v, want the server's close 1000", err)
	}
	err = <-serverErr
	if !errors.As(err, &ce) || *ce != (CloseError{StatusNormalClosure, "bye"}) {
		t.Fatalf("server ReadMessage: %v, want close 1000 \"bye\"", err)
	}
	if err := c.WriteTexts([][]byte{[]byte("late")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteTexts after close: %v, want ErrClosed", err)
	}
	if err := c.WritePing(); !errors.Is(err, ErrClosed) {
		t.Fatalf("WritePing after close: %v, want ErrClosed", err)
	}
}

func TestServerClosesFirst(t *testing.T) {
	t.Parallel()
	serverErr := make(chan error, 1)
	url := serveConns(t, func(c *Conn) {
		if err := c.WriteClose(4001, "token expired"); err != nil {
			t.Errorf("server WriteClose: %v", err)
		}
		_, _, err := c.ReadMessage()
		serverErr <- err
	})
	c := dial(t, url)
	_, _, err := c.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || *ce != (CloseError{4001, "token expired"}) {
		t.Fatalf("client ReadMessage: %v, want close 4001 \"token expired\"", err)
	}
	if !c.CloseSent() {
		t.Error("the client did not answer the close frame")
	}
	err = <-serverErr
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("server ReadMessage: %v, want the client's answer 4001", err)
	}
	if _, _, err := c.ReadMessage(); !errors.As(err, &ce) {
		t.Fatalf("ReadMessage after close: %v, want the same CloseError", err)
	}
}

func TestDialRefused(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "no valid token", http.StatusUnauthorized)
			return
		}
		t.Error("unexpected authorization")
	}))
	t.Cleanup(ts.Close)
	c, resp, err := Dial(context.Background(), wsURL(ts)+"/api/v1/ws", http.Header{"Authorization": {"Bearer bad"}}, nil)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Dial: resp %v, err %v; want status 401", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "no valid token\n" || resp.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("response: body %q, header %v", body, resp.Header)
	}
	if !strings.Contains(err.Error(), "401") {
		t.Errorf("error %q does not name the status", err)
	}
}

func TestDialBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"wss://127.0.0.1:1/", "http://127.0.0.1:1/", "ws:///x", "ws://[::1"} {
		if c, _, err := Dial(context.Background(), u, nil, nil); err == nil {
			c.Close()
			t.Errorf("Dial(%q) succeeded", u)
		}
	}
}

// rawServer answers the handshake itself with extra (written right after the 101 response, in
// the same write), then hands the hijacked connection to fn. A non-nil accept replaces the
// correct Sec-WebSocket-Accept.
func rawServer(t *testing.T, accept func(key string) string, extra []byte, fn func(br *bufio.Reader, nc net.Conn)) string {
	return startServer(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Sec-WebSocket-Key")
		if r.Header.Get("Sec-WebSocket-Version") != "13" || !HeaderHasToken(r.Header, "Upgrade", "websocket") ||
			r.Header.Get("Authorization") != "Bearer x" {
			t.Errorf("handshake request headers: %v", r.Header)
		}
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer nc.Close()
		a := AcceptKey(key)
		if accept != nil {
			a = accept(key)
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + a + "\r\n\r\n"
		if _, err := nc.Write(append([]byte(resp), extra...)); err != nil {
			t.Errorf("write: %v", err)
			return
		}
		if fn != nil {
			fn(brw.Reader, nc)
		} else {
			_, _ = io.Copy(io.Discard, brw) // until the client closes
		}
	})
}

func TestClientReadsFramesSentWithTheHandshake(t *testing.T) {
	t.Parallel()
	url := rawServer(t, nil, []byte("\x81\x05hello\x89\x00\x81\x05world"), nil)
	c := dial(t, url)
	for _, want := range []string{"hello", "world"} {
		if got := readText(t, c); string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestClientRejectsMaskedFrames(t *testing.T) {
	t.Parallel()
	url := rawServer(t, nil, []byte("\x81\x85\x00\x00\x00\x00hello"), nil)
	c := dial(t, url)
	_, _, err := c.ReadMessage()
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != StatusProtocolError {
		t.Fatalf("ReadMessage of a masked frame: %v, want a protocol error", err)
	}
}

func TestDialChecksAccept(t *testing.T) {
	t.Parallel()
	url := rawServer(t, func(string) string { return AcceptKey("something else") }, nil, nil)
	c, _, err := Dial(context.Background(), url, http.Header{"Authorization": {"Bearer x"}}, nil)
	if err == nil {
		c.Close()
		t.Fatal("Dial accepted a wrong Sec-WebSocket-Accept")
	}
}

// TestClientMasksFrames reads the client's frames off the wire: every one masked with its own
// key, and unmasking gives the payload back.
func TestClientMasksFrames(t *testing.T) {
	t.Parallel()
	type frame struct {
		b0, b1  byte
		key     [4]byte
		payload []byte
	}
	frames := make(chan frame, 8)
	url := rawServer(t, nil, nil, func(br *bufio.Reader, nc net.Conn) {
		defer close(frames)
		for range 5 {
			var f frame
			var h [2]byte
			if _, err := io.ReadFull(br, h[:]); err != nil {
				t.Errorf("read: %v", err)
				return
			}
			f.b0, f.b1 = h[0], h[1]
			n := int(h[1] & 0x7F)
			if n == 126 {
				var l [2]byte
				io.ReadFull(br, l[:])
				n = int(binary.BigEndian.Uint16(l[:]))
			}
			if h[1]&0x80 != 0 {
				io.ReadFull(br, f.key[:])
			}
			f.payload = make([]byte, n)
			if _, err := io.ReadFull(br, f.payload); err != nil {
				t.Errorf("read: %v", err)
				return
			}
			mask(f.payload, f.key)
			frames <- f
		}
	})
	c := dial(t, url)
	long := text(300)
	if err := c.WriteTexts([][]byte{[]byte("hi"), long}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteTexts([][]byte{[]byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if err := c.WritePing(); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteClose(StatusGoingAway, "done"); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		b0      byte
		payload string
	}{
		{0x81, "hi"}, {0x81, string(long)}, {0x81, "hi"}, {0x89, ""}, {0x88, "\x03\xe9done"},
	}
	keys := map[[4]byte]bool{}
	i := 0
	for f := range frames {
		if f.b0 != want[i].b0 || f.b1&0x80 == 0 || string(f.payload) != want[i].payload {
			t.Errorf("frame %d: %#x %#x %q, want %#x, masked, %q", i, f.b0, f.b1, f.payload, want[i].b0, want[i].payload)
		}
		keys[f.key] = true
		i++
	}
	if i != len(want) {
		t.Fatalf("read %d frames, want %d", i, len(want))
	}
	if len(keys) != len(want) {
		t.Errorf("%d distinct masking keys in %d frames", len(keys), len(want))
	}
}

func TestDialHonoursContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	gotRequest := make(chan struct{})
	serverDone := make(chan struct{})
	go func() { // reads the handshake request and never answers
		defer close(serverDone)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := http.ReadRequest(bufio.NewReader(nc)); err != nil {
			t.Errorf("ReadRequest: %v", err)
		}
		close(gotRequest)
		_, _ = io.Copy(io.Discard, nc) // until the client gives up
	}()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-gotRequest
		cancel()
	}()
	c, _, err := Dial(ctx, "ws://"+ln.Addr().String()+"/", nil, nil)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial: %v, want context.Canceled", err)
	}
	<-serverDone
}

// TestClientWithCoderServer checks the client against another implementation's server side.
func TestClientWithCoderServer(t *testing.T) {
	t.Parallel()
	serverErr := make(chan error, 1)
	url := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(1 << 20)
		ctx := r.Context()
		go func() { // the client answers the ping while it reads
			err := ws.Ping(ctx)
			_ = ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "pinged: %v", err))
		}()
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				serverErr <- err
				return
			}
			if err := ws.Write(ctx, typ, b); err != nil {
				serverErr <- err
				return
			}
		}
	})
	c := dial(t, url)
	c.SetReadLimit(1 << 20)
	pinged := ""
	read := func() []byte {
		for {
			msg := readText(t, c)
			if !bytes.HasPrefix(msg, []byte("pinged: ")) {
				return msg
			}
			pinged = string(msg)
		}
	}
	for _, n := range sizes {
		if err := c.WriteTexts([][]byte{text(n)}); err != nil {
			t.Fatalf("WriteTexts(%d bytes): %v", n, err)
		}
		if got := read(); !bytes.Equal(got, text(n)) {
			t.Fatalf("echo of %d bytes: got %d bytes, different", n, len(got))
		}
	}
	if err := c.WriteTexts([][]byte{[]byte("a"), []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if got := string(read()) + string(read()); got != "ab" {
		t.Fatalf("batch echo: %q", got)
	}
	for pinged == "" {
		pinged = string(readText(t, c))
	}
	if pinged != "pinged: <nil>" {
		t.Errorf("server's ping: %s", pinged)
	}

	if err := c.WriteClose(StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
		t.Fatalf("client ReadMessage: %v, want close 1000", err)
	}
	err = <-serverErr
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("server Read: %v, want close 1000", err)
	}
	var cce websocket.CloseError
	if errors.As(err, &cce) && cce.Reason != "done" {
		t.Errorf("server got reason %q, want \"done\"", cce.Reason)
	}
}
