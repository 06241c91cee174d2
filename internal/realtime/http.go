package realtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/realtime/rfc6455"
)

// Path is where the socket is served, under the API's base path.
const Path = httpapi.BasePath + "/ws"

var errShuttingDown = apperr.New(apperr.KindUnavailable, "unavailable", "the server is shutting down; reconnect to another node or retry")

// ServeHTTP authenticates the request, upgrades it to a WebSocket and serves the connection until
// it closes. Failures before the upgrade are problem documents (401 for a missing or bad token,
// the status REST gives for any other authentication failure: see httpapi.Authenticator.Caller).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serving.Store(true)
	// Browsers cannot set headers on a WebSocket: the token may come as ?token=.
	p, err := h.auth.Caller(r.Context(), r.Header.Get("Authorization"), r.URL.Query().Get("token"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if h.closed.Load() {
		httpapi.WriteError(w, r, errShuttingDown)
		return
	}
	if !isUpgrade(r) {
		httpapi.WriteProblem(w, r, &httpapi.Problem{
			Status: http.StatusUpgradeRequired, Title: http.StatusText(http.StatusUpgradeRequired),
			Code: "upgrade_required", Detail: "this endpoint speaks WebSocket only (see docs/websocket.md)",
			RequestID: httpapi.RequestID(r.Context()),
		})
		return
	}
	if err := rfc6455.CheckHandshake(r, h.upgrade); err != nil {
		writeHandshakeProblem(w, r, err)
		return
	}
	// A limiter that is down fails open: the connection cap still holds.
	if err := ratelimit.Enforce(r.Context(), h.connects, "ws-connect:"+p.UserID, httpapi.Logger(r.Context())); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	lease, ok := h.reserveSlot(r.Context(), p.UserID)
	if !ok {
		httpapi.WriteProblem(w, r, &httpapi.Problem{
			Status: http.StatusTooManyRequests, Title: http.StatusText(http.StatusTooManyRequests),
			Code:      "too_many_connections",
			Detail:    fmt.Sprintf("this user already has %d open WebSocket connections; close one first", h.maxConnsPerUser),
			RequestID: httpapi.RequestID(r.Context()),
		})
		return
	}
	ws, err := rfc6455.Upgrade(w, r, h.upgrade)
	if err != nil { // Upgrade has answered (in plain text; CheckHandshake above makes this rare)
		h.releaseSlot(p.UserID, lease)
		httpapi.Logger(r.Context()).DebugContext(r.Context(), "realtime: upgrade refused", "err", err)
		return
	}
	// The connection lives on a goroutine of its own, so that the handler's goroutine (and its
	// deep net/http stack) ends now.
	go h.serve(r.Context(), ws, p, lease)
}

// handshakeCodes are the problem codes of refused handshakes, by status.
var handshakeCodes = map[int]string{
	http.StatusForbidden:        "origin_not_allowed",
	http.StatusBadRequest:       "bad_handshake",
	http.StatusMethodNotAllowed: "method_not_allowed",
	http.StatusUpgradeRequired:  "upgrade_required",
}

// writeHandshakeProblem answers a handshake that rfc6455 refuses with a problem document, as
// every other error of the API: a page whose Origin is not allowed gets 403 origin_not_allowed.
func writeHandshakeProblem(w http.ResponseWriter, r *http.Request, err error) {
	var herr *rfc6455.HandshakeError
	if !errors.As(err, &herr) {
		httpapi.WriteError(w, r, err)
		return
	}
	code := handshakeCodes[herr.Status]
	if code == "" {
		code = "bad_handshake"
	}
	detail := herr.Reason
	if herr.Status == http.StatusForbidden {
		detail += "; allow it with NERUTALK_CORS_ORIGINS"
	}
	if herr.Status == http.StatusBadRequest || herr.Status == http.StatusUpgradeRequired {
		w.Header().Set("Sec-WebSocket-Version", "13")
	}
	httpapi.WriteProblem(w, r, &httpapi.Problem{
		Status: herr.Status, Title: http.StatusText(herr.Status), Code: code, Detail: detail,
		RequestID: httpapi.RequestID(r.Context()),
	})
}

func isUpgrade(r *http.Request) bool {
	return rfc6455.HeaderHasToken(r.Header, "Connection", "upgrade") && rfc6455.HeaderHasToken(r.Header, "Upgrade", "websocket")
}

// serve runs one upgraded connection: register, presence, read loop, then clean up. reqCtx is
// the upgrade request's context, kept for its values (logger, request id) but not its
// cancellation, which comes when the handler returns.
func (h *Hub) serve(reqCtx context.Context, ws *rfc6455.Conn, p identity.Principal, lease string) {
	defer h.releaseSlot(p.UserID, lease) // taken by ServeHTTP; runs last, once c is unregistered
	ctx, cancel := context.WithCancel(identity.With(context.WithoutCancel(reqCtx), p))
	ws.SetReadLimit(h.maxFrame)
	c := &conn{
		hub:        h,
		ws:         ws,
		id:         uuid.Must(uuid.NewV7()).String(),
		user:       p.UserID,
		session:    p.SessionID,
		q:          newSendQueue(h.queueSize),
		badFrames:  rate.NewLimiter(rate.Every(time.Second), maxBadFrames-1),
		closing:    make(chan struct{}),
		cancel:     cancel,
		writerDone: make(chan struct{}),
		finished:   make(chan struct{}),
		pending:    make(chan struct{}, maxPendingAnswers),
	}
	ws.OnPong(func() { c.awaitingPong.Store(false) })
	c.reqLog = httpapi.Logger(ctx)
	if h.framesPerSec > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(h.framesPerSec), 2*h.framesPerSec)
		c.abuse = rate.NewLimiter(rate.Every(time.Second), h.framesPerSec)
		ws.SetFrameLimit(float64(wireFramesPerFrame*h.framesPerSec), 2*wireFramesPerFrame*h.framesPerSec)
		ws.SetPingLimit(pingsPerSecond, pingBurst)
	}
	defer close(c.finished)
	if !h.register(c) {
		cancel()
		_ = ws.WriteClose(causeGoingAway.code, causeGoingAway.reason)
		ws.Linger(time.Second)
		return
	}
	h.metrics.connections.Inc()

	var expiry *time.Timer
	if !p.ExpiresAt.IsZero() {
		expiry = time.AfterFunc(p.ExpiresAt.Sub(h.now()), func() { c.close(causeExpired) })
	}

	// Presence and the snapshot run on a short-lived goroutine: the lookups they make (the
	// database, on a cache miss) need a deep stack, which the long-lived read loop would otherwise
	// keep. The read loop handles no frame before they are done, so the snapshot comes first.
	// Coming online is one announcement to the user's followers; the snapshot covers the users
	// this connection follows automatically: the cost is bounded by those sets, never by the size
	// of the user's groups.
	setup := make(chan struct{})
	go func() {
		defer close(setup)
		if h.presence.Connected(c.user) {
			h.announce(ctx, c.user)
			h.presenceChanged(context.WithoutCancel(ctx), c.user, true)
		}
		auto, _ := h.autoPresence(ctx, c.user)
		h.follow(c, auto, followAuto, true)
	}()

	handshake := c.readLoop(ctx, setup)
	<-setup

	c.close(causeError) // no-op when a cause is already set
	<-c.writerDone
	c.watchdog.Stop()
	if handshake {
		_ = ws.Close()
	} else {
		ws.Linger(time.Second) // the stream broke: let the close frame reach the peer
	}
	if expiry != nil {
		expiry.Stop()
	}
	h.unregister(c)
	h.presence.Disconnected(c.user)
	h.metrics.connections.Dec()
	cancel()
	h.disconnected(context.WithoutCancel(ctx), c)
}

