package realtime

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/ratelimit"
	"github.com/nerutalk/nerutalk/internal/realtime/rfc6455"
)

// Authenticator checks an access token and returns the caller (the accounts package supplies it).
type Authenticator = httpapi.Authenticator

// Close codes the server sends besides the standard ones (1001 going away, 1008 too many bad
// frames, 1009 frame too large). docs/websocket.md lists them for client authors.
const (
	CloseTokenExpired   rfc6455.StatusCode = 4001 // the access token expired: refresh it and reconnect
	ClosePingTimeout    rfc6455.StatusCode = 4002 // no pong to the server's ping in time
	CloseSessionRevoked rfc6455.StatusCode = 4003 // the session was revoked (logout, password change): sign in again
	CloseTooSlow        rfc6455.StatusCode = 4008 // the send queue overflowed: reconnect and resync
	CloseRateLimited    rfc6455.StatusCode = 4029 // kept sending over the frame rate limit
)

const (
	numShards = 32
	// maxBadFrames bad frames in quick succession (one is forgiven per second) close the connection.
	maxBadFrames = 10
	// wireFramesPerFrame is how many wire frames (every frame the client sends: data, each
	// fragment, pings, pongs) a connection may send per frame of its frame rate limit; over that,
	// with bursts twice as large, it is closed with CloseRateLimited. It bounds the reader's work
	// per second whatever the framing (empty continuations and ping floods included).
	wireFramesPerFrame = 20
	// pingsPerSecond and pingBurst bound the client's pings on one connection (within the
	// wire-frame budget): each costs the node a pong write, and a keepalive needs one every few
	// seconds. Over it the connection is closed with CloseRateLimited, as for the wire frames.
	pingsPerSecond = 2
	pingBurst      = 10
	// closeTimeout bounds how long a closing connection may take to flush and hand over its close
	// frame before its socket is dropped.
	closeTimeout = 5 * time.Second
	// presenceLookupTimeout bounds one PresenceAudience call.
	presenceLookupTimeout = 5 * time.Second
)

// userFrameRate is the rate of the frames of all a user's connections on a node: twice one
// connection's (perConn a second, bursts of twice that), so a phone and a computer both busy are
// never refused for it.
func userFrameRate(perConn int) ratelimit.Rate {
	return ratelimit.Rate{Events: 4 * perConn, Per: 2 * time.Second}
}

// Options configures New. Zero limits take the defaults.
type Options struct {
	MaxFrameBytes   int64         // largest client frame (default 64 KiB)
	FramesPerSecond int           // client frames per second per connection (all of a user's together: twice that); 0: unlimited
	SendQueue       int           // frames queued per connection before it is closed as too slow (default 1024)
	PingInterval    time.Duration // server pings (default 25 s)
	PresenceGrace   time.Duration // a user stays online this long after the last connection (default 5 s)
	// PresenceSubscriptions caps the users one connection follows with presence_subscribe
	// (default 500).
	PresenceSubscriptions int
	// MaxConnectionsPerUser caps one user's open connections (default 20); an upgrade over it is
	// refused with 429 too_many_connections. With Redis the count covers every node sharing it
	// (connLeases); without, it is per node.
	MaxConnectionsPerUser int
	// ConnectLimiter, when set, counts one user's upgrades (NERUTALK_WS_CONNECTS_PER_MINUTE,
	// ConnectRate); one over it is refused with 429 rate_limited and Retry-After before upgrading,
	// which bounds reconnect churn (and with FramesPerSecond what one user can send per second).
	ConnectLimiter ratelimit.Limiter
	// Origins may open the socket from a browser ("*": any); none allows same-origin pages only.
	Origins []string
	// Authenticate checks the access tokens of the upgrades; nil uses the API's (Mount).
	Authenticate Authenticator
	Logger       *slog.Logger
	// Registerer receives the hub's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Audience says whose presence each connection follows; nil sends no presence events (see
	// SetAudience).
	Audience PresenceAudience
	// Bus carries publications between nodes; nil is the in-process LocalBus.
	Bus Bus
	// Redis, when not nil, keeps presence for every node sharing it, under the keys
	// RedisPrefix+":presence:..."; nil keeps it in this process.
	Redis       *redis.Client
	RedisPrefix string
}

