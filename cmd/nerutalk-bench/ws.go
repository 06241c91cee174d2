package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nerutalk/nerutalk/internal/realtime/rfc6455"
)

// wsDialer opens WebSocket connections to /api/v1/ws, spreading them over several loopback source
// addresses when there are more than one address's ephemeral ports can hold.
type wsDialer struct {
	urls    []string      // ws://host:port/api/v1/ws of each node; connection i goes to urls[i % len]
	clients []*net.Dialer // one per source address (with it as LocalAddr)
	perIP   int
}

func newWSDialer(bases []string, srcIPs []net.IP, perIP int) *wsDialer {
	d := &wsDialer{perIP: perIP}
	for _, b := range bases {
		d.urls = append(d.urls, "ws"+strings.TrimPrefix(b, "http")+"/api/v1/ws")
	}
	if len(srcIPs) == 0 {
		srcIPs = []net.IP{nil}
	}
	for _, ip := range srcIPs {
		nd := &net.Dialer{Timeout: 15 * time.Second}
		if ip != nil {
			nd.LocalAddr = &net.TCPAddr{IP: ip}
		}
		d.clients = append(d.clients, nd)
	}
	return d
}

// inFrame is the part of a server frame the tool reads. The data of message_new and of the ack
// of send_message is the message; the data of an error frame has code and detail.
type inFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data struct {
		ChatID   string `json:"chat_id"`
		Seq      int64  `json:"seq"`
		ClientID string `json:"client_id"`
		Text     string `json:"text"`
		Code     string `json:"code"`
		Detail   string `json:"detail"`
	} `json:"data"`
}

// conn is one user's WebSocket. One goroutine (readLoop) reads it and hands every frame to the
// handler; writes may come from any goroutine (the rfc6455.Conn serialises them).
type conn struct {
	u  *user
	ws *rfc6455.Conn

	inflight atomic.Int64 // messages sent on this connection and not yet acked or refused

	// receiver state, written by the read loop, read by the scenario after draining
	mu   sync.Mutex
	seen map[string]*seqSet // chat id → seqs of message_new received

	done    chan struct{} // closed when the read loop ends
	readErr error         // why it ended, valid after done
}

// dial connects connection number i as u.
func (d *wsDialer) dial(ctx context.Context, i int, u *user) (*conn, error) {
	nd := d.clients[min(i/max(d.perIP, 1), len(d.clients)-1)]
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, resp, err := rfc6455.Dial(ctx, d.urls[i%len(d.urls)], http.Header{"Authorization": {"Bearer " + u.token()}}, nd)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("ws dial as %s: status %d: %w", u.username, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("ws dial as %s: %w", u.username, err)
	}
	ws.SetReadLimit(4 << 20)
	return &conn{u: u, ws: ws, seen: map[string]*seqSet{}, done: make(chan struct{})}, nil
}

// frameHandler gets each frame with the time it was read. It runs on the connection's read
// goroutine and must not block.
type frameHandler func(c *conn, recv time.Time, f *inFrame)

// readLoop reads frames until the connection closes or fails, or ctx ends (which closes it).
func (c *conn) readLoop(ctx context.Context, h frameHandler) {
	defer close(c.done)
	stop := context.AfterFunc(ctx, func() { _ = c.ws.Close() })
	defer stop()
	var f inFrame
	for {
		op, msg, err := c.ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
				err = ctx.Err() // closed by the AfterFunc above
			}
			c.readErr = err
			return
		}
		recv := time.Now()
		if op != rfc6455.OpText || h == nil {
			continue
		}
		if err := decodeFrame(msg, &f); err != nil && f.Type == "" {
			continue // not an envelope; the handler has nothing to read
		}
		h(c, recv, &f)
	}
}

// send writes one envelope {"type","id","data"}.
func (c *conn) send(ctx context.Context, typ, id string, data any) error {
	b, err := json.Marshal(struct {
		Type string `json:"type"`
		ID   string `json:"id,omitempty"`
		Data any    `json:"data"`
	}{typ, id, data})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// A write the server does not take within 10 s fails; the frame may be cut, so the
	// connection is closed (its read loop then ends). The deadline is cleared afterwards: it
	// would fail the read loop's pongs once it passed.
	nc := c.ws.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err = c.ws.WriteTexts([][]byte{b})
	_ = nc.SetWriteDeadline(time.Time{})
	if err != nil && !errors.Is(err, rfc6455.ErrClosed) {
		_ = c.ws.Close()
	}
	return err
}

// markSeen records a message_new of chat at seq and reports whether it was the first time, and
// whether it came after a higher seq of the same chat (out of order).
func (c *conn) markSeen(chat string, seq int64) (first, late bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.seen[chat]
	if s == nil {
		s = &seqSet{}
		c.seen[chat] = s
	}
	late = seq < s.top
	s.top = max(s.top, seq)
	return s.add(seq), late
}

func (c *conn) hasSeen(chat string, seq int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[chat].has(seq)
}

// closed reports whether the read loop has ended.
func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// close says goodbye, waits (briefly) for the read loop to see the server's answer, and closes
// the socket.
func (c *conn) close() {
	_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.ws.WriteClose(rfc6455.StatusNormalClosure, "bench done"); err == nil {
		t := time.NewTimer(5 * time.Second)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
	}
	_ = c.ws.Close()
}

var tcpAddrs = regexp.MustCompile(`tcp [0-9a-f.:\[\]]+->[0-9a-f.:\[\]]+`)

// closeError describes why a connection ended, for the report (addresses left out, so that
// equal causes count together).
func closeError(err error) string {
	if err == nil {
		return "open"
	}
	var ce *rfc6455.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed by server: %d %s", ce.Code, ce.Reason)
	}
	return tcpAddrs.ReplaceAllString(err.Error(), "tcp")
}
