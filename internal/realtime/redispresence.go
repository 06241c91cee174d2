package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisPresence is the presenceTracker of several nodes: the connection counts live in Redis, so
// a user is online while any node has a connection of theirs.
//
// Keys, under the deployment's prefix P:
//
//	P:presence:<user>       hash: one field per node with the user's connection count there,
//	                        "_online" while the user is online (grace period included), "_seen"
//	                        when the last connection closed (milliseconds)
//	P:presence:pending      sorted set: users whose last connection closed, by the end of their
//	                        grace period
//	P:presence:node:<node>  set: the users with a connection on that node
//	P:presence:alive:<node> string with a TTL the node refreshes: the node is running
//	P:presence:nodes        set: the nodes that ever held connections
//
// Every change is one Lua script, so nodes never see each other half-way. Each node runs a
// janitor that takes the users whose grace period ended (each user is taken by one node only, the
// script removes them from the pending set) and tells their contacts that they went offline; it
// also releases the connections of nodes that stopped refreshing their alive key (crashed),
// whose users would otherwise stay online for ever.
//
// The node also counts its connections itself (shards): Redis holds a copy. When the copy may be
// wrong — Redis lost its data, the other nodes took this one for dead and released its
// connections, or an update failed — the janitor rewrites this node's part from its own counts
// (resync): users connected here come back online, and users Redis still counts here but who have
// no connection left start their grace period.
//
// This is for one Redis server (or a primary): the scripts touch keys they compute, which Redis
// Cluster does not allow.
type redisPresence struct {
	rdb    *redis.Client
	prefix string // P:presence:
	node   string
	grace  time.Duration
	now    func() time.Time
	log    *slog.Logger
	// statusChanged tells the hub that the janitor (or a resync) changed a user's status.
	statusChanged func(userID string)

	seed   shardSeed
	shards [numShards]countShard
	dirty  atomic.Bool  // an update failed: the next heartbeat resyncs
	beats  atomic.Int64 // heartbeats so far

	stopOnce sync.Once
	stopped  chan struct{}
	done     chan struct{}
}

// countShard holds this node's connection counts of the users whose id hashes to it. Its mutex is
// held across the Redis update, so the copy in Redis changes in the order of the local counts.
type countShard struct {
	mu     sync.Mutex
	counts map[string]int
}

// Timing of the janitor: how often it looks for ended grace periods, how often a node says it is
// alive, and how long a node may stay silent before the others release its connections.
const (
	presenceTick      = 500 * time.Millisecond
	presenceHeartbeat = 5 * time.Second
	presenceNodeTTL   = 15 * time.Second
	presenceOpTimeout = 2 * time.Second
)

func newRedisPresence(rdb *redis.Client, prefix string, grace time.Duration, log *slog.Logger, statusChanged func(string)) *redisPresence {
	var id [8]byte
	_, _ = rand.Read(id[:])
	p := &redisPresence{
		rdb: rdb, prefix: prefix + ":presence:", node: hex.EncodeToString(id[:]), grace: grace,
		now: time.Now, log: log, statusChanged: statusChanged, seed: newShardSeed(),
		stopped: make(chan struct{}), done: make(chan struct{}),
	}
	for i := range p.shards {
		p.shards[i].counts = map[string]int{}
	}
	p.heartbeat()
	go p.janitor()
	return p
}

func (p *redisPresence) shard(userID string) *countShard { return &p.shards[p.seed.index(userID)] }

func (p *redisPresence) userKey(userID string) string { return p.prefix + userID }
func (p *redisPresence) pendingKey() string           { return p.prefix + "pending" }
func (p *redisPresence) nodeUsersKey(node string) string {
	return p.prefix + "node:" + node
}
func (p *redisPresence) aliveKey(node string) string { return p.prefix + "alive:" + node }
func (p *redisPresence) nodesKey() string            { return p.prefix + "nodes" }

// luaTotal sums a presence hash's node counts (the fields not starting with "_").
const luaTotal = `
local function total(k)
  local all = redis.call('HGETALL', k)
  local n = 0
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 1) ~= '_' then n = n + tonumber(all[i + 1]) end
  end
  return n
end
`

