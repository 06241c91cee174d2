package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// closeCause is why a connection ends: the close frame's code and reason, the metric label, and
// whether what is already queued is written before the close frame.
type closeCause struct {
	code   websocket.StatusCode
	reason string
	label  string
	flush  bool
}

var (
	causeGoingAway   = closeCause{websocket.StatusGoingAway, "going away", "going_away", true}
	causeExpired     = closeCause{CloseTokenExpired, "token expired", "token_expired", true}
	causeSlow        = closeCause{CloseTooSlow, "too slow", "too_slow", false}
	causePingTimeout = closeCause{ClosePingTimeout, "ping timeout", "ping_timeout", false}
	causeBadFrames   = closeCause{websocket.StatusPolicyViolation, "too many bad frames", "bad_frames", true}
	causeRateLimited = closeCause{CloseRateLimited, "rate limit exceeded", "rate_limited", true}
	causeTooLarge    = closeCause{websocket.StatusMessageTooBig, "frame too large", "too_large", false}
	causePeer        = closeCause{websocket.StatusNormalClosure, "", "client", false}
	causeError       = closeCause{websocket.StatusInternalError, "connection error", "error", false}
)

// conn is one WebSocket connection. Its read loop runs on the HTTP handler's goroutine; its writer
// is the only goroutine that writes data frames (see doc.go).
type conn struct {
	hub  *Hub
	ws   *websocket.Conn
	id   string
	user string
	log  *slog.Logger

	q         sendQueue
	limiter   *rate.Limiter // client frames per second; nil when rate limits are off
	abuse     *rate.Limiter // refused frames tolerated before CloseRateLimited
	badFrames *rate.Limiter // bad frames tolerated before 1008

	closeOnce  sync.Once
	closing    chan struct{} // closed by close; cause is set before
	cause      closeCause
	cancel     context.CancelFunc // ends the context of running commands
	watchdog   *time.Timer        // drops the socket if the close stalls
	writerDone chan struct{}
	finished   chan struct{} // the handler has cleaned up
	pinging    atomic.Bool

	mu     sync.Mutex // guards topics and gone
	topics map[string]struct{}
	gone   bool
}

// UserID implements Client.
func (c *conn) UserID() string { return c.user }

// ConnID implements Client.
func (c *conn) ConnID() string { return c.id }

// Join implements Client.
func (c *conn) Join(topic string) { c.hub.join(c, topic) }

// Leave implements Client.
func (c *conn) Leave(topic string) { c.hub.leave(c, topic) }

// enqueue queues an encoded frame for the writer without blocking; a full queue closes the
// connection as too slow.
func (c *conn) enqueue(frame []byte) {
	if !c.q.push(frame) {
		c.close(causeSlow)
	}
}

// close starts closing the connection once; later calls do nothing. It never blocks: the writer
// sends the close frame.
func (c *conn) close(cause closeCause) {
	c.closeOnce.Do(func() {
		c.cause = cause
		c.q.shut()
		c.cancel()
		c.watchdog = time.AfterFunc(c.hub.closeTimeout, func() { _ = c.ws.CloseNow() })
		c.hub.metrics.closes.WithLabelValues(cause.label).Inc()
		if cause == causeSlow {
			c.hub.metrics.slow.Inc()
		}
		close(c.closing)
	})
}

func (c *conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// writeLoop is the connection's only data writer: it drains the queue in batches, pings, and on
// close flushes (when the cause asks for it) and performs the close handshake.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	ticker := time.NewTicker(c.hub.pingInterval)
	defer ticker.Stop()
	var batch [][]byte
	for {
		select {
		case <-c.q.ready:
			batch = c.q.take(batch)
			if err := c.writeBatch(batch); err != nil {
				c.close(causeError)
			}
			batch = recycle(batch)
		case <-ticker.C:
			c.ping()
		case <-c.closing:
			if c.cause.flush {
				batch = c.q.take(batch)
				_ = c.writeBatch(batch)
			}
			err := c.ws.Close(c.cause.code, c.cause.reason)
			if err != nil && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("realtime: close handshake", "err", err)
			}
			return
		}
	}
}

// writeBatch writes the frames back to back, one WebSocket message each. Unless the close cause
// asks for a flush, it stops as soon as the connection is closing.
func (c *conn) writeBatch(batch [][]byte) error {
	n := 0
	defer func() { c.hub.metrics.framesOut.Add(float64(n)) }()
	for _, f := range batch {
		if c.isClosing() && !c.cause.flush {
			return nil
		}
		// No deadline here: a stalled write ends when a ping times out or the close watchdog
		// drops the socket.
		if err := c.ws.Write(context.Background(), websocket.MessageText, f); err != nil {
			return fmt.Errorf("realtime: write: %w", err)
		}
		n++
	}
	return nil
}

// recycle clears a written batch for reuse, dropping it when a burst made it large.
func recycle(batch [][]byte) [][]byte {
	if cap(batch) > 256 {
		return nil
	}
	clear(batch)
	return batch[:0]
}

