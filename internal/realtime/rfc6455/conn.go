// Package rfc6455 is the server side of the WebSocket protocol (RFC 6455), cut to what NeruTalk's
// socket needs and built for its fan-out: no extensions (no compression), no subprotocols, and a
// write path that sends any number of queued messages in one writev(2), header and payload
// side by side without copying the payload. Dial (client.go) gives the client role, for tools
// such as the load generator: its frames are masked, so its writes copy the payload.
//
// A Conn has one reader (ReadMessage, which also answers pings and the peer's close frame) and
// any number of writers, serialized by the Conn. Deadlines are the net.Conn's.
package rfc6455

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Opcode is a frame's opcode.
type Opcode byte

// The opcodes of RFC 6455 section 5.2.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// StatusCode is a close frame's status code (RFC 6455 section 7.4).
type StatusCode uint16

// The status codes the server uses or checks.
const (
	StatusNormalClosure   StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusNoStatus        StatusCode = 1005 // never on the wire: the close frame had no code
	StatusInvalidPayload  StatusCode = 1007
	StatusPolicyViolation StatusCode = 1008
	StatusMessageTooBig   StatusCode = 1009
	StatusInternalError   StatusCode = 1011
)

// maxControlPayload is the largest payload of a control frame.
const maxControlPayload = 125

// CloseError is the close frame the peer sent. ReadMessage returns it once the peer has closed;
// the close handshake is then complete (ReadMessage answered it, unless this side closed first).
type CloseError struct {
	Code   StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("rfc6455: peer closed: %d %q", e.Code, e.Reason)
}

// ProtocolError is a peer's violation of the protocol. Code is the status to close with (1002,
// or 1007 for text that is not UTF-8). The stream cannot be read further.
type ProtocolError struct {
	Code   StatusCode
	Reason string
}

func (e *ProtocolError) Error() string { return "rfc6455: " + e.Reason }

// ErrMessageTooBig is returned by ReadMessage for a message longer than the limit; close with 1009.
// The stream cannot be read further.
var ErrMessageTooBig = errors.New("rfc6455: message too big")

// ErrFrameRate is returned by ReadMessage when the peer sent more frames than SetFrameLimit
// allows, or more pings than SetPingLimit; every frame counts (control frames and each fragment
// of a message too), so a peer cannot make the reader work without bound by its choice of
// framing. The stream cannot be read further.
var ErrFrameRate = errors.New("rfc6455: too many frames")

// ErrClosed is returned by writes after the close frame was sent.
var ErrClosed = errors.New("rfc6455: close frame already sent")

// Conn is a WebSocket connection: an upgraded server-side one (Upgrade), or a client one (Dial).
type Conn struct {
	nc     net.Conn
	br     *bufio.Reader
	maxMsg int64
	onPong func()
	client bool // the client role: reads unmasked frames, masks what it writes

	// Reader state: only ReadMessage touches it.
	hdr    [14]byte
	ctl    [maxControlPayload]byte // a control frame's payload
	broken error                   // a protocol error ends reading for good
	frames *rate.Limiter           // frames read per second, of any kind; nil: unlimited
	pings  *rate.Limiter           // pings read per second (each costs a pong write); nil: unlimited
	now    func() time.Time        // the limiter's clock (tests replace it)

	wmu       sync.Mutex // serializes writes
	closeSent bool       // guarded by wmu
	wbufs     net.Buffers
	whdrs     []byte
	wmasked   []byte // client role: the masked copy of what WriteTexts sends
}

// DefaultReadLimit is the longest message ReadMessage accepts unless SetReadLimit says otherwise.
const DefaultReadLimit = 64 << 10

// SetReadLimit sets the longest message ReadMessage accepts (the payload of all its frames);
// n <= 0 means DefaultReadLimit.
func (c *Conn) SetReadLimit(n int64) { c.maxMsg = n }

func (c *Conn) limit() int64 {
	if c.maxMsg <= 0 {
		return DefaultReadLimit
	}
	return c.maxMsg
}