var (
	// KEYS: user hash, pending, node users. ARGV: node, user. Returns 1 when the user came online.
	presenceConnect = redis.NewScript(`
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
if redis.call('HEXISTS', KEYS[1], '_online') == 1 then return 0 end
redis.call('HSET', KEYS[1], '_online', '1')
return 1`)

	// KEYS: user hash, pending, node users. ARGV: node, user, now, end of grace (ms).
	presenceDisconnect = redis.NewScript(luaTotal + `
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if n <= 0 then return 0 end
if n == 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[2])
else
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
end
if total(KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], '_seen', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
end
return 0`)

	// KEYS: pending. ARGV: now (ms), limit, user key prefix. Returns the users who went offline.
	presenceReapDue = redis.NewScript(luaTotal + `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local off = {}
for _, u in ipairs(due) do
  redis.call('ZREM', KEYS[1], u)
  local k = ARGV[3] .. u
  if total(k) == 0 and redis.call('HDEL', k, '_online') == 1 then table.insert(off, u) end
end
return off`)

	// KEYS: user hash, pending, node users. ARGV: node, user, count. Sets this node's count of the
	// user. Returns 1 when the user came (back) online.
	presenceResync = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
if redis.call('HEXISTS', KEYS[1], '_online') == 1 then return 0 end
redis.call('HSET', KEYS[1], '_online', '1')
return 1`)

	// KEYS: user hash, pending, node users. ARGV: node, user, now, end of grace (ms). Drops this
	// node's count of a user it has no connection of; the last count gone starts the grace period.
	presenceRelease = redis.NewScript(luaTotal + `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
if total(KEYS[1]) == 0 and redis.call('HEXISTS', KEYS[1], '_online') == 1 then
  redis.call('HSET', KEYS[1], '_seen', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
end
return 0`)

	// KEYS: dead node's users, nodes, pending. ARGV: dead node, now (ms), user key prefix.
	// Returns the users who went offline.
	presenceReapNode = redis.NewScript(luaTotal + `
local users = redis.call('SMEMBERS', KEYS[1])
local off = {}
for _, u in ipairs(users) do
  local k = ARGV[3] .. u
  redis.call('HDEL', k, ARGV[1])
  if total(k) == 0 then
    redis.call('ZREM', KEYS[3], u)
    if redis.call('HDEL', k, '_online') == 1 then
      redis.call('HSET', k, '_seen', ARGV[2])
      table.insert(off, u)
    end
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return off`)
)

func (p *redisPresence) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), presenceOpTimeout)
}

func (p *redisPresence) userKeys(userID string) []string {
	return []string{p.userKey(userID), p.pendingKey(), p.nodeUsersKey(p.node)}
}

// Connected counts a connection. When Redis fails the user is not announced (false) and the next
// heartbeat resyncs.
func (p *redisPresence) Connected(userID string) bool {
	s := p.shard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[userID]++
	ctx, cancel := p.opContext()
	defer cancel()
	n, err := presenceConnect.Run(ctx, p.rdb, p.userKeys(userID), p.node, userID).Int()
	if err != nil {
		p.dirty.Store(true)
		p.log.Warn("realtime: presence: connect", "user_id", userID, "err", err)
		return false
	}
	return n == 1
}

// Disconnected uncounts a connection; after the last one, everywhere, the grace period starts.
func (p *redisPresence) Disconnected(userID string) {
	s := p.shard(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts[userID] <= 0 {
		return
	}
	if s.counts[userID]--; s.counts[userID] == 0 {
		delete(s.counts, userID)
	}
	ctx, cancel := p.opContext()
	defer cancel()
	now := p.now()
	err := presenceDisconnect.Run(ctx, p.rdb, p.userKeys(userID),
		p.node, userID, now.UnixMilli(), now.Add(p.grace).UnixMilli()).Err()
	if err != nil {
		p.dirty.Store(true)
		p.log.Warn("realtime: presence: disconnect", "user_id", userID, "err", err)
	}
}

// resync rewrites this node's part of the presence state in Redis from its own counts. It holds
// every shard's lock, in order, so no connect or disconnect interleaves; the updates go in
// pipelines of resyncBatch scripts.
func (p *redisPresence) resync() {
	for i := range p.shards {
		p.shards[i].mu.Lock()
		defer p.shards[i].mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	online, err := p.rewrite(ctx)
	if err != nil {
		p.dirty.Store(true)
		p.log.Warn("realtime: presence: resync", "err", err)
	} else {
		p.log.Info("realtime: presence: rewrote this node's connections in Redis", "back_online", len(online))
	}
	go p.report(online) // announcing takes the hub's locks: not under the shard locks
}

const resyncBatch = 500

// rewrite releases the users Redis counts on this node who have no connection here, sets the
// count of every user who has, and returns the users who came back online. The caller holds
// every shard lock.
func (p *redisPresence) rewrite(ctx context.Context) ([]string, error) {
	counted, err := p.rdb.SMembers(ctx, p.nodeUsersKey(p.node)).Result()
	if err != nil {
		return nil, err
	}
	for _, sc := range []*redis.Script{presenceRelease, presenceResync} {
		if err := sc.Load(ctx, p.rdb).Err(); err != nil {
			return nil, err
		}
	}
	now := p.now()
	type item struct {
		user  string
		count int // 0: release
	}
	var items []item
	for _, u := range counted {
		if p.shard(u).counts[u] == 0 {
			items = append(items, item{user: u})
		}
	}
	for i := range p.shards {
		for u, n := range p.shards[i].counts {
			items = append(items, item{u, n})
		}
	}
	var online []string
	for len(items) > 0 {
		chunk := items[:min(resyncBatch, len(items))]
		items = items[len(chunk):]
		pipe := p.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(chunk))
		for i, it := range chunk {
			if it.count == 0 {
				cmds[i] = presenceRelease.EvalSha(ctx, pipe, p.userKeys(it.user), p.node, it.user, now.UnixMilli(), now.Add(p.grace).UnixMilli())
			} else {
				cmds[i] = presenceResync.EvalSha(ctx, pipe, p.userKeys(it.user), p.node, it.user, it.count)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return online, err
		}
		for i, it := range chunk {
			if came, _ := cmds[i].Int(); came == 1 && it.count > 0 {
				online = append(online, it.user)
			}
		}
	}
	return online, nil
}

// Status reads whether userID is online and when they were last seen; offline when Redis fails.
func (p *redisPresence) Status(userID string) (bool, time.Time) {
	ctx, cancel := p.opContext()
	defer cancel()
	vals, err := p.rdb.HMGet(ctx, p.userKey(userID), "_online", "_seen").Result()
	if err != nil {
		p.log.Warn("realtime: presence: status", "user_id", userID, "err", err)
		return false, time.Time{}
	}
	return parseStatus(vals)
}

// OnlineAmong returns the users of ids who are online, in one round trip.
func (p *redisPresence) OnlineAmong(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := p.opContext()
	defer cancel()
	pipe := p.rdb.Pipeline()
	cmds := make([]*redis.BoolCmd, len(ids))
	for i, u := range ids {
		cmds[i] = pipe.HExists(ctx, p.userKey(u), "_online")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		p.log.Warn("realtime: presence: snapshot", "users", len(ids), "err", err)
		return nil
	}
	var online []string
	for i, c := range cmds {
		if c.Val() {
			online = append(online, ids[i])
		}
	}
	return online
}

// Statuses reads the status of each of ids in one round trip; offline when Redis fails.
func (p *redisPresence) Statuses(ids []string) []PresenceData {
	out := make([]PresenceData, len(ids))
	for i, u := range ids {
		out[i] = PresenceData{UserID: u}
	}
	if len(ids) == 0 {
		return out
	}
	ctx, cancel := p.opContext()
	defer cancel()
	pipe := p.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, u := range ids {
		cmds[i] = pipe.HMGet(ctx, p.userKey(u), "_online", "_seen")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		p.log.Warn("realtime: presence: statuses", "users", len(ids), "err", err)
		return out
	}
	for i, c := range cmds {
		online, seen := parseStatus(c.Val())
		out[i] = presenceData(ids[i], online, seen)
	}
	return out
}

// parseStatus reads the values of HMGET _online _seen.
func parseStatus(vals []any) (bool, time.Time) {
	if len(vals) != 2 {
		return false, time.Time{}
	}
	if vals[0] != nil {
		return true, time.Time{}
	}
	var seen time.Time
	if s, ok := vals[1].(string); ok {
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			seen = time.UnixMilli(ms).UTC()
		}
	}
	return false, seen
}

// stop ends the janitor. The counts of this node's connections are released as they close.
func (p *redisPresence) stop() {
	p.stopOnce.Do(func() { close(p.stopped) })
	<-p.done
}

func (p *redisPresence) janitor() {
	defer close(p.done)
	tick := time.NewTicker(presenceTick)
	defer tick.Stop()
	lastBeat := p.now()
	for {
		select {
		case <-p.stopped:
			return
		case <-tick.C:
		}
		p.reapDue()
		if p.now().Sub(lastBeat) >= presenceHeartbeat {
			lastBeat = p.now()
			p.heartbeat()
			p.reapDeadNodes()
		}
	}
}

// heartbeat says that this node is alive. When its alive key had vanished since the previous
// heartbeat (Redis lost its data, or the other nodes took this one for dead and released its
// connections), or an update failed, it rewrites this node's part from its own counts.
func (p *redisPresence) heartbeat() {
	ctx, cancel := p.opContext()
	defer cancel()
	pipe := p.rdb.Pipeline()
	prev := pipe.SetArgs(ctx, p.aliveKey(p.node), "1", redis.SetArgs{TTL: presenceNodeTTL, Get: true})
	pipe.SAdd(ctx, p.nodesKey(), p.node)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		p.dirty.Store(true)
		p.log.Warn("realtime: presence: heartbeat", "err", err)
		return
	}
	lost := p.beats.Add(1) > 1 && errors.Is(prev.Err(), redis.Nil)
	if lost || p.dirty.Swap(false) {
		p.resync()
	}
}

// reapDue takes the users whose grace period ended and reports those who went offline.
func (p *redisPresence) reapDue() {
	for {
		ctx, cancel := p.opContext()
		off, err := presenceReapDue.Run(ctx, p.rdb, []string{p.pendingKey()},
			p.now().UnixMilli(), 256, p.prefix).StringSlice()
		cancel()
		if err != nil {
			p.log.Warn("realtime: presence: grace periods", "err", err)
			return
		}
		p.report(off)
		if len(off) < 256 {
			return
		}
	}
}

// reapDeadNodes releases the connections of nodes that stopped saying they are alive.
func (p *redisPresence) reapDeadNodes() {
	ctx, cancel := p.opContext()
	defer cancel()
	nodes, err := p.rdb.SMembers(ctx, p.nodesKey()).Result()
	if err != nil {
		p.log.Warn("realtime: presence: nodes", "err", err)
		return
	}
	for _, n := range nodes {
		if n == p.node {
			continue
		}
		alive, err := p.rdb.Exists(ctx, p.aliveKey(n)).Result()
		if err != nil || alive == 1 {
			continue
		}
		off, err := presenceReapNode.Run(ctx, p.rdb,
			[]string{p.nodeUsersKey(n), p.nodesKey(), p.pendingKey()}, n, p.now().UnixMilli(), p.prefix).StringSlice()
		if err != nil {
			p.log.Warn("realtime: presence: release a stopped node", "node", n, "err", err)
			continue
		}
		p.log.Info("realtime: presence: released the connections of a stopped node", "node", n, "offline", len(off))
		p.report(off)
	}
}

// report tells the hub about the users whose status the janitor changed.
func (p *redisPresence) report(users []string) {
	if p.statusChanged == nil {
		return
	}
	for _, u := range users {
		p.statusChanged(u)
	}
}
