// Package server wires NeruTalk together: it opens the store, builds every feature with its
// dependencies, mounts them on the HTTP API and runs the listener with a graceful shutdown. It is
// the only package that knows every feature; cmd/nerutalk and the end-to-end tests both use it.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nerutalk/nerutalk/internal/asyncapi"
	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/call"
	"github.com/nerutalk/nerutalk/internal/chat"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
	"github.com/nerutalk/nerutalk/internal/location"
	"github.com/nerutalk/nerutalk/internal/media"
	"github.com/nerutalk/nerutalk/internal/push"
	"github.com/nerutalk/nerutalk/internal/push/provider"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/realtime"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/webui"
)

// Server is an assembled NeruTalk node.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	DB       *store.DB
	API      *httpapi.API
	Metrics  *httpapi.Metrics
	Redis    *redis.Client                 // nil on a single node (NERUTALK_REDIS_URL unset)
	Hub      *realtime.Hub                 // the WebSocket hub: features register commands and publish through it
	Chat     *chat.Service                 // chats and messages
	Calls    *call.Service                 // calls
	Location *location.Service             // positions, shares, nearby, history, geofences
	Push     *push.Service                 // push notifications
	closers  []func(context.Context) error // run in reverse order on Close
	stoppers []func(context.Context)       // run in reverse order on Shutdown

	// What the wiring helpers hand to the ones after them (build).
	bus      realtime.Bus // nil: the in-process bus of a single node
	media    *media.Media
	accounts *auth.Service
	ready    []httpapi.Check
	mounts   []func(*httpapi.API) // the features' Mount/Register, run by wireAPI
}

// Version is the build's version, set by the linker (-X) or left as "dev".
var Version = "dev"

// New opens the database (creating the data folder for SQLite), applies migrations and builds
// every feature. The caller must Close the server.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	db, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, DB: db, Metrics: httpapi.NewMetrics()}
	s.closers = append(s.closers, func(context.Context) error { return db.Close() })
	if err := db.Migrate(ctx); err != nil {
		s.Close(ctx)
		return nil, err
	}
	if err := s.build(ctx); err != nil {
		s.Close(ctx)
		return nil, err
	}
	return s, nil
}

// OpenStore opens the configured database: PostgreSQL at NERUTALK_DATABASE_URL, or SQLite in the
// data folder (created, with its media folder, and checked to be writable). Its errors name the
// setting to fix. It does not migrate.
func OpenStore(ctx context.Context, cfg config.Config) (*store.DB, error) {
	if cfg.DatabaseURL != "" {
		db, err := store.Open(ctx, cfg.DatabaseURL, "")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Name("NERUTALK_DATABASE_URL"), err)
		}
		return db, nil
	}
	if err := ensureWritableDir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name("NERUTALK_DATA_DIR"), err)
	}
	db, err := store.Open(ctx, "", cfg.DataDir, store.WithSQLiteWriteCache(cfg.SQLiteWriteCacheMiB))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name("NERUTALK_DATA_DIR"), err)
	}
	return db, nil
}

// build creates the features in dependency order and mounts them: one wiring call per feature.
// Adding a feature is a package, a migration, its settings and one line here (see "Adding a
// feature" in docs/ARCHITECTURE.md).
func (s *Server) build(ctx context.Context) error {
	for _, wire := range []func(context.Context) error{
		s.wireRedis,    // Redis and the bus, when several nodes share them
		s.wireMedia,    // blobs, avatars, files, GIF search
		s.wireRealtime, // the WebSocket hub (authenticates with the API's Authenticator at Mount)
		s.wireAuth,     // accounts: the node's Authenticator, revocations signalled through the hub
		s.wirePush,     // push notifications: devices, outbox worker; chat's send hook, auth's revocations
		s.wireChat,     // chats and messages: WebSocket commands, presence audience, file access
		s.wireCalls,    // calls: lifecycle, events, signaling, credentials, sweeper
		s.wireLocation, // positions, shares, nearby, history, geofences; expiry and pruning jobs
		s.wireAPI,      // the HTTP surface: every feature's routes, authenticated by the accounts
		s.wireProtocol, // the WebSocket protocol document (/asyncapi.json) and its page (/docs/websocket)
		s.wireWebUI,    // the web client at / (last: its fallback wraps the router's NotFound)
	} {
		if err := wire(ctx); err != nil {
			return err
		}
	}
	return nil
}