// ping sends a WebSocket ping and closes the connection when no pong comes back within one ping
// interval. At most one ping is outstanding.
func (c *conn) ping() {
	if !c.pinging.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.pinging.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), c.hub.pingInterval)
		defer cancel()
		if err := c.ws.Ping(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			c.close(causePingTimeout)
		}
	}()
}

// readLoop reads and handles client frames until the connection closes. readCtx must never be
// cancelled (cancelling a read drops the socket); cmdCtx is the commands' context.
func (c *conn) readLoop(readCtx, cmdCtx context.Context) {
	for !c.isClosing() {
		typ, b, err := c.ws.Read(readCtx)
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrMessageTooBig):
				c.close(causeTooLarge) // the library has sent the 1009 close frame
			case websocket.CloseStatus(err) != -1:
				c.close(causePeer)
			default:
				c.close(causeError)
			}
			return
		}
		c.hub.metrics.framesIn.Inc()
		c.handle(cmdCtx, typ, b)
	}
}

// handle processes one client frame: decode, rate limit, dispatch, answer.
func (c *conn) handle(ctx context.Context, typ websocket.MessageType, b []byte) {
	if typ != websocket.MessageText {
		c.rejectBad("", badFrame("frames must be text messages carrying JSON"))
		return
	}
	env, ferr := decodeEnvelope(b)
	if ferr != nil {
		c.rejectBad(env.ID, ferr)
		return
	}
	if c.limiter != nil && !c.limiter.Allow() {
		c.sendError(env.ID, ErrorData{Code: CodeRateLimited, Detail: "too many frames, slow down"})
		if !c.abuse.Allow() {
			c.close(causeRateLimited)
		}
		return
	}
	if env.Type == "ping" {
		c.reply(env.ID, PingData{TS: c.hub.now().UTC().Format(time.RFC3339Nano)})
		return
	}
	fn := c.hub.handlers[env.Type]
	if fn == nil {
		c.rejectBad(env.ID, &frameError{code: CodeUnknownType, detail: "unknown frame type " + env.Type})
		return
	}
	res, err := c.run(ctx, fn, env.Data)
	if err != nil {
		c.sendError(env.ID, c.errorData(ctx, env.Type, err))
		return
	}
	if env.ID != "" {
		c.reply(env.ID, res)
	}
}

// run calls a command, turning a panic into an internal error.
func (c *conn) run(ctx context.Context, fn CommandFunc, data json.RawMessage) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.ErrorContext(ctx, "realtime: command panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res, err = nil, errors.New("realtime: command panicked")
		}
	}()
	return fn(ctx, c, data)
}

// errorData turns a command's error into the data of an error frame: classified errors keep their
// code and detail; anything else is logged and reported as "internal".
func (c *conn) errorData(ctx context.Context, typ string, err error) ErrorData {
	if ae, ok := apperr.As(err); ok && ae.Kind != apperr.KindInternal {
		return ErrorData{Code: ae.Code, Detail: ae.Detail, Errors: ae.Fields}
	}
	if ctx.Err() == nil { // not merely the connection closing under the command
		c.log.ErrorContext(ctx, "realtime: command failed", "type", typ, "err", err)
	}
	return ErrorData{Code: CodeInternal, Detail: "internal error"}
}

// rejectBad answers a bad frame and closes the connection when bad frames keep coming.
func (c *conn) rejectBad(id string, e *frameError) {
	c.sendError(id, ErrorData{Code: e.code, Detail: e.detail})
	if !c.badFrames.Allow() {
		c.close(causeBadFrames)
	}
}

func (c *conn) sendError(id string, d ErrorData) { c.enqueue(errorFrame(id, d)) }

// reply queues the ack of frame id.
func (c *conn) reply(id string, data any) {
	b, err := encodeFrame("ack", id, data)
	if err != nil {
		c.log.Error("realtime: encode ack", "err", err)
		c.sendError(id, ErrorData{Code: CodeInternal, Detail: "internal error"})
		return
	}
	c.enqueue(b)
}

// sendQueue is a connection's bounded queue of encoded frames. Memory grows with the backlog,
// not with the limit.
type sendQueue struct {
	mu     sync.Mutex
	frames [][]byte
	max    int
	closed bool
	ready  chan struct{} // signalled when the queue turns non-empty
}

func newSendQueue(max int) sendQueue {
	return sendQueue{max: max, ready: make(chan struct{}, 1)}
}

// push appends f, reporting false when the queue is full. After shut it drops f.
func (q *sendQueue) push(f []byte) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return true
	}
	if len(q.frames) >= q.max {
		q.mu.Unlock()
		return false
	}
	wasEmpty := len(q.frames) == 0
	q.frames = append(q.frames, f)
	q.mu.Unlock()
	if wasEmpty {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return true
}

// take returns everything queued, leaving spare (emptied) as the new queue.
func (q *sendQueue) take(spare [][]byte) [][]byte {
	q.mu.Lock()
	out := q.frames
	q.frames = spare[:0]
	q.mu.Unlock()
	return out
}

// shut makes the queue drop further frames; what is queued stays for a flush.
func (q *sendQueue) shut() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}