// SetFrameLimit bounds the frames ReadMessage reads: perSecond on average with bursts of burst,
// counting every frame (data, continuation and control frames alike). Over it, ReadMessage
// returns ErrFrameRate. perSecond <= 0 removes the limit.
func (c *Conn) SetFrameLimit(perSecond float64, burst int) {
	if perSecond <= 0 {
		c.frames = nil
		return
	}
	c.frames = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

// SetPingLimit bounds the pings ReadMessage answers: perSecond on average with bursts of burst,
// on top of SetFrameLimit (a ping counts against both). Each ping costs this side a pong write,
// while a keepalive needs one every few seconds. Over it, ReadMessage returns ErrFrameRate
// without answering. perSecond <= 0 removes the limit.
func (c *Conn) SetPingLimit(perSecond float64, burst int) {
	if perSecond <= 0 {
		c.pings = nil
		return
	}
	c.pings = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

// OnPong sets a function called (on the reading goroutine) for every pong the peer sends.
func (c *Conn) OnPong(f func()) { c.onPong = f }

// SetReadDeadline sets the underlying connection's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// Close closes the underlying connection at once, without a close handshake.
func (c *Conn) Close() error { return c.nc.Close() }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// ReadMessage returns the next complete data message (text or binary), reassembled from its
// fragments. It answers pings with pongs, reports pongs to OnPong, and on the peer's close frame
// answers it (unless this side already sent one) and returns *CloseError. It returns
// ErrMessageTooBig, *ProtocolError, or the connection's error; after any of these the Conn can
// no longer be read.
func (c *Conn) ReadMessage() (Opcode, []byte, error) {
	if c.broken != nil {
		return 0, nil, c.broken
	}
	op, msg, err := c.readMessage()
	if err != nil {
		c.broken = err
	}
	return op, msg, err
}

func (c *Conn) readMessage() (Opcode, []byte, error) {
	var (
		msgOp Opcode
		msg   []byte
		open  bool // a fragmented message is being assembled
	)
	for {
		f, err := c.readHeader()
		if err != nil {
			return 0, nil, err
		}
		if c.frames != nil && !c.frames.AllowN(c.clock(), 1) {
			return 0, nil, ErrFrameRate
		}
		if f.op == OpPing && c.pings != nil && !c.pings.AllowN(c.clock(), 1) {
			return 0, nil, ErrFrameRate
		}
		if f.op >= OpClose { // control frames may come between fragments
			payload := c.ctl[:f.length] // readHeader checked the length
			if err := c.readPayload(payload, f.mask); err != nil {
				return 0, nil, err
			}
			if err := c.control(f.op, payload); err != nil {
				return 0, nil, err
			}
			continue
		}
		switch {
		case f.op == OpContinuation && !open:
			return 0, nil, protocolError("continuation frame without a message to continue")
		case f.op != OpContinuation && open:
			return 0, nil, protocolError("new message before the previous one ended")
		}
		if f.op != OpContinuation {
			msgOp = f.op
		}
		if f.length > c.limit()-int64(len(msg)) {
			return 0, nil, ErrMessageTooBig
		}
		start := len(msg)
		msg = grow(msg, int(f.length), c.limit())
		if err := c.readPayload(msg[start:], f.mask); err != nil {
			return 0, nil, err
		}
		if !f.fin {
			open = true
			continue
		}
		if msgOp == OpText && !utf8.Valid(msg) {
			return 0, nil, &ProtocolError{Code: StatusInvalidPayload, Reason: "text message is not valid UTF-8"}
		}
		return msgOp, msg, nil
	}
}

func (c *Conn) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// grow extends b by n bytes. The first frame of a message gets exactly its size (most messages
// are one frame); a message that outgrows its buffer at least doubles it, up to limit, so
// reassembling a message of any number of fragments copies O(its length) bytes in all.
func grow(b []byte, n int, limit int64) []byte {
	if n == 0 && b == nil {
		return []byte{}
	}
	need := len(b) + n
	if cap(b) >= need {
		return b[:need]
	}
	size := need
	if b != nil {
		size = int(min(max(int64(need), 2*int64(cap(b)), 512), max(limit, int64(need))))
	}
	out := make([]byte, need, size)
	copy(out, b)
	return out
}

type frameHeader struct {
	fin    bool
	op     Opcode
	length int64
	mask   [4]byte
}

func protocolError(reason string) *ProtocolError {
	return &ProtocolError{Code: StatusProtocolError, Reason: reason}
}

// readHeader reads and checks one frame header from the peer.
func (c *Conn) readHeader() (frameHeader, error) {
	var f frameHeader
	b := c.hdr[:2]
	if _, err := io.ReadFull(c.br, b); err != nil {
		return f, err
	}
	f.fin = b[0]&0x80 != 0
	if b[0]&0x70 != 0 {
		return f, protocolError("reserved bits set (no extension was negotiated)")
	}
	f.op = Opcode(b[0] & 0x0F)
	switch f.op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return f, protocolError(fmt.Sprintf("unknown opcode %#x", byte(f.op)))
	}
	keyLen := 4
	switch masked := b[1]&0x80 != 0; {
	case c.client && masked:
		return f, protocolError("server frames must not be masked")
	case c.client:
		keyLen = 0
	case !masked:
		return f, protocolError("client frames must be masked")
	}
	n := int64(b[1] & 0x7F)
	ext := 0
	switch n {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	rest := c.hdr[2 : 2+ext+keyLen]
	if _, err := io.ReadFull(c.br, rest); err != nil {
		return f, err
	}
	switch ext {
	case 2:
		n = int64(binary.BigEndian.Uint16(rest))
	case 8:
		u := binary.BigEndian.Uint64(rest)
		if u>>63 != 0 {
			return f, protocolError("payload length has the most significant bit set")
		}
		n = int64(u)
	}
	f.length = n
	copy(f.mask[:], rest[ext:])
	if f.op >= OpClose {
		if !f.fin {
			return f, protocolError("fragmented control frame")
		}
		if n > maxControlPayload {
			return f, protocolError("control frame payload longer than 125 bytes")
		}
	}
	return f, nil
}

// readPayload reads len(p) bytes and unmasks them (a server conn's frames are masked, a client
// conn's are not: readHeader checked).
func (c *Conn) readPayload(p []byte, key [4]byte) error {
	if _, err := io.ReadFull(c.br, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if !c.client {
		mask(p, key)
	}
	return nil
}

// mask XORs a frame's whole payload p with its masking key, eight bytes at a time.
func mask(p []byte, key [4]byte) {
	k := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k) | uint64(k)<<32
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k64)
		p = p[8:]
	}
	for i := range p { // i < 8, and the chunks above kept the key aligned
		p[i] ^= key[i&3]
	}
}

