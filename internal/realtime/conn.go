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

	"github.com/nerutalk/nerutalk/internal/realtime/rfc6455"
	"golang.org/x/time/rate"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// closeCause is why a connection ends: the close frame's code and reason, the metric label,
// whether what is already queued is written before the close frame, and what it means for the
// client (the protocol document lists it, see CloseCodes).
type closeCause struct {
	code    rfc6455.StatusCode
	reason  string
	label   string
	flush   bool
	meaning string
}

var (
	causeGoingAway   = closeCause{rfc6455.StatusGoingAway, "going away", "going_away", true, "the node is shutting down (what was queued is delivered first): reconnect with backoff"}
	causeExpired     = closeCause{CloseTokenExpired, "token expired", "token_expired", true, "the access token expired (queued frames are delivered first): POST /auth/refresh, then reconnect"}
	causeRevoked     = closeCause{CloseSessionRevoked, "session revoked", "session_revoked", true, "the session was revoked (logout, password change, reused refresh token): sign in again"}
	causeSlow        = closeCause{CloseTooSlow, "too slow", "too_slow", false, "the send queue overflowed and events were lost: reconnect, then resync"}
	causePingTimeout = closeCause{ClosePingTimeout, "ping timeout", "ping_timeout", false, "no pong to the server's ping within one ping interval: reconnect"}
	causeBadFrames   = closeCause{rfc6455.StatusPolicyViolation, "too many bad frames", "bad_frames", true, "kept sending malformed frames or unknown types: fix the client, do not loop"}
	causeRateLimited = closeCause{CloseRateLimited, "rate limit exceeded", "rate_limited", true, "kept sending over the frame rate limit: reconnect later and send less"}
	causeFrameFlood  = closeCause{CloseRateLimited, "too many frames", "frame_flood", false, fmt.Sprintf("sent more wire frames (pings and fragments included) than the wire-frame budget, or more than %d pings a second: reconnect later, do not fragment into tiny frames", pingsPerSecond)}
	causeTooLarge    = closeCause{rfc6455.StatusMessageTooBig, "frame too large", "too_large", false, "a message (all its fragments together) larger than the frame size limit: send smaller frames"}
	causeProtocol    = closeCause{rfc6455.StatusProtocolError, "protocol error", "protocol_error", false, "the client broke RFC 6455: fix the client"}
	causeBadText     = closeCause{rfc6455.StatusInvalidPayload, "text is not valid UTF-8", "invalid_payload", false, "a text message or close reason that is not UTF-8: send UTF-8 JSON"}
	causePeer        = closeCause{rfc6455.StatusNormalClosure, "", "client", false, "normal close, by the client"}
	causeError       = closeCause{rfc6455.StatusInternalError, "connection error", "error", false, "the connection failed on the server side: reconnect"}
)

// closeCauses is every cause, for CloseCodes; a new cause must be added here (a test checks).
var closeCauses = []closeCause{
	causePeer, causeGoingAway, causeProtocol, causeBadText, causeBadFrames, causeTooLarge, causeError,
	causeExpired, causePingTimeout, causeRevoked, causeSlow, causeRateLimited, causeFrameFlood,
}