// wireRedis connects to NERUTALK_REDIS_URL, when set, and builds the bus between nodes on it.
func (s *Server) wireRedis(ctx context.Context) error {
	s.ready = append(s.ready, httpapi.Check{Name: "database", Check: s.DB.Ping})
	if s.cfg.RedisURL == "" {
		return nil // the hub's in-process bus serves a single node
	}
	if err := s.openRedis(ctx); err != nil {
		return err
	}
	s.ready = append(s.ready, httpapi.Check{Name: "redis", Check: func(ctx context.Context) error {
		return s.Redis.Ping(ctx).Err()
	}})
	// Redis joins this node to others; what they must share besides is up to the operator.
	if s.cfg.DatabaseURL == "" {
		s.log.Warn("NERUTALK_REDIS_URL is set but the database is the embedded SQLite: every node has a database of its own; several nodes need NERUTALK_DATABASE_URL (PostgreSQL)")
	}
	if s.cfg.S3Bucket == "" {
		s.log.Warn("NERUTALK_REDIS_URL is set but media are on local disk: each node serves only the files uploaded to it, unless the data folder is shared; several nodes need NERUTALK_S3_BUCKET")
	}
	rb, err := realtime.NewRedisBus(ctx, s.Redis, realtime.RedisBusOptions{
		Stream: s.cfg.RedisPrefix + ":bus", Logger: s.log, Registerer: s.Metrics.Registry,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Name("NERUTALK_REDIS_URL"), err)
	}
	// Closed after the chat service (closers run in reverse), which publishes until it closes.
	s.closers = append(s.closers, rb.Close)
	s.bus = rb
	return nil
}

func (s *Server) wireMedia(context.Context) error {
	o := mediaOptions(s.cfg, s.log, s.DB)
	if s.Redis != nil && o.UploadsPerMinute > 0 { // one upload budget for all the nodes
		o.UploadLimiter = s.redisLimiter("", ratelimit.PerMinute(o.UploadsPerMinute))
	}
	m, err := media.New(s.DB, o)
	if err != nil {
		return err
	}
	s.ready = append(s.ready, httpapi.Check{Name: "media", Check: m.Ping})
	s.stoppers = append(s.stoppers, m.Start())
	s.media = m
	s.mounts = append(s.mounts, m.Register)
	return nil
}

func (s *Server) wireRealtime(context.Context) error {
	o := realtime.FromConfig(s.cfg)
	o.Logger, o.Registerer, o.Bus, o.Redis, o.RedisPrefix = s.log, s.Metrics.Registry, s.bus, s.Redis, s.cfg.RedisPrefix
	if s.Redis != nil && o.ConnectLimiter != nil { // one reconnect budget for all the nodes
		o.ConnectLimiter = s.redisLimiter("", realtime.ConnectRate(s.cfg.WSConnectsPerMinute))
	}
	hub, err := realtime.New(o)
	if err != nil {
		return err
	}
	s.stoppers = append(s.stoppers, hub.Shutdown)
	s.Hub = hub
	s.mounts = append(s.mounts, hub.Mount)
	return nil
}