// control handles a control frame that arrived while reading.
func (c *Conn) control(op Opcode, payload []byte) error {
	switch op {
	case OpPing:
		err := c.writeFrame(OpPong, payload)
		if errors.Is(err, ErrClosed) {
			return nil // closing: the pong no longer matters
		}
		return err
	case OpPong:
		if c.onPong != nil {
			c.onPong()
		}
		return nil
	}
	// Close.
	ce := &CloseError{Code: StatusNoStatus}
	switch {
	case len(payload) == 1:
		return protocolError("close frame with a one-byte payload")
	case len(payload) >= 2:
		ce.Code = StatusCode(binary.BigEndian.Uint16(payload))
		if !validCloseCode(ce.Code) {
			return protocolError(fmt.Sprintf("invalid close code %d", ce.Code))
		}
		if !utf8.Valid(payload[2:]) {
			return &ProtocolError{Code: StatusInvalidPayload, Reason: "close reason is not valid UTF-8"}
		}
		ce.Reason = string(payload[2:])
	}
	// Answer with the same code (an empty close frame answers an empty one).
	var answer []byte
	if ce.Code != StatusNoStatus {
		answer = payload[:2]
	}
	if err := c.writeFrame(OpClose, answer); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return ce
}

// validCloseCode reports whether a peer may send code (RFC 6455 section 7.4 and the IANA registry).
func validCloseCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// WriteTexts writes each payload as one unfragmented text message, all of them in one writev(2).
// The payloads are not copied (a client conn masks a copy); they must stay unchanged until it
// returns.
func (c *Conn) WriteTexts(payloads [][]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	if c.client {
		return c.writeMaskedTexts(payloads)
	}
	need := len(payloads) * maxHeader
	if cap(c.whdrs) < need {
		c.whdrs = make([]byte, 0, need)
	}
	hdrs := c.whdrs[:0]
	bufs := c.wbufs[:0]
	for _, p := range payloads {
		start := len(hdrs)
		hdrs = appendHeader(hdrs, OpText, len(p))
		bufs = append(bufs, hdrs[start:], p)
	}
	c.wbufs = bufs // WriteTo consumes its receiver: keep the backing array
	_, err := bufs.WriteTo(c.nc)
	clear(c.wbufs[:cap(c.wbufs)])
	c.wbufs = c.wbufs[:0]
	if cap(c.wbufs) > 512 {
		c.wbufs, c.whdrs = nil, nil // a burst made them large
	}
	return err
}

