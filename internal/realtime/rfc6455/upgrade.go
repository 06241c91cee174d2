package rfc6455

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// Options configures Upgrade.
type Options struct {
	// OriginPatterns are the origins allowed to open a socket besides the request's own host:
	// path.Match patterns of a host ("app.example.com", "*.example.com") or of scheme and host
	// ("https://app.example.com"). A request without an Origin header (not a browser) is allowed.
	OriginPatterns []string
	// AnyOrigin allows every origin.
	AnyOrigin bool
	// ReadBufferSize is the size of the connection's read buffer (default 1 KiB): small frames
	// are read in one call, larger ones go straight into the message.
	ReadBufferSize int
	// HandshakeTimeout bounds writing the 101 response (default 10 s).
	HandshakeTimeout time.Duration
}

// HandshakeError is a refused upgrade; Upgrade has already answered the request with Status and
// a plain-text reason.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string { return "rfc6455: handshake refused: " + e.Reason }

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Upgrade checks the opening handshake of r (RFC 6455 section 4.2.1), hijacks the connection and
// answers 101 Switching Protocols. A bad handshake is answered (400, 403, 405 or 426) and
// returned as *HandshakeError. The connection's deadlines are cleared.
func Upgrade(w http.ResponseWriter, r *http.Request, o Options) (*Conn, error) {
	key, herr := checkHandshake(r, o)
	if herr != nil {
		if herr.Status == http.StatusUpgradeRequired || herr.Status == http.StatusBadRequest {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, herr.Reason, herr.Status)
		return nil, herr
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return nil, fmt.Errorf("rfc6455: hijack: %w", err)
	}
	size := o.ReadBufferSize
	if size <= 0 {
		size = 1024
	}
	var src io.Reader = nc
	if n := brw.Reader.Buffered(); n > 0 { // the client did not wait for the 101
		early, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), nc)
	}
	timeout := o.HandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	_ = nc.SetDeadline(time.Time{})
	_ = nc.SetWriteDeadline(time.Now().Add(timeout))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		AcceptKey(key) + "\r\n\r\n"
	if _, err := io.WriteString(nc, resp); err != nil {
		nc.Close()
		return nil, fmt.Errorf("rfc6455: write handshake: %w", err)
	}
	_ = nc.SetWriteDeadline(time.Time{})
	return &Conn{nc: nc, br: bufio.NewReaderSize(src, size)}, nil
}

// CheckHandshake returns the *HandshakeError that Upgrade would answer for r, or nil when r may
// be upgraded. It writes nothing: a server that answers errors in a format of its own checks
// first and calls Upgrade only for requests that pass.
func CheckHandshake(r *http.Request, o Options) error {
	if _, herr := checkHandshake(r, o); herr != nil {
		return herr
	}
	return nil
}

// AcceptKey is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// checkHandshake returns the client's key, or why the request cannot be upgraded.
func checkHandshake(r *http.Request, o Options) (string, *HandshakeError) {
	refuse := func(status int, format string, args ...any) (string, *HandshakeError) {
		return "", &HandshakeError{Status: status, Reason: fmt.Sprintf(format, args...)}
	}
	if !r.ProtoAtLeast(1, 1) {
		return refuse(http.StatusUpgradeRequired, "a WebSocket handshake needs HTTP/1.1, not %s", r.Proto)
	}
	if !HeaderHasToken(r.Header, "Connection", "upgrade") || !HeaderHasToken(r.Header, "Upgrade", "websocket") {
		return refuse(http.StatusUpgradeRequired, "not a WebSocket upgrade (Connection: Upgrade and Upgrade: websocket are required)")
	}
	if r.Method != http.MethodGet {
		return refuse(http.StatusMethodNotAllowed, "a WebSocket handshake is a GET, not %s", r.Method)
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		return refuse(http.StatusBadRequest, "unsupported Sec-WebSocket-Version %q: only 13 is supported", v)
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return refuse(http.StatusBadRequest, "exactly one Sec-WebSocket-Key header is required")
	}
	key := strings.TrimSpace(keys[0])
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return refuse(http.StatusBadRequest, "invalid Sec-WebSocket-Key: it must be 16 bytes in base64")
	}
	if !o.AnyOrigin {
		if err := checkOrigin(r, o.OriginPatterns); err != "" {
			return refuse(http.StatusForbidden, "%s", err)
		}
	}
	return key, nil
}

// checkOrigin allows requests without an Origin, from the request's own host, or from an origin
// that matches a pattern; otherwise it says why not.
func checkOrigin(r *http.Request, patterns []string) string {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("the Origin %q is not a URL with a host", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return ""
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && ok {
			return ""
		}
	}
	return fmt.Sprintf("the Origin %q may not open a socket on %q", origin, r.Host)
}

// HeaderHasToken reports whether the comma-separated header key of h lists token (case-insensitive).
func HeaderHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