func without(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// Mount serves the hub at GET /api/v1/ws on the API's router and documents the operation in the
// OpenAPI document. Unless Options.Authenticate said otherwise, upgrades authenticate with the
// API's Authenticator, like every other route.
func (h *Hub) Mount(api *httpapi.API) {
	if h.auth == nil {
		h.auth = api.Authenticate
	}
	api.Router.Method(http.MethodGet, Path, h)
	oapi := api.Root.OpenAPI()
	problem := oapi.Components.Schemas.Schema(reflect.TypeFor[httpapi.Problem](), true, "Problem")
	problemResponse := func(desc string) *huma.Response {
		return &huma.Response{Description: desc, Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problem}}}
	}
	oapi.AddOperation(&huma.Operation{
		OperationID: "websocket",
		Method:      http.MethodGet,
		Path:        Path,
		Summary:     "Open the real-time WebSocket",
		Description: "Upgrades to a WebSocket that carries JSON envelopes `{\"type\", \"id\"?, \"data\"}` both ways: " +
			"commands from the client (acknowledged with `ack` or `error` frames) and events from the server " +
			"(`message_new`, `presence`, ...). Authenticate with the access token in the `Authorization` header " +
			"or, from browsers, the `token` query parameter. Limits, close codes and every frame type are in " +
			"docs/websocket.md.",
		Tags:     []string{"Real-time"},
		Security: []map[string][]string{{"bearer": {}}},
		Parameters: []*huma.Param{
			{Name: "token", In: "query", Description: "Access token, for clients that cannot set the Authorization header (browsers)", Schema: &huma.Schema{Type: "string"}},
		},
		Responses: map[string]*huma.Response{
			"101": {Description: "Switching Protocols: the connection is now a WebSocket"},
			"401": problemResponse("Missing, invalid or expired access token"),
			"400": problemResponse("A malformed WebSocket handshake (code bad_handshake)"),
			"403": problemResponse("The page's Origin may not open a socket (code origin_not_allowed; see NERUTALK_CORS_ORIGINS)"),
			"426": problemResponse("Not a WebSocket upgrade request"),
			"429": problemResponse("The user has NERUTALK_WS_MAX_CONNECTIONS_PER_USER connections open already, on this node, or on all the nodes sharing Redis (code too_many_connections), or it opened more than NERUTALK_WS_CONNECTS_PER_MINUTE of them (code rate_limited, with Retry-After)"),
			"500": problemResponse("The access token could not be checked (the database failed)"),
			"503": problemResponse("The node is shutting down"),
		},
	})
}