// FromConfig returns the Options the configuration asks for (the NERUTALK_WS_* limits, the
// presence grace period, the CORS origins); the caller sets the dependencies.
func FromConfig(cfg config.Config) Options {
	o := Options{
		MaxFrameBytes: cfg.WSMaxFrameBytes, SendQueue: cfg.WSSendQueue, PingInterval: cfg.WSPingInterval,
		PresenceGrace: cfg.PresenceGrace, Origins: cfg.CORSOrigins, PresenceSubscriptions: cfg.PresenceSubscriptions,
		MaxConnectionsPerUser: cfg.WSMaxConnectionsPerUser,
	}
	if cfg.RateLimits {
		o.FramesPerSecond = cfg.WSFramesPerSecond
		o.ConnectLimiter = ratelimit.NewMemory(ConnectRate(cfg.WSConnectsPerMinute))
	}
	return o
}

// ConnectRate is the rate of NERUTALK_WS_CONNECTS_PER_MINUTE=perMinute: perMinute upgrades a
// minute, in bursts of a third of that (at least 1).
func ConnectRate(perMinute int) ratelimit.Rate {
	perMinute = max(perMinute, 1)
	burst := max(perMinute/3, 1)
	return ratelimit.Rate{Events: burst, Per: time.Minute * time.Duration(burst) / time.Duration(perMinute)}
}

// Hub owns this node's WebSocket connections: it authenticates and upgrades them, dispatches
// their frames to the registered commands and delivers published events. See doc.go for the
// concurrency model.
type Hub struct {
	log          *slog.Logger
	auth         Authenticator
	bus          Bus
	unsubscribe  func()
	audience     atomic.Pointer[audienceBox]
	handlers     map[string]CommandFunc
	protoMu      sync.Mutex
	proto        Protocol // described commands and events (Describe)
	signalMu     sync.RWMutex
	signals      map[string]SignalFunc
	onDisconnect hooks[DisconnectFunc]
	onPresence   hooks[PresenceFunc]
	serving      atomic.Bool
	closed       atomic.Bool
	// unfollowGen is raised by Unfollow before it drops anything: a presence_subscribe whose
	// lookup ran across it looks again (cmdSubscribe).
	unfollowGen  atomic.Uint64
	maxFrame     int64
	framesPerSec int // 0: unlimited
	queueSize    int
	pingInterval time.Duration
	closeTimeout time.Duration
	upgrade      rfc6455.Options
	stopPings    chan struct{}
	now          func() time.Time

	seed       shardSeed
	users      [numShards]userShard
	topics     [numShards]topicShard
	interest   [numShards]interestShard
	announceMu [numShards]sync.Mutex
	presence   presenceTracker
	metrics    *metrics

	maxSubscriptions int               // explicit presence subscriptions per connection
	maxConnsPerUser  int               // connections (open or being upgraded) per user on this node
	leases           *connLeases       // with Redis: the same cap across the nodes; nil otherwise
	connects         ratelimit.Limiter // upgrades per user; nil: unlimited
	// userFrames counts the frames of all a user's connections on this node, at twice one
	// connection's rate (bursts of twice that): without it a user's 20 connections could send 20
	// times one connection's commands, each of which may reach every member of a big group.
	// nil when rate limits are off.
	userFrames ratelimit.Limiter
	countMu    sync.Mutex
	counts     map[string]countEntry // presence_count answers by chat id
}

type audienceBox struct{ PresenceAudience }

// userShard holds the connections of the users whose id hashes to it.
type userShard struct {
	mu    sync.RWMutex
	conns map[string][]*conn
	// slots counts each user's connections from the moment their upgrade is accepted
	// (reserveSlot) until they are gone (releaseSlot): the cap holds under concurrent upgrades.
	slots map[string]int
}

// appendConns appends the shard's connections to dst.
func (s *userShard) appendConns(dst []*conn) []*conn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, list := range s.conns {
		dst = append(dst, list...)
	}
	return dst
}

// topicShard holds the members of the topics whose name hashes to it.
type topicShard struct {
	mu     sync.RWMutex
	topics map[string]map[*conn]struct{}
}

// shardSeed picks a shard for a key.
type shardSeed struct{ seed maphash.Seed }

func newShardSeed() shardSeed { return shardSeed{seed: maphash.MakeSeed()} }

func (s shardSeed) index(key string) int { return int(maphash.String(s.seed, key) % numShards) }

