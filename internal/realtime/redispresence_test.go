package realtime

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// offlineLog records the offline callbacks of several trackers.
type offlineLog struct {
	mu   sync.Mutex
	who  []string
	seen chan struct{}
}

func (l *offlineLog) record(node string) func(string) {
	return func(u string) {
		l.mu.Lock()
		l.who = append(l.who, node+":"+u)
		l.mu.Unlock()
		l.seen <- struct{}{}
	}
}

func (l *offlineLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.who)
}

func newTestPresence(t *testing.T, rdb *redis.Client, prefix string, grace time.Duration, statusChanged func(string)) *redisPresence {
	t.Helper()
	p := newRedisPresence(rdb, prefix, grace, slog.New(slog.DiscardHandler), statusChanged)
	t.Cleanup(p.stop)
	return p
}

// Two nodes count one user's connections together: online while either has one, offline once
// the grace period after the last one ends, announced by one node only.
func TestRedisPresenceAcrossNodes(t *testing.T) {
	t.Parallel()
	rdb, prefix := storetest.Redis(t)
	log := &offlineLog{seen: make(chan struct{}, 16)}
	const grace = 300 * time.Millisecond
	a := newTestPresence(t, rdb, prefix, grace, log.record("a"))
	b := newTestPresence(t, rdb, prefix, grace, log.record("b"))

	if !a.Connected("u") {
		t.Fatal("first connection anywhere: want came online")
	}
	if b.Connected("u") || a.Connected("u") {
		t.Fatal("more connections: want no second announcement")
	}
	if got := b.OnlineAmong([]string{"x", "u", "y"}); !slices.Equal(got, []string{"u"}) {
		t.Fatalf("OnlineAmong = %v, want [u]", got)
	}
	a.Disconnected("u")
	a.Disconnected("u")
	if on, _ := a.Status("u"); !on {
		t.Fatal("a connection is still open on b: want online")
	}
	b.Disconnected("u") // the last one: the grace period starts
	b.Disconnected("u") // one too many: ignored
	if on, _ := a.Status("u"); !on {
		t.Fatal("within the grace period: want online")
	}
	select {
	case <-log.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("no node announced the user offline after the grace period")
	}
	on, seen := b.Status("u")
	if on || seen.IsZero() {
		t.Fatalf("after the grace period: online=%v last_seen=%v, want offline with a time", on, seen)
	}
	time.Sleep(3 * presenceTick) // a second announcement would come by now
	if got := log.list(); len(got) != 1 {
		t.Fatalf("offline announcements %v, want exactly one", got)
	}
}

// A reconnect within the grace period, on another node, keeps the user online and unannounced.
func TestRedisPresenceReconnectWithinGrace(t *testing.T) {
	t.Parallel()
	rdb, prefix := storetest.Redis(t)
	log := &offlineLog{seen: make(chan struct{}, 16)}
	const grace = 400 * time.Millisecond
	a := newTestPresence(t, rdb, prefix, grace, log.record("a"))
	b := newTestPresence(t, rdb, prefix, grace, log.record("b"))
	a.Connected("u")
	a.Disconnected("u")
	if b.Connected("u") {
		t.Fatal("reconnect within the grace period: want no new announcement")
	}
	time.Sleep(grace + 3*presenceTick)
	if got := log.list(); len(got) != 0 {
		t.Fatalf("offline announcements %v, want none", got)
	}
	if on, _ := a.Status("u"); !on {
		t.Fatal("want online")
	}
}