// conn is one WebSocket connection. Its read loop runs on a goroutine of its own; its writer is a
// goroutine started when there is something to write and ended when there is nothing left, so an
// idle connection holds one goroutine (see doc.go).
type conn struct {
	hub     *Hub
	ws      *rfc6455.Conn
	id      string
	user    string
	session string // the session of the access token it was opened with
	// reqLog is the upgrade request's logger; logger() adds the connection's attributes when
	// something is logged, which is rare, instead of keeping a formatted copy per connection.
	reqLog *slog.Logger

	q         sendQueue
	limiter   *rate.Limiter // client frames per second; nil when rate limits are off
	abuse     *rate.Limiter // refused frames tolerated before CloseRateLimited
	badFrames *rate.Limiter // bad frames tolerated before 1008

	closeOnce  sync.Once
	closing    chan struct{} // closed by close; cause is set before
	cause      closeCause
	cancel     context.CancelFunc // ends the context of running commands
	watchdog   *time.Timer        // drops the socket if the close stalls
	writerDone chan struct{}      // closed once the close frame was written (or could not be)
	finished   chan struct{}      // the connection has cleaned up

	writing      atomic.Bool  // a writer goroutine is running
	pingDue      atomic.Bool  // the writer owes a ping
	awaitingPong atomic.Bool  // a ping is due or out, and no pong came back yet
	pingSent     atomic.Int64 // when that ping was written (Unix ns); 0 while it is not
	spare        [][]byte     // the writer's batch slice, reused (only the running writer touches it)

	// Answers that must wait for an earlier Later, in frame order; each Later's Done queues
	// what became ready (flushAnswers). pending bounds the Laters in flight.
	amu     sync.Mutex
	answers []answer
	pending chan struct{}

	mu     sync.Mutex // guards topics, follows, explicit and gone
	topics map[string]struct{}
	// follows holds the users whose presence the connection follows, with why (followAuto,
	// followExplicit); explicit counts those followed with presence_subscribe.
	follows  map[string]uint8
	explicit int
	gone     bool
}

// maxPendingAnswers is how many deferred answers (Later) a connection may have in flight.
const maxPendingAnswers = 256

// answer is the answer to one frame: a frame ready to queue, or a Later to wait for.
type answer struct {
	id, typ string
	later   *Later
	frame   []byte
}

func (c *conn) logger() *slog.Logger { return c.reqLog.With("conn_id", c.id, "user_id", c.user) }

// UserID implements Client.
func (c *conn) UserID() string { return c.user }

// ConnID implements Client.
func (c *conn) ConnID() string { return c.id }

// SessionID implements Client.
func (c *conn) SessionID() string { return c.session }

// Join implements Client.
func (c *conn) Join(topic string) { c.hub.join(c, topic) }

// Leave implements Client.
func (c *conn) Leave(topic string) { c.hub.leave(c, topic) }

// enqueue queues an encoded frame for the writer without blocking; a full queue closes the
// connection as too slow. The writer starts at once, or at wb's Flush when wb is not nil.
func (c *conn) enqueue(frame []byte, wb *WakeBatch) {
	if !c.q.push(frame) {
		c.close(causeSlow)
		return
	}
	if wb != nil {
		wb.conns = append(wb.conns, c)
		return
	}
	c.wake()
}

// wake makes sure a writer runs.
func (c *conn) wake() {
	if c.writing.CompareAndSwap(false, true) {
		go c.writeLoop()
	}
}