// New builds a hub. It fails only when its metrics cannot be registered.
func New(o Options) (*Hub, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Bus == nil {
		o.Bus = NewLocalBus()
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	h := &Hub{
		log:          o.Logger,
		auth:         o.Authenticate,
		bus:          o.Bus,
		handlers:     map[string]CommandFunc{},
		signals:      map[string]SignalFunc{},
		maxFrame:     o.MaxFrameBytes,
		queueSize:    o.SendQueue,
		pingInterval: o.PingInterval,
		closeTimeout: closeTimeout,
		now:          time.Now,
		seed:         newShardSeed(),
		metrics:      m,
		counts:       map[string]countEntry{},

		maxSubscriptions: o.PresenceSubscriptions,
		maxConnsPerUser:  o.MaxConnectionsPerUser,
		connects:         o.ConnectLimiter,
	}
	if h.maxConnsPerUser <= 0 {
		h.maxConnsPerUser = 20
	}
	if h.maxSubscriptions <= 0 {
		h.maxSubscriptions = 500
	}
	if h.maxFrame <= 0 {
		h.maxFrame = 64 << 10
	}
	if h.queueSize <= 0 {
		h.queueSize = 1024
	}
	if h.pingInterval <= 0 {
		h.pingInterval = 25 * time.Second
	}
	if o.FramesPerSecond > 0 {
		h.framesPerSec = o.FramesPerSecond
		h.userFrames = ratelimit.NewMemory(userFrameRate(o.FramesPerSecond))
	}
	grace := o.PresenceGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	h.upgrade = upgradeOptions(o.Origins)
	for i := range h.users {
		h.users[i].conns = map[string][]*conn{}
		h.users[i].slots = map[string]int{}
		h.topics[i].topics = map[string]map[*conn]struct{}{}
		h.interest[i].followers = map[string]map[*conn]struct{}{}
	}
	h.registerPresenceCommands()
	if o.Redis != nil {
		h.presence = newRedisPresence(o.Redis, o.RedisPrefix, grace, h.log, h.statusChanged)
		h.leases = newConnLeases(o.Redis, o.RedisPrefix, leaseTTL, leaseRefresh, h.log)
	} else {
		h.presence = newMemoryPresence(grace, h.statusChanged)
	}
	h.SetAudience(o.Audience)
	h.unsubscribe = h.bus.Subscribe(h.deliver)
	h.stopPings = make(chan struct{})
	go h.pingLoop()
	return h, nil
}

// upgradeOptions turns the CORS origins into the upgrade's origin check. The socket is
// authenticated with a bearer token, never a cookie, so a cross-origin page gains nothing it
// could not do with the token itself; the check only keeps unlisted sites out.
func upgradeOptions(origins []string) rfc6455.Options {
	var o rfc6455.Options
	for _, orig := range origins {
		if orig == "*" {
			return rfc6455.Options{AnyOrigin: true}
		}
		o.OriginPatterns = append(o.OriginPatterns, strings.TrimRight(orig, "/"))
	}
	return o
}

// pingLoop pings every connection once per ping interval, one user shard at a time spread over
// the interval (so that the writers the pings start do not all run at once); a connection that
// has not answered the previous ping is closed with 4002.
func (h *Hub) pingLoop() {
	step := max(h.pingInterval/numShards, time.Millisecond)
	t := time.NewTicker(step)
	defer t.Stop()
	var conns []*conn
	for shard := 0; ; shard = (shard + 1) % numShards {
		select {
		case <-t.C:
		case <-h.stopPings:
			return
		}
		conns = h.users[shard].appendConns(conns)
		for _, c := range conns {
			c.pingTick()
		}
		clear(conns)
		conns = conns[:0]
	}
}

// Handle registers the command for client frames of type typ. Call it while wiring, before the
// hub serves its first connection; registering twice, after serving, or the built-in "ping" is a
// programming error and panics.
func (h *Hub) Handle(typ string, fn CommandFunc) {
	switch {
	case h.serving.Load():
		panic("realtime: Handle(" + typ + ") after the hub started serving")
	case !validType(typ) || fn == nil:
		panic(fmt.Sprintf("realtime: Handle(%q): invalid type or nil handler", typ))
	case typ == "ping" || typ == CmdPresenceSubscribe || typ == CmdPresenceUnsubscribe || typ == CmdPresenceCount:
		panic("realtime: " + typ + " is built in")
	case h.handlers[typ] != nil:
		panic("realtime: Handle(" + typ + ") registered twice")
	}
	h.handlers[typ] = fn
}

// SignalFunc handles a signal published by PublishSignal on any node. It runs on the bus's
// delivery path and must not block. It is an alias, so that a feature can declare the interface
// it needs with a plain func type, without importing this package.
type SignalFunc = func(ctx context.Context, payload []byte)

// OnSignal registers fn for the signal name. Registering a name twice is a programming error and
// panics.
func (h *Hub) OnSignal(name string, fn SignalFunc) {
	h.signalMu.Lock()
	defer h.signalMu.Unlock()
	if h.signals[name] != nil || fn == nil {
		panic("realtime: OnSignal(" + name + "): registered twice, or a nil handler")
	}
	h.signals[name] = fn
}

// PublishSignal runs the handler of the signal name on every node, this one first: on this node
// it has run when PublishSignal returns. Nodes without a handler for name ignore it.
func (h *Hub) PublishSignal(ctx context.Context, name string, payload []byte) {
	h.publish(ctx, Message{Kind: KindSignal, Topic: name, Frame: payload})
}

// CloseSessions closes, on this node, userID's connections opened with one of the sessions, with
// 4003 "session revoked" after what is queued for them. Auth calls it on every node when sessions
// are revoked, so that a logged-out device stops receiving at once.
func (h *Hub) CloseSessions(userID string, sessionIDs []string) {
	s := &h.users[h.seed.index(userID)]
	var doomed []*conn
	s.mu.RLock()
	for _, c := range s.conns[userID] {
		if slices.Contains(sessionIDs, c.session) {
			doomed = append(doomed, c)
		}
	}
	s.mu.RUnlock()
	for _, c := range doomed {
		c.close(causeRevoked)
	}
}

// DisconnectFunc is called after a connection closed; see OnDisconnect.
type DisconnectFunc = func(ctx context.Context, c Client)

// OnDisconnect registers fn to run after each connection of this node has closed, for any cause
// (the client left, its token expired, its session was revoked, it was too slow, the node is
// shutting down), once the connection is unregistered: it receives no more events and
// Client.Join/Leave do nothing. fn runs on the connection's own goroutine, with a context that
// carries the connection's caller (identity.From) and logger and is not cancelled; it must be
// quick (hand slow work to a goroutine of the feature's). Several features may register; they
// run in registration order. Only the node that held the connection calls it: to learn that a
// user has no connection left on any node, use OnPresence.
func (h *Hub) OnDisconnect(fn DisconnectFunc) {
	if fn == nil {
		panic("realtime: OnDisconnect(nil)")
	}
	h.onDisconnect.add(fn)
}

// PresenceFunc is called when a user's presence changes; see OnPresence.
type PresenceFunc = func(ctx context.Context, userID string, online bool)

// OnPresence registers fn to learn when a user comes online (their first connection on any
// node) or goes offline (the presence grace period after their last connection anywhere ended):
// the same changes the user's contacts receive as "presence" events. Each change runs fn on ONE
// node, the one that saw it (with Redis, the node whose janitor ended the grace period), so a
// feature that must act on every node publishes a signal from there. fn must be quick; it must
// not assume an exact alternation (after a Redis outage a resync may report a user online again),
// and online is the status when fn runs.
func (h *Hub) OnPresence(fn PresenceFunc) {
	if fn == nil {
		panic("realtime: OnPresence(nil)")
	}
	h.onPresence.add(fn)
}

// hooks holds the callbacks that features register (OnDisconnect, OnPresence).
type hooks[F any] struct {
	mu  sync.RWMutex
	fns []F
}

func (l *hooks[F]) add(fn F) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fns = append(l.fns, fn)
}