// WritePing sends a ping with an empty payload.
func (c *Conn) WritePing() error { return c.writeFrame(OpPing, nil) }

// WriteClose sends the close frame with code and reason (cut to fit a control frame); the Conn
// writes nothing after it. Calling it again returns ErrClosed.
func (c *Conn) WriteClose(code StatusCode, reason string) error {
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	p = append(p, reason...)
	if len(p) > maxControlPayload {
		p = p[:maxControlPayload]
	}
	return c.writeFrame(OpClose, p)
}

// CloseSent reports whether the close frame was sent.
func (c *Conn) CloseSent() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closeSent
}

// writeFrame writes one unfragmented frame.
func (c *Conn) writeFrame(op Opcode, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	if op == OpClose {
		c.closeSent = true
	}
	var b []byte
	if c.client {
		b = appendMaskedFrame(make([]byte, 0, maxClientHeader+len(payload)), op, payload)
	} else {
		b = appendHeader(make([]byte, 0, maxHeader+len(payload)), op, len(payload))
		b = append(b, payload...)
	}
	_, err := c.nc.Write(b)
	return err
}

// maxHeader is the longest header of a server frame (no masking key).
const maxHeader = 10

// appendHeader appends the header of a final, unmasked frame.
func appendHeader(b []byte, op Opcode, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// maxClientHeader is the longest header of a client frame (with its masking key).
const maxClientHeader = maxHeader + 4

// appendMaskedFrame appends a final client frame: the header with a fresh random masking key
// (RFC 6455 section 5.3), then a masked copy of payload.
func appendMaskedFrame(b []byte, op Opcode, payload []byte) []byte {
	start := len(b)
	b = appendHeader(b, op, len(payload))
	b[start+1] |= 0x80 // the MASK bit
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	p := len(b)
	b = append(b, payload...)
	mask(b[p:], key)
	return b
}

// writeMaskedTexts is WriteTexts for a client conn (wmu held): the frames, masked copies of the
// payloads, are built in one buffer and sent in one write.
func (c *Conn) writeMaskedTexts(payloads [][]byte) error {
	n := 0
	for _, p := range payloads {
		n += maxClientHeader + len(p)
	}
	b := c.wmasked[:0]
	if cap(b) < n {
		b = make([]byte, 0, n)
	}
	for _, p := range payloads {
		b = appendMaskedFrame(b, OpText, p)
	}
	_, err := c.nc.Write(b)
	c.wmasked = b[:0]
	if cap(b) > 16<<10 {
		c.wmasked = nil // a large message made it large
	}
	return err
}

// Linger ends a connection whose close frame was sent: it shuts the write side and reads (and
// discards) what the peer still sends until the peer closes or timeout passes, so that unread
// data cannot turn the close into a reset that loses the close frame; then it closes the socket.
func (c *Conn) Linger(timeout time.Duration) {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	_, _ = io.CopyN(io.Discard, c.br, 1<<20)
	_ = c.nc.Close()
}
