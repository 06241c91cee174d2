// Package httpapi is NeruTalk's HTTP surface: the router, the middleware chain, the one place that
// turns errors into RFC 9457 problem documents, the generated OpenAPI document and its docs page,
// and the operational endpoints (/healthz, /readyz, /metrics).
//
// Features register their operations on the huma APIs that New returns: Public (no credentials),
// Authed (a valid access token; the caller is in identity.From(ctx)) and Admin (an admin's token).
//
// Concurrency: register every operation before the router serves its first request (neither chi
// nor huma allow registration concurrently with serving; the /docs page is rendered once, on its
// first request). After that the API is safe for concurrent use: the middleware keeps no state
// besides the Prometheus collectors.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"

	"github.com/nerutalk/nerutalk/internal/apperr"
)

// BasePath is the prefix of every application endpoint.
const BasePath = "/api/v1"

// Check is one readiness check (the database, Redis...).
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configures New.
type Options struct {
	Logger      *slog.Logger
	Metrics     *Metrics
	Version     string
	CORSOrigins []string
	// TrustedProxies are the load balancers and reverse proxies whose X-Forwarded-For names the
	// client (realClient); empty: the connection's peer is the client.
	TrustedProxies []netip.Prefix
	MaxBodyBytes   int64
	Authenticate   Authenticator
	Ready          []Check
	Pprof          bool // serve /debug/pprof/ to admins
}

// API is the assembled HTTP surface.
type API struct {
	Router *chi.Mux
	Root   huma.API // operations at the server root
	Public huma.API // /api/v1, anonymous
	Authed huma.API // /api/v1, access token required
	Admin  huma.API // /api/v1, admin's access token required
	// Authenticate is the node's Authenticator (Options.Authenticate): routes outside the huma
	// groups (the WebSocket, file downloads) authenticate with it, through Authenticate.Caller.
	Authenticate Authenticator

	docsOnce sync.Once
	docsHTML []byte
}

var installOnce sync.Once