// list returns the callbacks; appends after it do not change the returned slice.
func (l *hooks[F]) list() []F {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.fns[:len(l.fns):len(l.fns)]
}

// disconnected runs the OnDisconnect hooks for c.
func (h *Hub) disconnected(ctx context.Context, c *conn) {
	for _, fn := range h.onDisconnect.list() {
		fn(ctx, c)
	}
}

// presenceChanged runs the OnPresence hooks.
func (h *Hub) presenceChanged(ctx context.Context, userID string, online bool) {
	for _, fn := range h.onPresence.list() {
		fn(ctx, userID, online)
	}
}

// SetAudience sets whose presence the connections follow, for wiring where the audience is built after the hub.
func (h *Hub) SetAudience(a PresenceAudience) {
	h.audience.Store(&audienceBox{a})
}

// PublishUsers delivers {"type":typ,"data":data} to every open connection of each user, on every
// node. The frame is encoded once and shared; delivery never blocks (a connection whose queue is
// full is closed as too slow). Frames published by one goroutine reach each connection in order.
func (h *Hub) PublishUsers(ctx context.Context, userIDs []string, typ string, data any) {
	if len(userIDs) == 0 {
		return
	}
	frame, err := encodeFrame(typ, "", data)
	if err != nil {
		h.log.ErrorContext(ctx, "realtime: publish", "type", typ, "err", err)
		return
	}
	h.publish(ctx, Message{Kind: KindUsers, Users: userIDs, Frame: frame})
}