func (s *Server) wireAuth(ctx context.Context) error {
	secret, err := s.signingSecret(ctx)
	if err != nil {
		return err
	}
	o := auth.FromConfig(s.cfg, secret)
	o.Avatars = s.media.Avatars
	o.Signals = s.Hub                                             // a revoked session is refused by every node at once
	o.OnSessionsRevoked = push.SessionDevicesRemover(s.DB, s.log) // a signed-out device gets no more pushes
	if s.Redis != nil && s.cfg.RateLimits {                       // one limit for all the nodes, not one per node
		o.IPLimiter = s.redisLimiter("auth-ip:", ratelimit.PerMinute(auth.AttemptsPerMinute))
		o.PairLimiter = s.redisLimiter("auth-pair:", auth.PairFailures)
		o.AccountLimiter = s.redisLimiter("auth-account:", auth.AccountFailures)
		o.RefreshLimiter = s.redisLimiter("", ratelimit.PerMinute(max(s.cfg.RefreshesPerMinute, 1)))
	}
	accounts, err := auth.New(s.DB, o)
	if err != nil {
		return err
	}
	s.accounts = accounts
	s.mounts = append(s.mounts, accounts.Mount)
	return nil
}

// wireAPI builds the HTTP surface, authenticating with the accounts' Authenticator, and mounts
// every feature's routes (in wiring order).
func (s *Server) wireAPI(context.Context) error {
	s.API = httpapi.New(httpapi.Options{
		Logger:         s.log,
		Metrics:        s.Metrics,
		Version:        Version,
		CORSOrigins:    s.cfg.CORSOrigins,
		TrustedProxies: s.cfg.TrustedProxies,
		MaxBodyBytes:   s.cfg.MaxBodyBytes,
		Pprof:          s.cfg.Pprof,
		Authenticate:   s.limitRequests(s.accounts.Authenticate),
		Ready:          s.ready,
	})
	for _, mount := range s.mounts {
		mount(s.API)
	}
	return nil
}

// wireProtocol builds the AsyncAPI document of the WebSocket from what the hub and the features
// described while they were wired (Hub.Protocol), and serves it.
func (s *Server) wireProtocol(context.Context) error {
	doc, err := asyncapi.Build(asyncapi.Options{
		Title: "NeruTalk WebSocket API", Version: Version, Path: realtime.Path, Host: s.cfg.Addr,
	}, s.Hub.Protocol())
	if err != nil {
		return err
	}
	return asyncapi.Mount(s.API.Router, doc)
}

// wireWebUI serves the embedded web client (internal/webui) at /, outside the OpenAPI document.
func (s *Server) wireWebUI(context.Context) error {
	ui, err := webui.New()
	if err != nil {
		return err
	}
	ui.Mount(s.API.Router)
	return nil
}

func (s *Server) wireChat(context.Context) error {
	chats := chat.New(s.DB, s.Hub, chat.Options{
		GroupLimiter: s.perUserLimiter(ratelimit.PerMinute(max(s.cfg.GroupsPerMinute, 1))), WriteLimiter: s.perUserLimiter(s.frameRate()),
		MaxGroupMembers: s.cfg.MaxGroupMembers, LargeGroupMembers: s.cfg.LargeGroupMembers, MaxTextChars: s.cfg.WSMaxTextChars,
		CommitEvery: s.cfg.ChatCommitEvery, Logger: s.log, Registerer: s.Metrics.Registry, Files: chatFiles{s.media.Files}, Accounts: chatAccounts{},
		ActiveCalls: call.Queries{DB: s.DB},
		SendHooks:   []chat.SendHook{pushHook{s.Push}}, // message pushes are queued in the send transaction
	})
	s.closers = append(s.closers, chats.Close) // before the database closes: the writer drains into it
	chats.RegisterCommands(s.Hub)
	s.Hub.SetAudience(chats)                        // presence by interest: whose presence each connection follows
	chats.OnPresenceInterest(s.Hub.RefreshPresence) // membership changes of small chats refresh it
	chats.OnPresenceBlocked(s.Hub.Unfollow)         // a block ends the blocked user's presence subscriptions to the blocker
	s.Chat = chats
	s.mounts = append(s.mounts, chats.Mount)
	return nil
}