// New builds the router with the middleware chain and the operational endpoints.
func New(o Options) *API {
	installOnce.Do(installHumaErrors)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	r := chi.NewRouter()
	r.Use(realClient(o.TrustedProxies), requestContext(o.Logger), observe(o.Metrics), recoverer, securityHeaders, cors(o.CORSOrigins),
		limitJSONBody(o.MaxBodyBytes), paceBodies)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, ProblemFor(r.Context(), http.StatusNotFound, "no such endpoint"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		// chi sets no Allow header when the handler is custom; RFC 9110 requires one on a 405.
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if r.Match(chi.NewRouteContext(), m, req.URL.Path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteProblem(w, req, ProblemFor(req.Context(), http.StatusMethodNotAllowed, "method not allowed on this endpoint"))
	})

	cfg := huma.DefaultConfig("NeruTalk API", o.Version)
	cfg.Info.Description = "NeruTalk: accounts, real-time chat, voice and video calls, media, push notifications and " +
		"location sharing for mobile and web apps. Every request and answer of the REST API is below; errors are " +
		"RFC 9457 problem documents with a stable `code`.\n\n" +
		"Real-time events (messages, receipts, typing, presence, call signaling, locations) travel over one " +
		"WebSocket at `/api/v1/ws`: its frames are in the [WebSocket protocol reference](docs/websocket) " +
		"([asyncapi.json](asyncapi.json)) and explained in the [WebSocket guide](docs/websocket.md)."
	// One server, relative: the node that serves this document (there is no public-URL setting, and
	// a relative URL stays right behind any proxy, host name or port).
	cfg.Servers = []*huma.Server{{URL: "/", Description: "This NeruTalk server (the origin that serves /openapi.json)"}}
	cfg.DocsPath = ""    // our own page (docs.go): Swagger UI served by the binary, nothing from the internet
	cfg.SchemasPath = "" // schemas live in the OpenAPI document
	cfg.CreateHooks = nil
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", BearerFormat: "JWT", Description: "Access token from /auth/login or /auth/register"},
	}
	a := &API{Router: r, Authenticate: o.Authenticate}
	a.Root = humachi.New(r, cfg)

	// Group modifiers run after huma has turned op.Errors into documented responses (and set the
	// operation's body limit), so they add the responses themselves; the JSON body limit is the
	// router's limitJSONBody.
	problemSchema := a.Root.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[Problem](), true, "Problem")
	documentError := func(op *huma.Operation, status int) {
		if op.Responses == nil {
			op.Responses = map[string]*huma.Response{}
		}
		op.Errors = appendStatus(op.Errors, status)
		if r := op.Responses[strconv.Itoa(status)]; r != nil && r.Content["application/problem+json"] != nil {
			return // documented already, maybe with a description of its own
		}
		op.Responses[strconv.Itoa(status)] = &huma.Response{
			Description: http.StatusText(status),
			Content:     map[string]*huma.MediaType{"application/problem+json": {Schema: problemSchema}},
		}
	}
	// Every operation lists the errors that the router, the middleware and huma give on its
	// behalf, besides its own: the end-to-end tests fail on any status the document does not list
	// (servertest), and "default" would tell clients nothing.
	common := func(op *huma.Operation, next func(*huma.Operation)) {
		if op.RequestBody != nil {
			// huma: a body that does not parse (400), of a type other than JSON (415), against the
			// schema (422); limitJSONBody: too large (413).
			for _, st := range []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity} {
				documentError(op, st)
			}
		}
		if len(op.Parameters) > 0 {
			documentError(op, http.StatusUnprocessableEntity) // a parameter against its schema
		}
		documentError(op, http.StatusInternalServerError)
		delete(op.Responses, "default")
		next(op)
	}
	secured := func(op *huma.Operation, next func(*huma.Operation)) {
		op.Security = []map[string][]string{{"bearer": {}}}
		documentError(op, http.StatusUnauthorized)
		documentError(op, http.StatusTooManyRequests)    // the caller's request budget (server.limitRequests)
		documentError(op, http.StatusServiceUnavailable) // the session store cannot answer (auth.Authenticate)
		next(op)
	}
	public := huma.NewGroup(a.Root, BasePath)
	public.UseModifier(common)
	public.UseModifier(func(op *huma.Operation, next func(*huma.Operation)) {
		if op.Security == nil {
			op.Security = anonymous
		} else if !reflect.DeepEqual(op.Security, anonymous) { // authenticates by itself (Authenticator.Caller)
			documentError(op, http.StatusUnauthorized)
			documentError(op, http.StatusTooManyRequests)
			documentError(op, http.StatusServiceUnavailable)
		}
		next(op)
	})
	a.Public = public

	authed := huma.NewGroup(a.Root, BasePath)
	authed.UseModifier(common)
	authed.UseModifier(secured)
	authed.UseMiddleware(requireAuth(a.Root, o.Authenticate, false))
	a.Authed = authed

	admin := huma.NewGroup(a.Root, BasePath)
	admin.UseModifier(common)
	admin.UseModifier(secured)
	admin.UseModifier(func(op *huma.Operation, next func(*huma.Operation)) {
		documentError(op, http.StatusForbidden)
		if !slices.Contains(op.Tags, "Admin") {
			op.Tags = append(op.Tags, "Admin")
		}
		next(op)
	})
	admin.UseMiddleware(requireAuth(a.Root, o.Authenticate, true))
	a.Admin = admin

	a.registerOps(o)
	a.mountDocs(r)
	r.Method(http.MethodGet, "/metrics", o.Metrics.Handler())
	if o.Pprof {
		mountPprof(r, o.Authenticate)
	}
	return a
}

func appendStatus(list []int, status int) []int {
	for _, s := range list {
		if s == status {
			return list
		}
	}
	return append(list, status)
}

// anonymous is the security requirement of operations that need no credentials: one empty
// requirement object says so explicitly in the OpenAPI document.
var anonymous = []map[string][]string{{}}

type healthOutput struct {
	Body struct {
		Status string            `json:"status" example:"ok"`
		Checks map[string]string `json:"checks,omitempty" doc:"Each dependency and its state"`
	}
}

func (a *API) registerOps(o Options) {
	huma.Register(a.Root, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"Operations"}, Security: anonymous,
		Summary: "Liveness: the process is up", Errors: []int{http.StatusInternalServerError},
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		out := &healthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})
	huma.Register(a.Root, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"Operations"}, Security: anonymous,
		Summary: "Readiness: every dependency (database, Redis) answers", Errors: []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		out := &healthOutput{}
		out.Body.Status = "ok"
		out.Body.Checks = map[string]string{}
		var failed []string
		for _, c := range o.Ready {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := c.Check(cctx)
			cancel()
			if err != nil {
				Logger(ctx).WarnContext(ctx, "readiness check failed", "check", c.Name, "err", err)
				failed = append(failed, c.Name)
				out.Body.Checks[c.Name] = "failing"
				continue
			}
			out.Body.Checks[c.Name] = "ok"
		}
		if len(failed) > 0 {
			return nil, apperr.New(apperr.KindUnavailable, "not_ready", "not ready: "+strings.Join(failed, ", ")+" not answering")
		}
		return out, nil
	})
}