// close starts closing the connection once; later calls do nothing. It never blocks: the writer
// sends the close frame.
func (c *conn) close(cause closeCause) {
	c.closeOnce.Do(func() {
		c.cause = cause
		c.q.shut()
		c.cancel()
		c.watchdog = time.AfterFunc(c.hub.closeTimeout, func() { _ = c.ws.Close() })
		c.hub.metrics.closes.WithLabelValues(cause.label).Inc()
		if cause == causeSlow {
			c.hub.metrics.slow.Inc()
		}
		close(c.closing)
		c.wake()
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

// pingTick is the hub's ping round for this connection: a connection that has not answered a
// ping written at least one ping interval ago is closed with 4002; one whose ping is still waiting
// for its writer (a busy node) is given until the next round; the others get a new ping.
func (c *conn) pingTick() {
	if c.isClosing() {
		return
	}
	if c.awaitingPong.Load() {
		if sent := c.pingSent.Load(); sent != 0 && c.hub.now().UnixNano()-sent >= int64(c.hub.pingInterval) {
			c.close(causePingTimeout)
		}
		return
	}
	c.pingSent.Store(0)
	c.awaitingPong.Store(true)
	c.pingDue.Store(true)
	c.wake()
}

// writeLoop is the connection's only data writer while it runs: it writes everything queued (and
// a ping when one is due) until nothing is left, then ends. Once the connection is closing it
// flushes (when the cause asks for it), sends the close frame and ends for good.
func (c *conn) writeLoop() {
	for {
		if c.isClosing() {
			c.finishClose()
			return
		}
		batch := c.q.take(c.spare)
		ping := c.pingDue.Swap(false)
		if len(batch) == 0 && !ping {
			c.spare = batch
			c.writing.Store(false)
			// Something queued (or a close or ping) between take and Store is not lost: either
			// its wake started another writer, or this one carries on.
			if !c.q.pending() && !c.pingDue.Load() && !c.isClosing() {
				return
			}
			if !c.writing.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		if ping {
			if err := c.ws.WritePing(); err != nil {
				c.close(causeError)
			}
			c.pingSent.Store(c.hub.now().UnixNano())
		}
		if err := c.writeBatch(batch); err != nil {
			c.close(causeError)
		}
		c.spare = recycle(batch)
	}
}

// finishClose writes what the cause allows and the close frame, once.
func (c *conn) finishClose() {
	select {
	case <-c.writerDone:
		return
	default:
	}
	if c.cause.flush {
		batch := c.q.take(c.spare)
		_ = c.writeBatch(batch)
		c.spare = recycle(batch)
	}
	err := c.ws.WriteClose(c.cause.code, c.cause.reason)
	if err != nil && !errors.Is(err, rfc6455.ErrClosed) && !errors.Is(err, net.ErrClosed) {
		c.logger().Debug("realtime: close frame", "err", err)
	}
	close(c.writerDone)
}

// writeBatch writes the frames, one WebSocket message each, in one system call.
func (c *conn) writeBatch(batch [][]byte) error {
	if len(batch) == 0 {
		return nil
	}
	// Counted before the write: once a peer has the frames, the counters include them (a failed
	// write is counted too; its connection is closing).
	c.hub.metrics.framesOut.Add(float64(len(batch)))
	c.hub.metrics.writes.Inc()
	// No deadline here: a stalled write ends when a ping times out or the close watchdog drops
	// the socket.
	if err := c.ws.WriteTexts(batch); err != nil {
		return fmt.Errorf("realtime: write: %w", err)
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

// readLoop reads and handles client frames (the first one once setup is closed) until the
// connection ends, and reports whether it ended with the close handshake complete. Once the
// connection is closing it keeps reading (and ignores data) until the peer answers the close
// frame.
func (c *conn) readLoop(ctx context.Context, setup <-chan struct{}) (handshake bool) {
	for {
		op, b, err := c.ws.ReadMessage()
		if err != nil {
			var ce *rfc6455.CloseError
			var pe *rfc6455.ProtocolError
			switch {
			case errors.As(err, &ce):
				c.close(causePeer)
				return true
			case errors.Is(err, rfc6455.ErrMessageTooBig):
				c.close(causeTooLarge)
			case errors.Is(err, rfc6455.ErrFrameRate):
				c.close(causeFrameFlood)
			case errors.As(err, &pe) && pe.Code == rfc6455.StatusInvalidPayload:
				c.close(causeBadText)
			case errors.As(err, &pe):
				c.close(causeProtocol)
			default:
				c.close(causeError)
			}
			return false
		}
		if c.isClosing() {
			continue
		}
		if setup != nil {
			<-setup
			setup = nil
		}
		c.hub.metrics.framesIn.Inc()
		c.handle(ctx, op, b)
	}
}

// refuseFrame answers a frame over a rate limit with rate_limited and closes the connection
// (4029) when refusals go on for more than a second's allowance.
func (c *conn) refuseFrame(id, detail string) {
	c.sendError(id, ErrorData{Code: CodeRateLimited, Detail: detail})
	if !c.abuse.Allow() {
		c.close(causeRateLimited)
	}
}

// handle processes one client frame: decode, rate limit, dispatch, answer.
func (c *conn) handle(ctx context.Context, op rfc6455.Opcode, b []byte) {
	if op != rfc6455.OpText {
		c.rejectBad("", badFrame("frames must be text messages carrying JSON"))
		return
	}
	env, ferr := decodeEnvelope(b)
	if ferr != nil {
		c.rejectBad(env.ID, ferr)
		return
	}
	if c.limiter != nil && !c.limiter.Allow() {
		c.refuseFrame(env.ID, "too many frames, slow down")
		return
	}
	if c.hub.userFrames != nil {
		if ok, _, _ := c.hub.userFrames.Allow(ctx, c.user); !ok {
			c.refuseFrame(env.ID, "too many frames from this user's connections together, slow down")
			return
		}
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
	if l, ok := res.(*Later); ok && err == nil {
		select {
		case c.pending <- struct{}{}:
		case <-c.closing:
			return
		}
		c.answerLater(answer{id: env.ID, typ: env.Type, later: l})
		return
	}
	if err != nil {
		c.sendError(env.ID, c.errorData(ctx, env.Type, err))
		return
	}
	if env.ID != "" {
		c.reply(env.ID, res)
	}
}

// answerFrame queues the answer f, after the deferred answers of earlier frames if there are any.
func (c *conn) answerFrame(f []byte) {
	c.amu.Lock()
	defer c.amu.Unlock()
	if len(c.answers) > 0 {
		c.answers = append(c.answers, answer{frame: f})
		return
	}
	c.enqueue(f, nil)
}

// answerLater adds a deferred answer; its Later's Done queues it (flushAnswers).
func (c *conn) answerLater(a answer) {
	c.amu.Lock()
	c.answers = append(c.answers, a)
	c.amu.Unlock()
	// Registered outside amu: Done may run flushAnswers right away, on another goroutine.
	if a.later.onDone(c.flushAnswers) {
		c.flushAnswers(context.Background())
	}
}

// flushAnswers queues, in frame order, the waiting answers that are ready: those before the
// first Later that is not done yet. It runs on the goroutine of a Later's Done (the chat's event
// pipeline), so an ack joins the events published with the same WakeBatch in one write.
func (c *conn) flushAnswers(ctx context.Context) {
	wb := wakeBatchFrom(ctx)
	c.amu.Lock()
	defer c.amu.Unlock()
	n := 0
	for ; n < len(c.answers); n++ {
		a := c.answers[n]
		f := a.frame
		if a.later != nil {
			if !a.later.isDone() {
				break
			}
			f = c.laterFrame(a)
			<-c.pending
		}
		if f != nil {
			c.enqueue(f, wb)
		}
		c.answers[n] = answer{}
	}
	c.answers = c.answers[n:]
	if len(c.answers) == 0 {
		c.answers = nil
	}
}

// laterFrame is the ack or error frame of a ready Later (nil when the frame had no id and
// succeeded).
func (c *conn) laterFrame(a answer) []byte {
	res, err := a.later.result()
	if err != nil {
		return errorFrame(a.id, c.errorData(context.Background(), a.typ, err))
	}
	if a.id == "" {
		return nil
	}
	b, err := encodeFrame("ack", a.id, res)
	if err != nil {
		c.logger().Error("realtime: encode ack", "err", err)
		return errorFrame(a.id, ErrorData{Code: CodeInternal, Detail: "internal error"})
	}
	return b
}

// run calls a command, turning a panic into an internal error.
func (c *conn) run(ctx context.Context, fn CommandFunc, data json.RawMessage) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.logger().ErrorContext(ctx, "realtime: command panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
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
		c.logger().ErrorContext(ctx, "realtime: command failed", "type", typ, "err", err)
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

func (c *conn) sendError(id string, d ErrorData) { c.answerFrame(errorFrame(id, d)) }

// reply queues the ack of frame id.
func (c *conn) reply(id string, data any) {
	b, err := encodeFrame("ack", id, data)
	if err != nil {
		c.logger().Error("realtime: encode ack", "err", err)
		c.sendError(id, ErrorData{Code: CodeInternal, Detail: "internal error"})
		return
	}
	c.answerFrame(b)
}

// sendQueue is a connection's bounded queue of encoded frames. Memory grows with the backlog,
// not with the limit.
type sendQueue struct {
	mu     sync.Mutex
	frames [][]byte
	max    int
	closed bool
}

func newSendQueue(max int) sendQueue {
	return sendQueue{max: max}
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
	q.frames = append(q.frames, f)
	q.mu.Unlock()
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

// pending reports whether frames are queued.
func (q *sendQueue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames) > 0
}

// shut makes the queue drop further frames; what is queued stays for a flush.
func (q *sendQueue) shut() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}