// limitRequests returns authenticate with each user's budget of authenticated requests on this
// node (NERUTALK_REQUESTS_PER_SECOND, bursts of four times that) counted after the token is
// accepted: every route that needs a caller authenticates through it (the Authed and Admin
// groups, file downloads and uploads, the WebSocket upgrade), so over the budget each answers 429
// rate_limited with Retry-After before its handler runs. In memory, per node: a request costs no
// Redis round trip. Unchanged with rate limits off.
func (s *Server) limitRequests(authenticate httpapi.Authenticator) httpapi.Authenticator {
	if !s.cfg.RateLimits {
		return authenticate
	}
	n := max(s.cfg.RequestsPerSecond, 1)
	l := ratelimit.NewMemory(ratelimit.Rate{Events: 4 * n, Per: 4 * time.Second})
	return func(ctx context.Context, token string) (identity.Principal, error) {
		p, err := authenticate(ctx, token)
		if err != nil || p.UserID == "" {
			return p, err
		}
		if err := ratelimit.Enforce(ctx, l, p.UserID, s.log); err != nil {
			return identity.Principal{}, err
		}
		return p, nil
	}
}

// frameRate is a WebSocket connection's frame rate (NERUTALK_WS_FRAMES_PER_SECOND, bursts of
// twice that), the rate of the REST twins of the socket's commands, per user.
func (s *Server) frameRate() ratelimit.Rate {
	return ratelimit.Rate{Events: 2 * max(s.cfg.WSFramesPerSecond, 1), Per: 2 * time.Second}
}

// perUserLimiter is a limiter of rate r per key: in Redis when configured, shared by the nodes;
// nil with rate limits off.
func (s *Server) perUserLimiter(r ratelimit.Rate) ratelimit.Limiter {
	switch {
	case !s.cfg.RateLimits:
		return nil
	case s.Redis != nil:
		return s.redisLimiter("", r)
	default:
		return ratelimit.NewMemory(r)
	}
}

// redisLimiter is a limiter of rate r shared by the nodes, its keys under the deployment's
// "<NERUTALK_REDIS_PREFIX>:ratelimit:" + sub.
func (s *Server) redisLimiter(sub string, r ratelimit.Rate) *ratelimit.Redis {
	return ratelimit.NewRedis(s.Redis, s.cfg.RedisPrefix+":ratelimit:"+sub, r)
}

// wireCalls: chat membership and system messages from chats, events and signaling through the
// hub, liveness from the hub's presence, and the sweeper.
func (s *Server) wireCalls(context.Context) error {
	prov, err := call.NewProvider(call.ProviderOptions{
		Name: s.cfg.CallsProvider, TTL: s.cfg.CallTokenTTL, PrivilegeTTL: s.cfg.CallPrivilegeTTL,
		AgoraAppID: s.cfg.AgoraAppID, AgoraAppCertificate: s.cfg.AgoraAppCertificate,
		LiveKitURL: s.cfg.LiveKitURL, LiveKitAPIKey: s.cfg.LiveKitAPIKey, LiveKitAPISecret: s.cfg.LiveKitAPISecret,
		STUNURLs: s.cfg.STUNURLs, TURNURLs: s.cfg.TURNURLs, TURNSecret: s.cfg.TURNSecret,
	})
	if err != nil {
		return fmt.Errorf("NERUTALK_CALLS_PROVIDER=%s: %w", s.cfg.CallsProvider, err)
	}
	calls := call.New(s.DB, s.Chat, s.Hub, call.Options{
		Provider: prov, RingTimeout: s.cfg.CallRingTimeout, MaxParticipants: s.cfg.CallMaxParticipants,
		DisconnectGrace: s.cfg.CallDisconnectGrace, SweepInterval: s.cfg.CallSweepInterval, Logger: s.log,
		Pusher: callPusher{s.Push}, Accounts: callAccounts{}, Presence: s.Hub, Blocks: s.Chat,
		StartLimiter: s.perUserLimiter(ratelimit.PerMinute(max(s.cfg.CallsPerMinute, 1))),
		WriteLimiter: s.perUserLimiter(s.frameRate()),
	})
	calls.RegisterCommands(s.Hub)
	s.Chat.OnMembersChanged(calls.MembersChanged) // who leaves a chat or is removed is out of its live call
	s.stoppers = append(s.stoppers, calls.Start())
	s.Calls = calls
	s.mounts = append(s.mounts, calls.Mount)
	return nil
}