// PublishSession delivers {"type":typ,"data":data} to the connections of userID opened with the
// auth session sessionID (Client.SessionID: one signed-in device), on every node, like
// PublishUsers.
func (h *Hub) PublishSession(ctx context.Context, userID, sessionID, typ string, data any) {
	if userID == "" || sessionID == "" {
		return
	}
	frame, err := encodeFrame(typ, "", data)
	if err != nil {
		h.log.ErrorContext(ctx, "realtime: publish", "type", typ, "err", err)
		return
	}
	h.publish(ctx, Message{Kind: KindSession, Users: []string{userID}, Topic: sessionID, Frame: frame})
}

// PublishTopic delivers {"type":typ,"data":data} to the connections that joined topic
// (Client.Join), on every node, except the connections of exceptUserID (none when empty).
func (h *Hub) PublishTopic(ctx context.Context, topic, typ string, data any, exceptUserID string) {
	frame, err := encodeFrame(typ, "", data)
	if err != nil {
		h.log.ErrorContext(ctx, "realtime: publish", "type", typ, "topic", topic, "err", err)
		return
	}
	h.publish(ctx, Message{Kind: KindTopic, Topic: topic, ExceptUser: exceptUserID, Frame: frame})
}

// LeaveTopicUser makes every connection of userID, on every node, leave topic at once (a member
// removed from a chat stops receiving its ephemeral events).
func (h *Hub) LeaveTopicUser(ctx context.Context, topic, userID string) {
	h.publish(ctx, Message{Kind: KindLeaveTopic, Topic: topic, Users: []string{userID}})
}

// Online reports whether userID is online: a connection is open, or the last one closed less than
// the presence grace period ago (what the user's contacts have been told).
func (h *Hub) Online(userID string) bool {
	online, _ := h.presence.Status(userID)
	return online
}

func (h *Hub) publish(ctx context.Context, m Message) {
	if err := h.bus.Publish(ctx, m); err != nil {
		h.log.ErrorContext(ctx, "realtime: bus publish failed", "kind", m.Kind, "err", err)
	}
}

// deliver hands a bus message to this node's connections. It never blocks on a connection. A
// WakeBatch in ctx (the publisher's, on the in-process bus) defers the writers' start.
func (h *Hub) deliver(ctx context.Context, m Message) {
	wb := wakeBatchFrom(ctx)
	switch m.Kind {
	case KindUsers:
		for _, u := range m.Users {
			s := &h.users[h.seed.index(u)]
			s.mu.RLock()
			for _, c := range s.conns[u] {
				c.enqueue(m.Frame, wb)
			}
			s.mu.RUnlock()
		}
	case KindTopic:
		s := &h.topics[h.seed.index(m.Topic)]
		s.mu.RLock()
		for c := range s.topics[m.Topic] {
			if m.ExceptUser == "" || c.user != m.ExceptUser {
				c.enqueue(m.Frame, wb)
			}
		}
		s.mu.RUnlock()
	case KindSession:
		if len(m.Users) != 1 {
			return
		}
		s := &h.users[h.seed.index(m.Users[0])]
		s.mu.RLock()
		for _, c := range s.conns[m.Users[0]] {
			if c.session == m.Topic {
				c.enqueue(m.Frame, wb)
			}
		}
		s.mu.RUnlock()
	case KindPresence:
		h.deliverPresence(m.Topic, m.Frame, wb)
	case KindLeaveTopic:
		for _, u := range m.Users {
			h.leaveTopicLocal(m.Topic, u)
		}
	case KindSignal:
		h.signalMu.RLock()
		fn := h.signals[m.Topic]
		h.signalMu.RUnlock()
		if fn != nil {
			fn(ctx, m.Frame)
		}
	}
}

// reserveSlot takes one of userID's connection slots on this node and, with Redis, a lease in the
// count shared by the nodes; false when they are all taken. The lease ("" without Redis) goes
// back to releaseSlot.
func (h *Hub) reserveSlot(ctx context.Context, userID string) (lease string, ok bool) {
	s := &h.users[h.seed.index(userID)]
	s.mu.Lock()
	if s.slots[userID] >= h.maxConnsPerUser {
		s.mu.Unlock()
		return "", false
	}
	s.slots[userID]++
	s.mu.Unlock()
	if h.leases != nil {
		if lease, ok = h.leases.acquire(ctx, userID, h.maxConnsPerUser); !ok {
			h.releaseSlot(userID, "")
			return "", false
		}
	}
	return lease, true
}

