package realtime

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// connLeases counts a user's WebSocket connections across the nodes sharing a Redis server, so
// that NERUTALK_WS_MAX_CONNECTIONS_PER_USER holds for the deployment, not per node.
//
// Each connection holds a lease: a member of the sorted set prefix+":wsconns:"+user whose score
// is the lease's expiry (milliseconds on the Redis server's clock). Taking a lease drops the
// user's expired ones, counts the rest and adds one only below the cap, in one script, so
// concurrent upgrades on several nodes cannot overshoot. The node that holds a connection
// refreshes its lease every leaseRefresh and removes it when the connection ends; a node that
// dies stops refreshing, and its leases expire after leaseTTL (its users may then open that many
// connections again). A Redis failure is logged and the upgrade allowed (fail open): the per-node
// count still applies.
type connLeases struct {
	rdb     *redis.Client
	prefix  string
	ttl     time.Duration
	refresh time.Duration
	log     *slog.Logger

	mu   sync.Mutex
	held map[string]string // lease id -> user id, the leases of this node's connections
	stop chan struct{}
	done chan struct{}
}

// The lease lifetime and how often a live connection renews it.
const (
	leaseTTL     = 30 * time.Second
	leaseRefresh = 10 * time.Second
)

func newConnLeases(rdb *redis.Client, prefix string, ttl, refresh time.Duration, log *slog.Logger) *connLeases {
	l := &connLeases{rdb: rdb, prefix: prefix + ":wsconns:", ttl: ttl, refresh: refresh, log: log,
		held: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l
}

// acquireLease: KEYS[1] the user's set; ARGV[1] the cap, ARGV[2] the lease id, ARGV[3] the TTL in
// ms. Returns 1 when the lease was taken, 0 when the user holds the cap already.
var acquireLease = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
`)

// renewLease: KEYS[1] the user's set; ARGV[1] the lease id, ARGV[2] the TTL in ms. A lease that
// expired meanwhile is not brought back by XX: the connection then counts again only once the
// set has room (it stays open; the cap is enforced on upgrades).
var renewLease = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
`)

// acquire takes a lease for one more connection of user, below max. ok is false only when the
// user holds max leases already; lease is "" when Redis failed (nothing to release).
func (l *connLeases) acquire(ctx context.Context, user string, max int) (lease string, ok bool) {
	id := uuid.Must(uuid.NewV7()).String()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	n, err := acquireLease.Run(ctx, l.rdb, []string{l.prefix + user}, max, id, l.ttl.Milliseconds()).Int()
	if err != nil {
		l.log.WarnContext(ctx, "realtime: connection lease failed; counting this node only", "err", err)
		return "", true
	}
	if n == 0 {
		return "", false
	}
	l.mu.Lock()
	l.held[id] = user
	l.mu.Unlock()
	return id, true
}

// release gives back a lease taken by acquire ("" does nothing).
func (l *connLeases) release(user, lease string) {
	if lease == "" {
		return
	}
	l.mu.Lock()
	delete(l.held, lease)
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.rdb.ZRem(ctx, l.prefix+user, lease).Err(); err != nil {
		l.log.WarnContext(ctx, "realtime: releasing a connection lease failed; it expires by itself", "err", err)
	}
}

// loop renews this node's leases until close.
func (l *connLeases) loop() {
	defer close(l.done)
	t := time.NewTicker(l.refresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.renew()
		}
	}
}

// renew refreshes every lease this node holds, in one pipeline.
func (l *connLeases) renew() {
	l.mu.Lock()
	leases := make(map[string]string, len(l.held))
	for id, u := range l.held {
		leases[id] = u
	}
	l.mu.Unlock()
	if len(leases) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.refresh)
	defer cancel()
	pipe := l.rdb.Pipeline()
	for id, u := range leases {
		// Eval, not Run: in a pipeline a NOSCRIPT error would come too late for Run to retry.
		renewLease.Eval(ctx, pipe, []string{l.prefix + u}, id, l.ttl.Milliseconds())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		l.log.WarnContext(ctx, "realtime: renewing connection leases failed", "leases", len(leases), "err", err)
	}
}

// close stops the renewals (the leases of the connections still open expire by themselves, or
// are released as the connections close).
func (l *connLeases) close() {
	close(l.stop)
	<-l.done
}
