package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a GCRA limiter whose state lives in Redis, so that every node sharing it enforces one
// limit: N nodes behind a load balancer allow Rate, not N × Rate. One script call per event
// reads the key's TAT, decides and writes the new TAT with an expiry at that TAT (a key whose TAT
// has passed is the same as no key, so it may as well vanish). The clock is the Redis server's,
// so the nodes' clocks need not agree.
type Redis struct {
	rdb       *redis.Client
	prefix    string
	interval  int64 // microseconds
	tolerance int64 // microseconds
}

// NewRedis returns a limiter allowing r for every key, keeping its state in rdb under the keys
// prefix+key. It panics on a rate with no events or no period, which is a programming error.
func NewRedis(rdb *redis.Client, prefix string, r Rate) *Redis {
	if r.Events < 1 || r.Per <= 0 {
		panic("ratelimit: invalid rate " + r.String())
	}
	interval := r.Per / time.Duration(r.Events)
	return &Redis{
		rdb: rdb, prefix: prefix,
		interval:  interval.Microseconds(),
		tolerance: (interval * time.Duration(r.Events-1)).Microseconds(),
	}
}

// gcra: KEYS[1] the key; ARGV[1] interval, ARGV[2] tolerance (µs). Returns 0 when the event is
// allowed, else the microseconds until it would be.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ahead = tat - now
local tolerance = tonumber(ARGV[2])
if ahead > tolerance then return ahead - tolerance end
local new = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.floor((new - now) / 1000) + 1)
return 0`)

// gcraPeek: KEYS[1] the key. Returns how far (µs) the key's TAT runs ahead of now, 0 for none.
var gcraPeek = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat <= now then return 0 end
return tat - now`)

// Peek reports key's state without recording an event (see Counter). err is a failure to reach
// Redis.
func (l *Redis) Peek(ctx context.Context, key string) (int, time.Duration, error) {
	ahead, err := gcraPeek.Run(ctx, l.rdb, []string{l.prefix + key}).Int64()
	if err != nil {
		return 0, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if ahead <= 0 {
		return 0, 0, nil
	}
	us := time.Microsecond
	n, retry := peek(time.Duration(ahead)*us, time.Duration(l.interval)*us, time.Duration(l.tolerance)*us)
	return n, retry, nil
}

// Allow records one event for key if the rate allows it. err is a failure to reach Redis.
func (l *Redis) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	wait, err := gcra.Run(ctx, l.rdb, []string{l.prefix + key}, l.interval, l.tolerance).Int64()
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if wait > 0 {
		return false, time.Duration(wait) * time.Microsecond, nil
	}
	return true, 0, nil
}