// releaseSlot gives back a slot taken by reserveSlot, and its lease.
func (h *Hub) releaseSlot(userID, lease string) {
	if h.leases != nil {
		h.leases.release(userID, lease)
	}
	s := &h.users[h.seed.index(userID)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.slots[userID] - 1; n > 0 {
		s.slots[userID] = n
	} else {
		delete(s.slots, userID)
	}
}

// register adds c to its user's shard; false once the hub is shut down.
func (h *Hub) register(c *conn) bool {
	s := &h.users[h.seed.index(c.user)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.closed.Load() {
		return false
	}
	s.conns[c.user] = append(s.conns[c.user], c)
	return true
}

// unregister removes c from its user's shard and from every topic it joined.
func (h *Hub) unregister(c *conn) {
	c.mu.Lock()
	c.gone = true
	topics := c.topics
	c.topics = nil
	follows := c.follows
	c.follows = nil
	c.explicit = 0
	c.mu.Unlock()
	for t := range topics {
		h.removeFromTopic(t, c)
	}
	for u := range follows {
		h.dropFollower(u, c)
	}
	s := &h.users[h.seed.index(c.user)]
	s.mu.Lock()
	list := s.conns[c.user]
	for i, x := range list {
		if x == c {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = nil
			list = list[:last]
			break
		}
	}
	if len(list) == 0 {
		delete(s.conns, c.user)
	} else {
		s.conns[c.user] = list
	}
	s.mu.Unlock()
}

// join adds c to topic. Lock order: conn.mu, then the topic shard.
func (h *Hub) join(c *conn, topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return
	}
	if _, ok := c.topics[topic]; ok {
		return
	}
	if c.topics == nil {
		c.topics = map[string]struct{}{}
	}
	c.topics[topic] = struct{}{}
	s := &h.topics[h.seed.index(topic)]
	s.mu.Lock()
	set := s.topics[topic]
	if set == nil {
		set = map[*conn]struct{}{}
		s.topics[topic] = set
	}
	set[c] = struct{}{}
	s.mu.Unlock()
}

func (h *Hub) leave(c *conn, topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[topic]; !ok {
		return
	}
	delete(c.topics, topic)
	h.removeFromTopic(topic, c)
}

func (h *Hub) removeFromTopic(topic string, c *conn) {
	s := &h.topics[h.seed.index(topic)]
	s.mu.Lock()
	if set := s.topics[topic]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(s.topics, topic)
		}
	}
	s.mu.Unlock()
}

// leaveTopicLocal removes every local connection of userID from topic under one lock, so no event
// published to the topic afterwards reaches any of them; then it forgets the topic in each
// connection (unless the connection has joined again meanwhile).
func (h *Hub) leaveTopicLocal(topic, userID string) {
	s := &h.topics[h.seed.index(topic)]
	var left []*conn
	s.mu.Lock()
	if set := s.topics[topic]; set != nil {
		for c := range set {
			if c.user == userID {
				delete(set, c)
				left = append(left, c)
			}
		}
		if len(set) == 0 {
			delete(s.topics, topic)
		}
	}
	s.mu.Unlock()
	for _, c := range left {
		c.mu.Lock()
		s.mu.RLock()
		_, rejoined := s.topics[topic][c]
		s.mu.RUnlock()
		if !rejoined {
			delete(c.topics, topic)
		}
		c.mu.Unlock()
	}
}

// Shutdown closes every connection with 1001 "going away" after flushing what is queued for it,
// and waits for them to end; when ctx ends first, the remaining sockets are dropped. The hub
// accepts no connection afterwards.
func (h *Hub) Shutdown(ctx context.Context) {
	if !h.closed.CompareAndSwap(false, true) {
		return
	}
	h.unsubscribe()
	h.presence.stop()
	if h.leases != nil {
		h.leases.close()
	}
	close(h.stopPings)
	var all []*conn
	for i := range h.users {
		all = h.users[i].appendConns(all)
	}
	for _, c := range all {
		c.close(causeGoingAway)
	}
	for i, c := range all {
		select {
		case <-c.finished:
		case <-ctx.Done():
			for _, rest := range all[i:] {
				_ = rest.ws.Close() // its goroutine then cleans up
			}
			return
		}
	}
}
