package rfc6455

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// clientReadBufferSize is the size of a client Conn's read buffer.
const clientReadBufferSize = 16 << 10

// maxErrorBody is how much of a refused handshake's response body Dial reads.
const maxErrorBody = 4 << 10

// Dial opens a client WebSocket connection to rawURL (ws:// only: no TLS) through dialer (nil
// means a zero net.Dialer; its LocalAddr picks the source address), sending header (for instance
// Authorization) with the opening handshake. ctx bounds the dial and the handshake, not the
// connection that Dial returns.
//
// A server that does not answer 101 Switching Protocols gets its response returned, with the
// first 4 KiB of the body readable from resp.Body, together with an error. On success the
// response is returned too (its body is empty).
//
// The client Conn masks every frame it writes (a copy of the payload), requires the server's
// frames to be unmasked, and otherwise works like a server Conn: ReadMessage answers pings and
// the close frame, WriteClose starts the close handshake.
func Dial(ctx context.Context, rawURL string, header http.Header, dialer *net.Dialer) (*Conn, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("rfc6455: dial: %w", err)
	}
	if u.Scheme != "ws" {
		return nil, nil, fmt.Errorf("rfc6455: dial %s: only ws:// URLs are supported", rawURL)
	}
	if u.Host == "" {
		return nil, nil, fmt.Errorf("rfc6455: dial %s: no host", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	nc, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("rfc6455: dial %s: %w", rawURL, err)
	}
	c, resp, err := handshake(ctx, nc, u, header)
	if err != nil {
		nc.Close()
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err) // the deadline or cancellation cut it short
		}
		return nil, resp, fmt.Errorf("rfc6455: dial %s: %w", rawURL, err)
	}
	return c, resp, nil
}

// handshake performs the client's opening handshake (RFC 6455 section 4.1) on nc.
func handshake(ctx context.Context, nc net.Conn, u *url.URL, header http.Header) (*Conn, *http.Response, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	// Cancelling ctx unblocks the handshake's reads and writes.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var raw [16]byte
	_, _ = rand.Read(raw[:]) // never fails
	key := base64.StdEncoding.EncodeToString(raw[:])

	req := &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, len(header)+4),
		Host:       u.Host,
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := req.Write(nc); err != nil {
		return nil, nil, fmt.Errorf("write handshake: %w", err)
	}

	br := bufio.NewReaderSize(nc, clientReadBufferSize)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("read handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil, resp, fmt.Errorf("handshake refused: %s", resp.Status)
	}
	switch {
	case !HeaderHasToken(resp.Header, "Upgrade", "websocket"):
		return nil, resp, errors.New("bad handshake response: no Upgrade: websocket")
	case !HeaderHasToken(resp.Header, "Connection", "upgrade"):
		return nil, resp, errors.New("bad handshake response: no Connection: Upgrade")
	case resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key):
		return nil, resp, errors.New("bad handshake response: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		return nil, resp, errors.New("bad handshake response: an extension that was not offered")
	case resp.Header.Get("Sec-WebSocket-Protocol") != "":
		return nil, resp, errors.New("bad handshake response: a subprotocol that was not offered")
	}
	if !stop() { // ctx ended just now: the AfterFunc may set the deadline at any moment
		return nil, resp, ctx.Err()
	}
	_ = nc.SetDeadline(time.Time{})
	// br may already hold the first frames: they belong to the WebSocket stream.
	return &Conn{nc: nc, br: br, client: true}, resp, nil
}