// wireLocation: chat membership (and its changes) from chats, events through the hub, and the
// share-expiry and history-pruning jobs.
func (s *Server) wireLocation(context.Context) error {
	places := location.New(s.DB, s.Hub, location.Options{
		HistoryEvery: s.cfg.LocationHistoryEvery, PruneEvery: s.cfg.LocationPruneEvery,
		GeofenceMaxAccuracyM: float64(s.cfg.LocationGeofenceAccuracyM), GeofenceExitMarginM: float64(s.cfg.LocationGeofenceExitMargin),
		Logger: s.log, Chats: s.Chat, Notifier: locationPusher{s.Push, s.DB, s.log}, Blocks: s.Chat,
		WriteLimiter: s.perUserLimiter(s.frameRate()),
	})
	s.Chat.OnMembersChanged(places.MembersChanged) // viewers who leave a chat are told its shares stopped
	s.Chat.OnBlocksChanged(places.BlocksChanged)   // shares between two users stop (and chat shares restart) with a block
	places.RegisterCommands(s.Hub)
	s.stoppers = append(s.stoppers, places.Start())
	s.Location = places
	s.mounts = append(s.mounts, places.Mount)
	return nil
}

// wirePush builds push notifications (docs/push.md): the provider clients, devices, preferences,
// templates and the outbox worker. It reads chat's delivered marks (chat.Queries) and the hub's
// presence; chat, built next, queues message pushes through it (pushHook).
func (s *Server) wirePush(ctx context.Context) error {
	vapidPublic, vapidPrivate := s.cfg.PushVAPIDPublicKey, s.cfg.PushVAPIDPrivateKey
	if vapidPublic == "" { // generated by the first node, shared through the database
		var err error
		if vapidPublic, vapidPrivate, err = push.VAPIDKeys(ctx, s.DB, provider.GenerateVAPIDKeys); err != nil {
			return err
		}
	}
	sender, err := provider.New(provider.Options{
		FCMCredentialsFile: s.cfg.PushFCMCredentialsFile, FCMEndpoint: s.cfg.PushFCMEndpoint,
		APNsKeyFile: s.cfg.PushAPNsKeyFile, APNsKeyID: s.cfg.PushAPNsKeyID, APNsTeamID: s.cfg.PushAPNsTeamID,
		APNsTopic: s.cfg.PushAPNsTopic, APNsEndpoint: s.cfg.PushAPNsEndpoint,
		VAPIDPublicKey: vapidPublic, VAPIDPrivateKey: vapidPrivate, VAPIDSubject: s.cfg.PushVAPIDSubject, Logger: s.log,
	})
	if err != nil {
		return err
	}
	o := push.FromConfig(s.cfg, push.Options{
		Sender: sender, Presence: s.Hub, Chats: chat.Queries{DB: s.DB}, Accounts: pushAccounts{}, Signals: s.Hub, VAPIDPublicKey: vapidPublic, Logger: s.log,
	})
	if s.Redis != nil && s.cfg.RateLimits { // one admin send limit for all the nodes, not one per node
		o.AdminLimiter = s.redisLimiter("", ratelimit.PerMinute(max(s.cfg.PushAdminSendsPerMin, 1)))
	}
	s.Push = push.New(s.DB, o)
	s.stoppers = append(s.stoppers, s.Push.Start())
	s.mounts = append(s.mounts, s.Push.Mount)
	return nil
}