// The connections of a node that stopped (crashed: its alive key expired) are released by the
// others, and its users go offline.
func TestRedisPresenceReleasesAStoppedNode(t *testing.T) {
	t.Parallel()
	rdb, prefix := storetest.Redis(t)
	log := &offlineLog{seen: make(chan struct{}, 16)}
	a := newTestPresence(t, rdb, prefix, time.Minute, log.record("a"))
	dead := newTestPresence(t, rdb, prefix, time.Minute, log.record("dead"))
	dead.Connected("only-on-dead")
	dead.Connected("on-both")
	a.Connected("on-both")
	dead.stop()
	if err := rdb.Del(context.Background(), dead.aliveKey(dead.node)).Err(); err != nil {
		t.Fatal(err)
	}
	a.reapDeadNodes()
	if got := log.list(); !slices.Equal(got, []string{"a:only-on-dead"}) {
		t.Fatalf("offline announcements %v, want [a:only-on-dead]", got)
	}
	if on, seen := a.Status("only-on-dead"); on || seen.IsZero() {
		t.Fatalf("only-on-dead: online=%v last_seen=%v, want offline with a time", on, seen)
	}
	if on, _ := a.Status("on-both"); !on {
		t.Fatal("on-both still has a connection on a: want online")
	}
	a.reapDeadNodes() // nothing left to release
	if got := log.list(); len(got) != 1 {
		t.Fatalf("offline announcements %v after a second pass, want still one", got)
	}
}

// When Redis loses the presence state (a restart without persistence), the next heartbeat finds
// the node's alive key gone and rewrites the node's connections: its users are online again.
func TestRedisPresenceResyncsAfterRedisLostItsData(t *testing.T) {
	t.Parallel()
	rdb, prefix := storetest.Redis(t)
	log := &offlineLog{seen: make(chan struct{}, 16)}
	a := newTestPresence(t, rdb, prefix, time.Minute, log.record("a"))
	a.Connected("u")
	a.Connected("u")
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+":*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %v (%v)", keys, err)
	}
	rdb.Del(ctx, keys...) // what a FLUSHALL does to this test's keys
	if on, _ := a.Status("u"); on {
		t.Fatal("the state is gone: want offline before the heartbeat")
	}
	a.heartbeat()
	if on, _ := a.Status("u"); !on {
		t.Fatal("after the heartbeat: want online again")
	}
	select {
	case <-log.seen: // the user's contacts are told
	case <-time.After(10 * time.Second):
		t.Fatal("the user's return was not announced")
	}
	// The rewritten count is the node's own: two disconnects take the user offline, not one.
	a.Disconnected("u")
	if on, _ := a.Status("u"); !on {
		t.Fatal("one of two connections closed: want online")
	}
}

// A node the others took for dead (it was silent past the alive key's TTL) gets its users back
// at its next heartbeat.
func TestRedisPresenceNodeTakenForDeadComesBack(t *testing.T) {
	t.Parallel()
	rdb, prefix := storetest.Redis(t)
	log := &offlineLog{seen: make(chan struct{}, 16)}
	a := newTestPresence(t, rdb, prefix, time.Minute, log.record("a"))
	b := newTestPresence(t, rdb, prefix, time.Minute, log.record("b"))
	b.Connected("v")
	if err := rdb.Del(context.Background(), b.aliveKey(b.node)).Err(); err != nil {
		t.Fatal(err)
	}
	a.reapDeadNodes()
	if on, _ := a.Status("v"); on {
		t.Fatal("released by a: want offline")
	}
	b.heartbeat()
	if on, _ := a.Status("v"); !on {
		t.Fatal("b is back: want v online again")
	}
	for range 2 { // a announced v offline, then b announced v online
		select {
		case <-log.seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("announcements %v, want two", log.list())
		}
	}
	if got := log.list(); !slices.Equal(got, []string{"a:v", "b:v"}) {
		t.Fatalf("announcements %v, want [a:v b:v]", got)
	}
}

// A count that Redis keeps for this node but the node no longer has (a disconnect whose update
// failed) is released by the resync: the user goes through the grace period and offline.
func TestRedisPresenceResyncReleasesStaleCounts(t *testing.T) {
	t.Parallel()
	rdb, prefix := storetest.Redis(t)
	log := &offlineLog{seen: make(chan struct{}, 16)}
	a := newTestPresence(t, rdb, prefix, 50*time.Millisecond, log.record("a"))
	ctx := context.Background()
	rdb.HSet(ctx, a.userKey("w"), a.node, 1, "_online", "1")
	rdb.SAdd(ctx, a.nodeUsersKey(a.node), "w")
	a.dirty.Store(true)
	a.heartbeat()
	select {
	case <-log.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the stale count was not released")
	}
	if on, seen := a.Status("w"); on || seen.IsZero() {
		t.Fatalf("w: online=%v last_seen=%v, want offline with a time", on, seen)
	}
}
