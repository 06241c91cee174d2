package realtime

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

// TestConnLeasesExpire: the leases of a node that stops renewing them (it died) expire, and the
// user may connect again elsewhere; a node that renews keeps its leases past the TTL.
func TestConnLeasesExpire(t *testing.T) {
	t.Parallel()
	rdb, prefix := storetest.Redis(t)
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	const ttl = 400 * time.Millisecond
	live := newConnLeases(rdb, prefix, ttl, ttl/4, log)
	defer live.close()
	dead := newConnLeases(rdb, prefix, ttl, time.Hour, log) // never renews: a node that died
	defer dead.close()
	for _, tt := range []struct {
		l    *connLeases
		user string
		want bool
	}{
		{live, "kept", true}, {live, "kept", true}, {dead, "kept", false},
		{dead, "gone", true}, {dead, "gone", true}, {live, "gone", false},
	} {
		if _, ok := tt.l.acquire(ctx, tt.user, 2); ok != tt.want {
			t.Fatalf("acquire %s: %v, want %v", tt.user, ok, tt.want)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := live.acquire(ctx, "gone", 2); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a dead node's leases never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Well past the TTL, the renewed leases still hold the cap.
	time.Sleep(3 * ttl)
	if _, ok := dead.acquire(ctx, "kept", 2); ok {
		t.Error("renewed leases expired")
	}
}