// openRedis connects to NERUTALK_REDIS_URL and checks that it answers.
func (s *Server) openRedis(ctx context.Context) error {
	opts, err := redis.ParseURL(s.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Name("NERUTALK_REDIS_URL"), err)
	}
	rdb := redis.NewClient(opts)
	s.closers = append(s.closers, func(context.Context) error { return rdb.Close() })
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("%s: redis at %s does not answer: %w", s.cfg.Name("NERUTALK_REDIS_URL"), opts.Addr, err)
	}
	s.Redis = rdb
	return nil
}

// signingSecret is the HMAC key for access tokens: the configured one, or one generated on first
// start and kept in the database, so restarts and every node sharing the database agree on it.
func (s *Server) signingSecret(ctx context.Context) ([]byte, error) {
	if s.cfg.JWTSecret != "" {
		return []byte(s.cfg.JWTSecret), nil
	}
	v, err := s.DB.Setting(ctx, "jwt_signing_secret", func() (string, error) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		return hex.EncodeToString(b[:]), nil
	})
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(v)
}

// Handler is the node's HTTP handler.
func (s *Server) Handler() http.Handler { return s.API.Router }

// Shutdown stops background work that holds client connections (WebSockets are closed with
// "going away"). It does not close the database: Close does.
func (s *Server) Shutdown(ctx context.Context) {
	for i := len(s.stoppers) - 1; i >= 0; i-- {
		s.stoppers[i](ctx)
	}
	s.stoppers = nil
}

// Close releases everything New opened, in reverse order.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i](ctx))
	}
	s.closers = nil
	return errors.Join(errs...)
}

// Run listens on the configured address and serves until ctx is cancelled, then shuts down
// gracefully: it stops accepting, closes WebSockets with "going away", waits for in-flight
// requests (at most ShutdownTimeout), drains the chat writer and the bus (at most ShutdownTimeout
// more) and closes the database. ready, if not nil, receives the
// bound address once the listener is open.
func (s *Server) Run(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.Close(context.Background())
		return fmt.Errorf("%s: listen on %s: %w", s.cfg.Name("NERUTALK_ADDR"), s.cfg.Addr, unwrapSyscall(err))
	}
	hs := s.httpServer()
	if ready != nil {
		ready(ln.Addr())
	}
	s.log.Info("nerutalk listening", "addr", ln.Addr().String(), "docs", "http://"+ln.Addr().String()+"/docs",
		"database", string(s.DB.Dialect), "version", Version)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Stop accepting and wait for in-flight requests while the WebSockets (which http.Server does
	// not track) are closed with "going away".
	done := make(chan error, 1)
	go func() { done <- hs.Shutdown(sctx) }()
	s.Shutdown(sctx)
	err = <-done
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("in-flight requests did not finish in time; closing them", "timeout", s.cfg.ShutdownTimeout)
		err = hs.Close()
	}
	// Draining our own work (the chat writer and events, the bus queue) into the database and
	// Redis gets a budget of its own: clients that would not let go of their connections may have
	// used up the first one, and they must not cost the last commits.
	cctx, ccancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer ccancel()
	if cerr := s.Close(cctx); cerr != nil {
		err = errors.Join(err, cerr)
	}
	s.log.Info("stopped")
	return err
}

// httpServer bounds how long a client may take to send its headers and body and to keep an idle
// connection. There is no WriteTimeout: WebSockets and large downloads legitimately take long.
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // large uploads stream within this
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return httpapi.WithLogger(context.Background(), s.log) },
	}
}

func unwrapSyscall(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}

// ensureWritableDir creates dir (and its media folder) and checks that files can be written in it.
func ensureWritableDir(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "media"), 0o700); err != nil {
		return fmt.Errorf("data folder %s: %w", dir, unwrapPath(err))
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data folder %s is not writable: %w", dir, unwrapPath(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
